"""The Web Push channel end to end: a real nats-server, the service in-process, and the
stand-in push service over real HTTP, which checks each request's VAPID signature and
decrypts its payload with the keys of the browser it made (RFC 8291, 8292)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from crieur.bus import ensure_bucket
from crieur_dev.standins.webpush import WebpushStandin
from schemas import subjects
from schemas.buckets import WEBPUSH_LIMITS
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.deliveries import DeliveryOutcome
from schemas.notice import Category
from schemas.previews import PreviewRequest
from services.webpush.subscriptions import recipient_id
from tests.integration.helpers import Mairie, random_insee, reports, wait_for
from tests.integration.sms.helpers import make_notice
from tests.integration.webpush.conftest import StartWebpush

pytestmark = pytest.mark.integration


async def call(nc: Client, method: str, path: str, body: Any = None,
               client_ip: str = "192.0.2.7") -> tuple[int, Any]:
    """One request as the front door forwards it to the Web Push channel."""
    request = ChannelHttpRequest(method=method, path=path,
                                 headers={"content-type": "application/json"},
                                 body=json.dumps(body) if body is not None else "",
                                 client_ip=client_ip)
    msg = await nc.request(subjects.channel_http("webpush"), request.model_dump_json().encode(),
                           timeout=10)
    reply = ChannelHttpReply.model_validate_json(msg.data)
    text = reply.body_bytes().decode()
    is_json = reply.headers.get("content-type", "").endswith("json")
    return reply.status, json.loads(text) if text and is_json else text


async def browser(standin: WebpushStandin, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{standin.base_url}/_standin/subscriptions",
                                   json={"name": name})
    assert answer.status_code == 201
    return dict(answer.json())


async def outcomes(nc: Client, commune: str, count: int) -> list[DeliveryOutcome]:
    """The channel's reports once `count` are in (they are written in groups)."""
    for _ in range(100):
        found = [r.outcome for r in await reports(nc, "webpush", commune)]
        if len(found) >= count:
            return found
    raise AssertionError(f"{count} reports expected, got {found}")


def follows(commune: str, *categories: str) -> list[dict[str, Any]]:
    return [{"commune": commune, "categories": list(categories)}]


