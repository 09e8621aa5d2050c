"""The SMS channel end to end on a real nats-server and the SMS stand-in (real HTTP)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nats.aio.client import Client

from crieur.channel.port import Edition
from crieur_dev.standins.sms import SmsStandin
from schemas.deliveries import DeliveryOutcome
from schemas.events import EventKind
from schemas.notice import Category
from services.sms.handlers import draft_for
from services.sms.phones import recipient_id
from services.sms.subscribers import Follow, Subscriber
from tests.integration.sms.helpers import (
    SECRET,
    Clock,
    Mairie,
    StartSms,
    call,
    make_notice,
    number,
    random_insee,
    reports,
    wait_for,
)

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
KEY = "k" * 40


async def seed(service: object, commune: str, count: int, first: int = 0,
               categories: tuple[Category, ...] = (Category.ALERTE,)) -> list[str]:
    """Confirmed subscribers written straight into the registry (as confirming does)."""
    registry = service.registry  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    numbers = [number(first + i) for i in range(count)]
    await asyncio.gather(*(registry.put(recipient_id(KEY, n), Subscriber(
        phone=n, confirmed=True, confirmed_at=now, created_at=now,
        follows=(Follow(commune=commune, categories=categories),))) for n in numbers))
    await wait_for(lambda: len(registry.matching(commune, str(categories[0]))) >= count,
                   what="index")
    return numbers


def recipients_of(standin: SmsStandin) -> list[str]:
    return ["+" + str(r["body"]["recipient"]) for r in standin.sends()]


async def test_500_confirmed_subscribers_get_500_right_sms(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Lavoncourt")
    numbers = await seed(service, commune, 500)
    notice = await mairie.publish(make_notice(commune))
    await wait_for(lambda: len(standin.sends()) >= 500, what="500 provider calls")
    await asyncio.sleep(0.5)  # nothing more may come
    sends = standin.sends()
    assert len(sends) == 500
    assert sorted(recipients_of(standin)) == sorted(numbers)
    expected = draft_for(service.settings, Edition(EventKind.PUBLISHED, notice,
                                                   "Lavoncourt")).sms
    assert expected.text == ("Lavoncourt - Alerte : Tempete : restez chez vous\n"
                             "Vents à 120 km/h attendus cette nuit.\nSTOP au 36180")
    for request in sends:
        assert request["path"] == "/v3/transactionalSMS/send"
        assert request["headers"]["api-key"]
        body = request["body"]
        assert body["content"] == expected.text
        assert body["sender"] == "Crieur"
        assert body["type"] == "transactional"
        assert body["unicodeEnabled"] is False
        assert body["webUrl"] == f"http://127.0.0.1:8080/webhooks/sms/{SECRET}/receipts"
    for _ in range(100):
        sent = [r for r in await reports(nc, commune) if r.outcome is DeliveryOutcome.SENT]
        if len(sent) >= 500:
            break
    assert len(sent) == 500
    # No number in a report: a hashed id only.
    assert not any("+33" in r.target or "336" in r.target[:3] for r in sent)


async def test_subscribe_by_code_then_stop_stops_the_very_next_notice(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms()
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Lavoncourt")
    follows = [{"commune": commune, "categories": ["alerte"]}]
    # As French people write it; stored in E.164.
    status, body = await call(nc, "POST", "/api/v1/subscriptions/sms",
                              {"phone": "06 98 76 54 32", "follows": follows})
    assert status == 202 and body["status"] == "pending"
    await wait_for(lambda: len(standin.sends()) == 1, what="the code SMS")
    code_sms = standin.sends()[0]["body"]
    assert code_sms["recipient"] == "33698765432"
    code = re.search(r"\b(\d{6})\b", code_sms["content"]).group(1)  # type: ignore[union-attr]
    # A wrong code, then an unknown number: the same answer.
    wrong = await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                       {"phone": "0698765432", "code": "000000" if code != "000000" else "1"})
    unknown = await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                         {"phone": "0611111111", "code": code})
    assert wrong == unknown
    assert wrong[0] == 400
    # Nothing before confirmation.
    await mairie.publish(make_notice(commune))
    await asyncio.sleep(2.0)
    assert len(standin.sends()) == 1
    status, body = await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                              {"phone": "+33 6 98 76 54 32", "code": code})
    assert (status, body["status"]) == (200, "confirmed")
    # A second resident, so the next notice goes somewhere.
    status, _ = await call(nc, "POST", "/api/v1/subscriptions/sms",
                           {"phone": "0033698765433", "follows": follows})
    await wait_for(lambda: len(standin.sends()) == 2, what="the second code")
    code2 = re.search(r"\b(\d{6})\b",  # type: ignore[union-attr]
                      standin.sends()[1]["body"]["content"]).group(1)
    assert (await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                       {"phone": "06 98 76 54 33", "code": code2}))[0] == 200

    await asyncio.sleep(0.5)  # the index follows the bucket
    await mairie.publish(make_notice(commune, title="Crue"))
    await wait_for(lambda: len(standin.sends()) == 4, what="two notice SMS")
    assert sorted(recipients_of(standin)[2:]) == ["+33698765432", "+33698765433"]

    # A STOP without the secret, or with a wrong one: 404, nothing changes.
    stop = {"event": "replied", "from": "33698765432", "reply": " Stôp sms "}
    assert (await call(nc, "POST", "/webhooks/sms/wrong-secret-000000000/inbound", stop))[0] \
        == 404
    assert (await call(nc, "POST", "/webhooks/sms/inbound", stop))[0] == 404
    status, body = await call(nc, "POST", f"/webhooks/sms/{SECRET}/inbound", stop)
    assert (status, body["status"]) == (200, "unsubscribed")
    # Answered once, to say it worked (issue 26).
    await wait_for(lambda: len(standin.sends()) == 5, what="the STOP's answer")
    assert recipients_of(standin)[4] == "+33698765432"
    assert "vous ne recevrez plus les avis" in standin.sends()[4]["body"]["content"]
    # The very next notice: not to the number that said STOP.
    before = len(standin.sends())
    await mairie.publish(make_notice(commune, title="Crue, suite"))
    await wait_for(lambda: len(standin.sends()) == before + 1, what="the next notice")
    await asyncio.sleep(1.0)
    assert recipients_of(standin)[before:] == ["+33698765433"]


async def test_a_failing_provider_ends_with_everything_delivered_once(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    mairie = Mairie(nc)
    numbers = await seed(service, commune, 40, first=1000)
    standin.fail(503, seconds=3.0)
    await mairie.publish(make_notice(commune))
    await wait_for(lambda: len(standin.state.sent_to) >= 40, within_s=90,
                   what="all accepted after the outage")
    await asyncio.sleep(1.0)
    accepted = Counter(standin.state.sent_to.values())
    assert sorted(accepted) == sorted(numbers)
    assert set(accepted.values()) == {1}
    # It really failed meanwhile.
    assert len(standin.sends()) > 40


async def test_an_invalid_number_is_permanent_and_flagged(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    numbers = await seed(service, commune, 3, first=2000)
    standin.state.invalid.add(numbers[0])
    await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(standin.state.sent_to) >= 2, what="the valid two")
    assert service.registry is not None

    async def flagged() -> bool:
        found = await service.registry.get(recipient_id(KEY, numbers[0]))  # type: ignore[union-attr]
        return found is not None and found[0].invalid

    for _ in range(100):
        if await flagged():
            break
        await asyncio.sleep(0.1)
    assert await flagged()
    bounced = [r for r in await reports(nc, commune) if r.outcome is DeliveryOutcome.BOUNCED]
    assert [r.detail for r in bounced] == ["invalid number"]
    # One try only: permanent means no retry.
    assert [r["body"]["recipient"] for r in standin.sends()].count(numbers[0][1:]) == 1


async def test_quiet_hours_hold_a_non_alert_and_let_an_alert_through(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    clock = Clock(datetime(2026, 12, 1, 22, 30, tzinfo=PARIS))
    commune = random_insee()
    service = await start_sms(clock, sms_quiet_hours="21:00-08:00", sms_hold_recheck_s=0.3,
                              sms_commune_categories={commune: ["alerte", "travaux"]})
    mairie = Mairie(nc)
    await seed(service, commune, 2, first=3000, categories=(Category.ALERTE, Category.TRAVAUX))
    await mairie.publish(make_notice(commune, category=Category.TRAVAUX, title="Route fermée",
                                     body="Demain."))
    await mairie.publish(make_notice(commune, title="Orage"))
    await wait_for(lambda: len(standin.sends()) >= 2, what="the alert")
    await asyncio.sleep(2.0)
    assert len(standin.sends()) == 2
    assert all("Orage" in r["body"]["content"] for r in standin.sends())
    assert service.runner is not None and service.runner.worker is not None
    assert service.runner.worker.counts.get("deferred", 0) >= 2
    # 08:00 in Paris: the held SMS go.
    clock.at = datetime(2026, 12, 2, 8, 0, 5, tzinfo=PARIS)
    await wait_for(lambda: len(standin.sends()) >= 4, what="the held SMS after 08:00")
    await asyncio.sleep(1.0)
    assert len(standin.sends()) == 4
    assert sum("Route fermée" in r["body"]["content"] for r in standin.sends()) == 2


async def test_sms_held_overnight_fill_their_window_and_an_alert_still_goes(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    """Issue 24, item 4: held SMS more than the normal lane's window; an alert goes at once,
    and every held SMS goes once in the morning (none lost, none twice)."""
    evening = datetime.now(PARIS).replace(hour=22, minute=30, second=0, microsecond=0)
    clock = Clock(evening)
    crowded, village = random_insee(), random_insee()
    # One job a message and a window of 8 messages: 40 held SMS are five windows' worth.
    service = await start_sms(clock, sms_quiet_hours="21:00-08:00", sms_hold_recheck_s=0.5,
                              channel_group_size=1, channel_max_ack_pending=8,
                              sms_commune_categories={crowded: ["travaux"],
                                                      village: ["alerte"]})
    assert service.runner is not None and service.runner.worker is not None
    worker = service.runner.worker
    held = await seed(service, crowded, 40, first=6000, categories=(Category.TRAVAUX,))
    warned = await seed(service, village, 3, first=7000)
    mairie = Mairie(nc)
    await mairie.publish(make_notice(crowded, category=Category.TRAVAUX, title="Route fermée",
                                     body="Demain."))
    js = nc.jetstream()

    async def window_full() -> bool:
        info = await js.consumer_info("JOBS", f"{service.name}-worker")
        return info.num_ack_pending == 8

    await wait_for(lambda: worker.counts.get("deferred", 0) >= 16, what="held SMS")
    assert await window_full()
    await mairie.publish(make_notice(village, title="Orage"))
    # Bounded wait, no speed asserted: the alert's lane has a window of its own.
    await wait_for(lambda: sorted(recipients_of(standin)) == sorted(warned), within_s=20,
                   what="the alert, while the held SMS fill their window")
    assert await window_full(), "the held SMS are still held"
    # 08:00 in Paris: every held SMS goes, once.
    clock.at = evening.replace(hour=8) + timedelta(days=1, seconds=5)
    await wait_for(lambda: len(standin.sends()) >= 43, within_s=60, what="the morning's SMS")
    await asyncio.sleep(1.0)  # nothing more may come
    assert Counter(recipients_of(standin)) == Counter(held + warned)


async def test_a_withdrawal_during_quiet_hours_cancels_the_held_sms(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    clock = Clock(datetime(2026, 12, 1, 23, 0, tzinfo=PARIS))
    commune = random_insee()
    service = await start_sms(clock, sms_quiet_hours="21:00-08:00", sms_hold_recheck_s=0.3,
                              sms_commune_categories={commune: ["travaux"]})
    mairie = Mairie(nc)
    await seed(service, commune, 3, first=4000, categories=(Category.TRAVAUX,))
    notice = await mairie.publish(make_notice(commune, category=Category.TRAVAUX,
                                              title="Route fermée", body="Demain."))
    assert service.runner is not None and service.runner.worker is not None
    worker = service.runner.worker
    await wait_for(lambda: worker.counts.get("deferred", 0) >= 3, what="held")
    await mairie.withdraw(notice)
    await asyncio.sleep(0.5)
    clock.at = datetime(2026, 12, 2, 8, 1, tzinfo=PARIS)
    await wait_for(lambda: worker.counts.get("dropped", 0) >= 3, what="dropped")
    await asyncio.sleep(1.0)
    assert standin.sends() == []
    dropped = [r for r in await reports(nc, commune) if r.outcome is DeliveryOutcome.DROPPED]
    assert len(dropped) == 3 and {r.detail for r in dropped} == {"withdrawn"}


async def test_a_delivery_receipt_is_recorded_on_deliveries(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    await seed(service, commune, 1, first=5000)
    notice = await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(standin.state.sent_to) == 1, what="the SMS")
    [message_id] = list(standin.state.sent_to)
    # Give the service a moment to keep the message id after the provider answered.
    await asyncio.sleep(0.5)
    receipt = {"messageId": int(message_id), "event": "delivered", "to": "33610005000"}
    assert (await call(nc, "POST", "/webhooks/sms/not-the-secret-0000/receipts", receipt))[0] \
        == 404
    assert (await call(nc, "POST", "/webhooks/sms/receipts", receipt, headers={
        "x-crieur-webhook-secret": "not-the-secret-0000"}))[0] == 404
    # The secret in a header, as providers are now told to send it.
    status, body = await call(nc, "POST", "/webhooks/sms/receipts", receipt,
                              headers={"x-crieur-webhook-secret": SECRET})
    assert (status, body["status"]) == (200, "recorded")
    delivered = [r for r in await reports(nc, commune)
                 if r.outcome is DeliveryOutcome.DELIVERED]
    assert [(r.notice_id, r.version) for r in delivered] == [(notice.id, 1)]
    # An OVHcloud-style callback (GET) for an unknown id: answered, nothing recorded.
    status, body = await call(nc, "GET", f"/webhooks/sms/{SECRET}/receipts",
                              query="id=999&dlr=1")
    assert (status, body["status"]) == (200, "unknown")


async def test_preview_answers_encoding_parts_and_ucs2_characters(
        nc: Client, start_sms: StartSms) -> None:
    await start_sms()
    status, body = await call(nc, "POST", "/api/v1/previews/sms",
                              {"text": "Tempête\u202f: l’école ferme", "transliterate": False})
    assert status == 200
    assert body == {"text": "Tempête\u202f: l’école ferme", "encoding": "UCS-2", "parts": 1,
                    "ucs2_characters": ["ê", "\u202f", "’"], "cut": False}
    status, body = await call(nc, "POST", "/api/v1/previews/sms",
                              {"text": "Tempête\u202f: l’école ferme"})
    assert body["text"] == "Tempete : l'école ferme" and body["encoding"] == "GSM-7"
    assert (await call(nc, "POST", "/api/v1/previews/sms", {"txt": "x"}))[0] == 422


async def test_a_provider_without_credentials_leaves_the_channel_off(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms(sms_provider="brevo", sms_api_url=None)
    assert service.provider is None and service.runner is None
    commune = random_insee()
    await Mairie(nc).register(commune, "Lavoncourt")
    status, body = await call(nc, "POST", "/api/v1/subscriptions/sms",
                              {"phone": "06 12 34 56 78",
                               "follows": [{"commune": commune, "categories": ["alerte"]}]})
    assert (status, body["error"]["code"]) == (503, "channel_off")
    # Staff can still see what an SMS would look like.
    status, body = await call(nc, "POST", "/api/v1/previews/sms", {"text": "Route fermée"})
    assert (status, body["encoding"], body["parts"]) == (200, "GSM-7", 1)
    assert standin.sends() == []


async def test_subscriptions_and_code_attempts_are_limited(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms(sms_rate_per_number=2, sms_code_attempts=3, sms_rate_per_client=100)
    commune = random_insee()
    await Mairie(nc).register(commune, "Lavoncourt")
    follows = [{"commune": commune, "categories": ["alerte"]}]
    asked = [await call(nc, "POST", "/api/v1/subscriptions/sms",
                        {"phone": "06 55 44 33 22", "follows": follows}) for _ in range(3)]
    assert [status for status, _ in asked] == [202, 202, 429]
    await wait_for(lambda: len(standin.sends()) == 2, what="two codes")
    code = re.search(r"\b(\d{6})\b",  # type: ignore[union-attr]
                     standin.sends()[-1]["body"]["content"]).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        status, _ = await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                               {"phone": "0655443322", "code": wrong})
        assert status == 400
    # Three wrong codes: the right one no longer works; a new one must be asked for.
    status, body = await call(nc, "POST", "/api/v1/subscriptions/sms/confirm",
                              {"phone": "0655443322", "code": code})
    assert (status, body["error"]["code"]) == (400, "invalid_code")
    # A number that is no mobile: the field is named.
    status, body = await call(nc, "POST", "/api/v1/subscriptions/sms",
                              {"phone": "01 23 45 67 89", "follows": follows},
                              client_ip="192.0.2.9")
    assert status == 422 and body["error"]["fields"][0]["field"] == "phone"


async def test_a_held_sms_survives_a_restart_of_the_service(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    night = Clock(datetime(2026, 12, 1, 22, 30, tzinfo=PARIS))
    commune = random_insee()
    name = f"sms-restart-{commune}"
    options = {"sms_quiet_hours": "21:00-08:00", "sms_hold_recheck_s": 0.3,
               "sms_commune_categories": {commune: ["travaux"]}}
    first = await start_sms(night, name=name, **options)
    await seed(first, commune, 2, first=6000, categories=(Category.TRAVAUX,))
    await Mairie(nc).publish(make_notice(commune, category=Category.TRAVAUX,
                                         title="Route fermée", body="Demain."))
    assert first.runner is not None and first.runner.worker is not None
    worker = first.runner.worker
    await wait_for(lambda: worker.counts.get("deferred", 0) >= 2, what="held")
    await first.stop()  # the held jobs stay in JetStream, not in the process
    assert standin.sends() == []
    morning = Clock(datetime(2026, 12, 2, 8, 0, 5, tzinfo=PARIS))
    await start_sms(morning, name=name, **options)
    await wait_for(lambda: len(standin.sends()) >= 2, what="the held SMS after a restart")
    await asyncio.sleep(1.0)
    assert len(standin.sends()) == 2
    assert all("Route fermée" in r["body"]["content"] for r in standin.sends())


async def test_a_correction_goes_only_to_those_who_got_the_first_sms(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Lavoncourt")
    first = await seed(service, commune, 2, first=7000)
    notice = await mairie.publish(make_notice(commune, title="Orage"))
    await wait_for(lambda: len(standin.sends()) == 2, what="the first SMS")
    # Someone subscribes after the first SMS went out: not in the correction's audience.
    await seed(service, commune, 3, first=7000)
    await mairie.correct(notice, title="Orage violent")
    await wait_for(lambda: len(standin.sends()) >= 4, what="the correction")
    await asyncio.sleep(1.5)
    corrections = [r for r in standin.sends() if "RECTIFICATIF" in r["body"]["content"]]
    assert len(standin.sends()) == 4
    assert sorted("+" + r["body"]["recipient"] for r in corrections) == sorted(first)
    assert {r["body"]["content"] for r in corrections} == {
        "Lavoncourt - Alerte - RECTIFICATIF : Orage violent\n"
        "Vents à 120 km/h attendus cette nuit.\nSTOP au 36180"}
