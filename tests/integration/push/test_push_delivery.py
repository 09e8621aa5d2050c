"""A notice reaches the phones that follow it: one FCM request per topic, through firebase-admin."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client

from crieur_dev.standins.fcm import FcmStandin
from schemas.deliveries import DeliveryOutcome
from schemas.events import NoticePublished
from schemas.jobs import Job
from schemas.notice import Category
from tests.integration.kit.conftest import Mairie, dead_letters, make_notice, reports, wait_for
from tests.integration.push.helpers import StartPush, http, phone_token

pytestmark = pytest.mark.integration


def sends(fcm: FcmStandin) -> list[dict[str, Any]]:
    return [r for r in list(fcm.received) if r["path"].endswith("/messages:send")]


async def register(nc: Client, token: str, commune: str, categories: list[str]) -> None:
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune, "categories": categories}],
        "platform": "android", "language": "fr"})
    assert reply.status == 201, reply.body


def ttl_s(value: str) -> float:
    assert value.endswith("s")
    return float(value[:-1])


async def test_an_alert_is_one_request_per_topic_with_priority_ttl_collapse_key_and_french_text(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push()
    phones = [phone_token("a"), phone_token("b"), phone_token("c")]
    await register(nc, phones[0], commune, ["alerte", "travaux"])
    await register(nc, phones[1], commune, ["alerte"])
    await register(nc, phones[2], commune, ["travaux"])
    assert fcm.topics_of(phones[1]) == {f"crieur-{commune}-alerte"}
    assert fcm.topics_of(phones[0]) == {f"crieur-{commune}-alerte", f"crieur-{commune}-travaux"}

    ends = datetime.now(UTC) + timedelta(hours=2)
    alert = await Mairie(nc).publish(make_notice(
        commune, category=Category.ALERTE, title="Tempête : restez chez vous", ends_at=ends))
    await wait_for(lambda: len(fcm.sent()) >= 1, what="the alert sent")
    works = await Mairie(nc).publish(make_notice(
        commune, category=Category.TRAVAUX, title="Route de Gray fermée"))
    await wait_for(lambda: len(fcm.sent()) >= 2, what="the works notice sent")
    await asyncio.sleep(1.0)  # anything more would be a second request

    assert len(sends(fcm)) == 2
    first, second = fcm.sent()
    assert first["topic"] == f"crieur-{commune}-alerte"
    assert first["notification"] == {"title": "Lavoncourt · Alerte",
                                     "body": "Tempête : restez chez vous"}
    assert first["android"]["priority"] == "high"
    assert first["android"]["collapse_key"] == alert.id
    assert first["android"]["notification"]["tag"] == alert.id
    assert 7000 <= ttl_s(first["android"]["ttl"]) <= 7200
    assert first["apns"]["headers"]["apns-priority"] == "10"
    assert first["apns"]["headers"]["apns-collapse-id"] == alert.id
    assert abs(int(first["apns"]["headers"]["apns-expiration"]) - ends.timestamp()) < 120
    assert first["apns"]["payload"]["aps"]["interruption-level"] == "time-sensitive"
    assert first["webpush"]["headers"]["Urgency"] == "high"
    assert first["data"]["notice_id"] == alert.id
    assert first["data"]["action"] == "show"

    assert second["topic"] == f"crieur-{commune}-travaux"
    assert second["notification"]["body"] == "Route de Gray fermée"
    assert second["notification"]["title"] == "Lavoncourt · Travaux"
    assert second["android"]["priority"] == "normal"
    assert second["apns"]["headers"]["apns-priority"] == "5"
    assert second["apns"]["payload"]["aps"]["interruption-level"] == "active"
    # No end date: FCM's longest time-to-live, 4 weeks.
    assert ttl_s(second["android"]["ttl"]) == 28 * 24 * 3600

    # firebase-admin asked its access token at the service account's token_uri (google-auth's
    # JWT-bearer grant), and used it on every FCM request.
    grants = [r for r in list(fcm.received) if r["path"] == "/token"]
    assert grants and all(r["status"] == 200 and "jwt-bearer" in r["body"] for r in grants)
    assert all(r["status"] == 200 for r in list(fcm.received))

    found = await reports(nc, "push", commune)
    assert Counter((r.notice_id, r.outcome, r.target) for r in found) == {
        (alert.id, DeliveryOutcome.SENT, f"crieur-{commune}-alerte"): 1,
        (works.id, DeliveryOutcome.SENT, f"crieur-{commune}-travaux"): 1}


async def test_a_correction_replaces_the_notification_and_a_withdrawal_removes_it(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push()
    await register(nc, phone_token("a"), commune, ["information"])
    mairie = Mairie(nc)
    notice = await mairie.publish(make_notice(commune, category=Category.INFORMATION,
                                              title="Fête du village samedi"))
    await wait_for(lambda: len(fcm.sent()) == 1, what="the publication")
    corrected = await mairie.correct(notice, title="Fête du village dimanche")
    await wait_for(lambda: len(fcm.sent()) == 2, what="the correction")
    await mairie.withdraw(corrected)
    await wait_for(lambda: len(fcm.sent()) == 3, what="the withdrawal")

    _, correction, withdrawal = fcm.sent()
    assert correction["topic"] == f"crieur-{commune}-information"
    assert correction["notification"]["body"] == "Rectificatif : Fête du village dimanche"
    assert correction["android"]["collapse_key"] == notice.id
    assert correction["android"]["notification"]["tag"] == notice.id
    assert correction["data"]["version"] == "2"

    # A data message: the app removes the notification tagged with the notice id.
    assert "notification" not in withdrawal
    assert withdrawal["data"]["action"] == "remove"
    assert withdrawal["data"]["notice_id"] == notice.id
    assert withdrawal["android"]["collapse_key"] == notice.id
    assert withdrawal["apns"]["payload"]["aps"]["content-available"] == 1
    assert withdrawal["apns"]["headers"]["apns-priority"] == "5"


async def test_a_notice_with_a_photo_arrives_with_its_https_image(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push(public_url="https://crieur.example.fr")
    await register(nc, phone_token("a"), commune, ["travaux"])
    photo = {"name": "Déviation.jpg", "media_type": "image/jpeg", "id": "abcdef0123456789",
             "url": f"https://crieur.example.fr/communes/{commune}/attachments/abcdef0123456789"}
    await Mairie(nc).publish(make_notice(commune, category=Category.TRAVAUX,
                                         title="Route de Gray fermée", attachments=[photo]))
    await wait_for(lambda: len(fcm.sent()) == 1, what="the notice with its photo")

    image = f"https://crieur.example.fr/communes/{commune}/attachments/abcdef0123456789"
    (sent,) = fcm.sent()
    assert sent["notification"] == {"title": "Lavoncourt · Travaux",
                                    "body": "Route de Gray fermée", "image": image}
    assert sent["apns"]["fcm_options"]["image"] == image
    assert sent["webpush"]["notification"]["image"] == image
    assert sent["data"]["image"] == image


async def test_a_503_then_a_200_ends_in_one_delivery(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push()
    fcm.fail(503, times=1, path="messages:send")
    notice = await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(fcm.sent()) == 1, what="the send after the 503")
    await asyncio.sleep(1.0)
    assert [r["status"] for r in sends(fcm)] == [503, 200]
    found = [r for r in await reports(nc, "push", commune) if r.notice_id == notice.id]
    assert [r.outcome for r in found] == [DeliveryOutcome.SENT]


async def test_a_long_outage_goes_through_the_kits_backoff_and_ends_in_one_delivery(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push()
    # firebase-admin retries a 503 four times itself; six in a row reach the kit's backoff.
    fcm.fail(503, times=6, path="messages:send")
    notice = await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(fcm.sent()) == 1, within_s=60, what="the send after the outage")
    await asyncio.sleep(1.0)
    assert [r["status"] for r in sends(fcm)] == [503] * 6 + [200]
    found = [r for r in await reports(nc, "push", commune) if r.notice_id == notice.id]
    assert [r.outcome for r in found] == [DeliveryOutcome.SENT]


async def test_a_429_with_retry_after_is_honoured(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push(channel_backoff_s=0.1)
    fcm.fail(429, times=1, path="messages:send", retry_after=3)
    await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(fcm.sent()) == 1, what="the send after the 429")
    refused, accepted = sends(fcm)
    assert refused["status"] == 429 and accepted["status"] == 200
    waited = (datetime.fromisoformat(accepted["at"]) - datetime.fromisoformat(refused["at"]))
    # The kit's own backoff would have been 0.1 s: FCM's word won.
    assert waited.total_seconds() >= 3 - 0.1


async def test_a_redelivered_event_does_not_notify_twice(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push()
    notice = make_notice(commune)
    event = NoticePublished(occurred_at=datetime.now(UTC), notice=notice)
    js = nc.jetstream()
    # The same event twice, past the stream's de-duplication (as a redelivery would be).
    for attempt in range(2):
        await js.publish(f"notices.{commune}.{notice.id}", event.model_dump_json().encode(),
                         stream="NOTICES", headers={"Nats-Msg-Id": f"{event.msg_id}:{attempt}"})
    await wait_for(lambda: len(fcm.sent()) == 1, what="one send")
    # And the same job queued again past JOBS' de-duplication window: its sent record wins.
    assert service.runner is not None and service.runner.worker is not None
    job = Job(channel="push", commune=commune, notice_id=notice.id, version=1,
              kind="published", recipient=f"crieur-{commune}-alerte")
    await js.publish(f"jobs.{service.runner.name}.{commune}", job.model_dump_json().encode(),
                     stream="JOBS", headers={"Nats-Msg-Id": "after-the-window"})
    worker = service.runner.worker
    await wait_for(lambda: worker.counts.get("duplicate", 0) == 1, what="the job seen as sent")
    await asyncio.sleep(1.0)  # time for a second send, were there one
    assert len(fcm.sent()) == 1


async def test_fcm_down_for_good_ends_in_a_failed_report_and_a_dead_letter(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push(channel_max_attempts=2, channel_backoff_s=0.1)
    fcm.fail(503, times=1000, path="messages:send")
    notice = await Mairie(nc).publish(make_notice(commune))
    found: list[Any] = []

    async def failed() -> bool:
        found[:] = [r for r in await reports(nc, "push", commune) if r.notice_id == notice.id]
        return any(r.outcome is DeliveryOutcome.FAILED for r in found)

    deadline = asyncio.get_running_loop().time() + 90
    while not await failed():
        assert asyncio.get_running_loop().time() < deadline, "no failed report"
        await asyncio.sleep(0.5)
    [report] = found
    assert report.target == f"crieur-{commune}-alerte"
    assert "gave up after 2 attempts" in report.detail and "UNAVAILABLE" in report.detail
    assert service.runner is not None
    letters = await dead_letters(nc, f"{service.runner.name}-worker")
    # An alert's job: it was queued in the alert lane.
    assert [letter.subject for letter in letters] == [
        f"jobs.{service.runner.name}.{commune}.alert"]
    assert fcm.sent() == []