async def test_a_browser_registers_changes_and_leaves(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    service = await start_webpush()
    commune = random_insee()
    await Mairie(nc).register(commune, "Vesoul")
    status, key = await call(nc, "GET", "/api/v1/webpush/key")
    assert status == 200 and key == {"public_key": service.public_key}
    assert len(key["public_key"]) == 87  # 65 bytes, base64url without padding
    sub = await browser(standin, "Navigateur de Léa")
    body = {"subscription": sub, "follows": follows(commune, "alerte")}
    status, made = await call(nc, "POST", "/api/v1/subscriptions/webpush", body)
    assert status == 201, made
    assert made["follows"] == follows(commune, "alerte")
    # The same browser again: what it follows is replaced, not added to.
    body["follows"] = follows(commune, "travaux", "alerte")
    status, again = await call(nc, "POST", "/api/v1/subscriptions/webpush", body)
    assert status == 200 and again["follows"] == follows(commune, "alerte", "travaux")
    endpoint = {"endpoint": sub["endpoint"]}
    status, now = await call(nc, "POST", "/api/v1/subscriptions/webpush/current", endpoint)
    assert status == 200 and now["follows"] == follows(commune, "alerte", "travaux")
    assert service.registry is not None
    await wait_for(lambda: service.registry is not None
                   and service.registry.matching(commune, "travaux") != [], what="index")
    status, _ = await call(nc, "POST", "/api/v1/subscriptions/webpush/delete", endpoint)
    assert status == 204
    assert await service.registry.get(recipient_id(sub["endpoint"])) is None
    status, gone = await call(nc, "POST", "/api/v1/subscriptions/webpush/current", endpoint)
    assert status == 404 and gone["error"]["code"] == "not_subscribed"


@pytest.mark.parametrize(("change", "field"), [
    ({"endpoint": "https://10.0.0.8/push/x"}, "subscription.endpoint"),
    ({"endpoint": "https://127.0.0.1/push/x"}, "subscription.endpoint"),
    ({"endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "subscription.endpoint"),
    ({"endpoint": "https://attacker.example/fcm/send/x"}, "subscription.endpoint"),
    ({"endpoint": "https://fcm.googleapis.com.attacker.example/x"}, "subscription.endpoint"),
    ({"keys": {"p256dh": "AAAA", "auth": "c2l4dGVlbiBieXRlcyAhIQ"}},
     "subscription.keys.p256dh"),
    ({"keys": {"auth": "c2hvcnQ"}}, "subscription.keys.auth"),
])
async def test_a_bad_endpoint_or_key_is_refused_naming_the_field(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush,
        change: dict[str, Any], field: str) -> None:
    await start_webpush()
    commune = random_insee()
    await Mairie(nc).register(commune, "Vesoul")
    sub = await browser(standin, "Navigateur")
    if "keys" in change:
        sub["keys"] = sub["keys"] | change["keys"]
    else:
        sub |= change
    status, answer = await call(nc, "POST", "/api/v1/subscriptions/webpush",
                                {"subscription": sub, "follows": follows(commune, "alerte")})
    assert status == 422, answer
    assert [f["field"] for f in answer["error"]["fields"]] == [field]


async def test_known_push_services_are_taken(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    await start_webpush()
    commune = random_insee()
    await Mairie(nc).register(commune, "Vesoul")
    keys = (await browser(standin, "Navigateur"))["keys"]
    for endpoint in ("https://fcm.googleapis.com/fcm/send/abc:APA91b",
                     "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
                     "https://web.push.apple.com/QGx0Y2hh",
                     "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA"):
        status, answer = await call(nc, "POST", "/api/v1/subscriptions/webpush", {
            "subscription": {"endpoint": endpoint, "keys": keys},
            "follows": follows(commune, "alerte")})
        assert status == 201, (endpoint, answer)


async def test_notices_reach_browsers_encrypted_corrected_and_withdrawn(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    service = await start_webpush()
    assert service.registry is not None
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Vesoul")
    subs = [await browser(standin, f"Navigateur {i}") for i in range(3)]
    for sub in subs[:2]:
        status, _ = await call(nc, "POST", "/api/v1/subscriptions/webpush",
                               {"subscription": sub, "follows": follows(commune, "alerte")})
        assert status == 201
    # The third follows only works: an alert is not for it.
    await call(nc, "POST", "/api/v1/subscriptions/webpush",
               {"subscription": subs[2], "follows": follows(commune, "travaux")})
    await wait_for(lambda: service.registry is not None
                   and len(service.registry.matching(commune, "alerte")) == 2, what="index")
    ends = datetime.now(UTC) + timedelta(hours=2)
    notice = await mairie.publish(make_notice(commune, category=Category.ALERTE,
                                              title="Crue : évacuez les quais", ends_at=ends))
    await wait_for(lambda: len(standin.received) == 2, what="two notifications")
    first = standin.received[:2]
    assert {r["subscription"] for r in first} == {s["endpoint"].rsplit("/", 1)[1]
                                                  for s in subs[:2]}
    for record in first:
        assert record["urgency"] == "high" and record["topic"] == notice.id
        # The TTL ends at ends_at (two hours, less the time the send took).
        assert 2 * 3600 - 120 <= record["ttl"] <= 2 * 3600
        assert record["payload"] == {
            "action": "show", "kind": "published", "tag": notice.id,
            "title": "Vesoul · Alerte", "body": "Crue : évacuez les quais",
            "url": f"https://avis.example/communes/{commune}/notices/{notice.id}",
            "notice_id": notice.id, "version": "1", "commune": commune,
            "category": "alerte"}
    corrected = await mairie.correct(notice, title="Crue : quais fermés")
    await wait_for(lambda: len(standin.received) == 4, what="corrections")
    for record in standin.received[2:4]:
        assert record["payload"]["tag"] == notice.id and record["topic"] == notice.id
        assert record["payload"]["body"] == "Rectificatif : Crue : quais fermés"
        assert record["payload"]["version"] == str(corrected.version)
    await mairie.withdraw(corrected)
    await wait_for(lambda: len(standin.received) == 6, what="withdrawals")
    assert {r["payload"]["action"] for r in standin.received[4:6]} == {"remove"}
    assert await outcomes(nc, commune, 6) == [DeliveryOutcome.SENT] * 6


async def test_a_notice_with_a_photo_reaches_the_browser_with_its_image(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    service = await start_webpush()
    assert service.registry is not None
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Vesoul")
    sub = await browser(standin, "Navigateur")
    status, _ = await call(nc, "POST", "/api/v1/subscriptions/webpush",
                           {"subscription": sub, "follows": follows(commune, "travaux")})
    assert status == 201
    await wait_for(lambda: service.registry is not None
                   and len(service.registry.matching(commune, "travaux")) == 1, what="index")
    photo = {"name": "Déviation.jpg", "media_type": "image/jpeg", "id": "abcdef0123456789",
             "url": f"https://avis.example/communes/{commune}/attachments/abcdef0123456789"}
    notice = await mairie.publish(make_notice(commune, category=Category.TRAVAUX,
                                              title="Route de Gray fermée",
                                              attachments=[photo]))
    await wait_for(lambda: len(standin.received) == 1, what="the notification")
    payload = standin.received[0]["payload"]
    assert payload["image"] == (f"https://avis.example/communes/{commune}"
                                "/attachments/abcdef0123456789")
    assert payload["title"] == "Vesoul · Travaux" and payload["tag"] == notice.id
    await mairie.withdraw(notice)
    await wait_for(lambda: len(standin.received) == 2, what="the withdrawal")
    # Closing a notification needs no picture.
    assert "image" not in standin.received[1]["payload"]


async def test_a_gone_subscription_is_forgotten_and_busy_services_are_retried(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    service = await start_webpush()
    assert service.registry is not None
    commune = random_insee()
    mairie = Mairie(nc)
    await mairie.register(commune, "Vesoul")
    subs = [await browser(standin, f"Navigateur {i}") for i in range(2)]
    for sub in subs:
        await call(nc, "POST", "/api/v1/subscriptions/webpush",
                   {"subscription": sub, "follows": follows(commune, "alerte")})
    await wait_for(lambda: service.registry is not None
                   and len(service.registry.matching(commune, "alerte")) == 2, what="index")
    async with httpx.AsyncClient() as client:
        await client.post(f"{standin.base_url}/_standin/gone",
                          json={"endpoint": subs[0]["endpoint"]})
        # The push service is busy once, and says when to come back.
        await client.post(f"{standin.base_url}/_standin/fail",
                          json={"status": 429, "times": 1, "retry_after": 1})
    await mairie.publish(make_notice(commune, category=Category.ALERTE))
    await wait_for(lambda: len(standin.received) == 1, what="the live browser's notification")
    assert standin.received[0]["subscription"] == subs[1]["endpoint"].rsplit("/", 1)[1]
    gone = recipient_id(subs[0]["endpoint"])
    await wait_for(lambda: service.registry is not None
                   and gone not in service.registry.matching(commune, "alerte"),
                   what="the gone subscription forgotten")
    assert await service.registry.get(gone) is None
    assert standin.failure is not None and standin.failure.times == 0
    assert sorted(await outcomes(nc, commune, 2)) == [DeliveryOutcome.BOUNCED,
                                                      DeliveryOutcome.SENT]


async def test_the_staff_preview_is_the_notification_and_its_reach(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    service = await start_webpush()
    commune = random_insee()
    await Mairie(nc).register(commune, "Lavoncourt")
    for i in range(2):
        await call(nc, "POST", "/api/v1/subscriptions/webpush", {
            "subscription": await browser(standin, f"Navigateur {i}"),
            "follows": follows(commune, "alerte")})
    await wait_for(lambda: service.registry is not None
                   and len(service.registry.matching(commune, "alerte")) == 2, what="index")
    notice = make_notice(commune, category=Category.ALERTE, title="Tempête : restez à l’abri",
                         ends_at=datetime.now(UTC) + timedelta(hours=1))
    request = PreviewRequest(commune=commune, commune_name="Lavoncourt", notice=notice)
    msg = await nc.request(subjects.channel_preview("webpush", commune),
                           request.model_dump_json().encode(), timeout=10)
    answer = json.loads(msg.data)
    assert answer | {"ttl_s": 0} == {
        "available": True, "title": "Lavoncourt · Alerte", "body": "Tempête : restez à l’abri",
        "tag": notice.id, "urgency": "high", "ttl_s": 0, "reach": 2}
    assert 3600 - 120 <= answer["ttl_s"] <= 3600


async def test_the_limit_is_shared_by_every_process_and_kept_across_restarts(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    """Issue 25: counted in the webpush_limits bucket, not in each process's memory."""
    name = f"webpush-{uuid.uuid4().hex[:8]}"
    commune = random_insee()
    await Mairie(nc).register(commune, "Vesoul")
    sub = await browser(standin, "Navigateur")

    async def register(client_ip: str = "198.51.100.40") -> int:
        status, _ = await call(nc, "POST", "/api/v1/subscriptions/webpush", {
            "subscription": sub, "follows": follows(commune, "alerte")}, client_ip=client_ip)
        return status

    first = await start_webpush(name=name, webpush_rate_limit_per_ip=3)
    assert [await register() for _ in range(2)] == [201, 200]
    # A second process of the same service, then the first stops: only the second answers.
    second = await start_webpush(name=name, webpush_rate_limit_per_ip=3)
    await first.stop()
    assert [await register() for _ in range(2)] == [200, 429]
    # Restarted: a new process still knows the hour's count.
    await second.stop()
    await start_webpush(name=name, webpush_rate_limit_per_ip=3)
    assert await register() == 429
    assert await register("198.51.100.41") == 200  # another client counts apart
    # The bucket names the client by a hash only.
    keys = await (await nc.jetstream().key_value(WEBPUSH_LIMITS.name)).keys()
    mine = [k for k in keys if k.startswith(f"{name}.client.")]
    assert len(mine) == 2
    assert not any("198.51.100" in k for k in mine)


async def test_an_unreachable_limit_store_answers_503(
        nc: Client, standin: WebpushStandin, start_webpush: StartWebpush) -> None:
    await start_webpush()
    commune = random_insee()
    await Mairie(nc).register(commune, "Vesoul")
    sub = await browser(standin, "Navigateur")
    js = nc.jetstream()
    await js.delete_key_value(WEBPUSH_LIMITS.name)
    try:
        status, answer = await call(nc, "POST", "/api/v1/subscriptions/webpush", {
            "subscription": sub, "follows": follows(commune, "alerte")})
    finally:
        await ensure_bucket(js, WEBPUSH_LIMITS)  # for the tests after this one
    assert status == 503, answer
    assert answer["error"]["code"] == "channel_unavailable"
    assert "indisponibles" in answer["error"]["message"]
