"""A resident's phone registers, changes what it follows, leaves; bad input is named; dead tokens go."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.aio.client import Client

from crieur_dev.standins.fcm import FcmStandin
from services.push.service import PushService
from tests.integration.kit.conftest import wait_for
from tests.integration.push.helpers import StartPush, http, phone_token

pytestmark = pytest.mark.integration


async def stored(service: PushService, token: str) -> bool:
    assert service.routes is not None
    return await service.routes.devices.get(token) is not None


async def test_a_phone_registers_changes_what_it_follows_and_leaves(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push()
    token = phone_token("p")
    created = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune, "categories": ["alerte", "travaux"]}],
        "platform": "ios", "language": "fr"})
    assert created.status == 201
    assert created.body["topics"] == [f"crieur-{commune}-alerte", f"crieur-{commune}-travaux"]
    assert token not in str(created.body)
    assert fcm.topics_of(token) == {f"crieur-{commune}-alerte", f"crieur-{commune}-travaux"}

    # No categories: every category.
    replaced = await http(nc, "PUT", f"/api/v1/devices/{token}",
                          {"follows": [{"commune": commune}]})
    assert replaced.status == 200
    assert len(fcm.topics_of(token)) == 4
    replaced = await http(nc, "PUT", f"/api/v1/devices/{token}",
                          {"follows": [{"commune": commune, "categories": ["evenement"]}]})
    assert replaced.status == 200
    assert fcm.topics_of(token) == {f"crieur-{commune}-evenement"}

    gone = await http(nc, "DELETE", f"/api/v1/devices/{token}")
    assert gone.status == 204
    assert fcm.topics_of(token) == set()
    assert not await stored(service, token)
    # Forgetting twice is no error; changing a forgotten phone is.
    assert (await http(nc, "DELETE", f"/api/v1/devices/{token}")).status == 204
    missing = await http(nc, "PUT", f"/api/v1/devices/{token}", {"follows": []})
    assert missing.status == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"token": "", "follows": []}, "token"),
    ({"token": "not a token!", "follows": []}, "token"),
    ({"follows": []}, "token"),
    ({"token": "T" * 40, "follows": [{"commune": "99999"}]}, "follows.0.commune"),
    ({"token": "T" * 40, "follows": [{"commune": "7029"}]}, "follows.0.commune"),
    ({"token": "T" * 40, "follows": [{"commune": "OURS", "categories": ["fete"]}]},
     "follows.0.categories.0"),
    ({"token": "T" * 40, "follows": [], "platform": "symbian"}, "platform"),
    ({"token": "T" * 40, "follows": [], "email": "a@b.fr"}, "email"),
    ({"token": "T" * 40, "follows": [{"commune": f"{70000 + i}"} for i in range(501)]},
     "follows"),
])
async def test_bad_input_gets_422_naming_the_field(
        nc: Client, start_push: StartPush, commune: str, body: dict[str, object],
        field: str) -> None:
    await start_push()
    for follow in body.get("follows", []):  # type: ignore[attr-defined]
        if follow.get("commune") == "OURS":
            follow["commune"] = commune  # the test's own, registered commune
    reply = await http(nc, "POST", "/api/v1/devices", body)
    assert reply.status == 422, reply.body
    assert field in [f["field"] for f in reply.body["error"]["fields"]], reply.body


async def test_registrations_are_rate_limited_per_client_address(
        nc: Client, start_push: StartPush, commune: str) -> None:
    await start_push(push_rate_limit_per_ip=3)
    statuses = []
    for _ in range(5):
        reply = await http(nc, "POST", "/api/v1/devices", {
            "token": phone_token("r"), "follows": [{"commune": commune}]},
            client_ip="192.0.2.7")
        statuses.append(reply.status)
    assert statuses == [201, 201, 201, 429, 429]
    assert int(reply.headers["retry-after"]) >= 1
    other = await http(nc, "POST", "/api/v1/devices", {
        "token": phone_token("r"), "follows": [{"commune": commune}]}, client_ip="192.0.2.8")
    assert other.status == 201


async def test_the_limit_is_shared_by_every_process_and_kept_across_restarts(
        nc: Client, start_push: StartPush, commune: str) -> None:
    """Issue 25: counted in the push_limits bucket, not in each process's memory."""
    name = f"push-{uuid.uuid4().hex[:8]}"

    async def register() -> int:
        reply = await http(nc, "POST", "/api/v1/devices", {
            "token": phone_token("s"), "follows": [{"commune": commune}]},
            client_ip="198.51.100.40")
        return reply.status

    first = await start_push(name=name, push_rate_limit_per_ip=3)
    assert [await register() for _ in range(2)] == [201, 201]
    # A second process of the same service, then the first stops: only the second answers.
    second = await start_push(name=name, push_rate_limit_per_ip=3)
    await first.stop()
    assert [await register() for _ in range(2)] == [201, 429]
    # Restarted: a new process still knows the hour's count.
    await second.stop()
    await start_push(name=name, push_rate_limit_per_ip=3)
    assert await register() == 429


@pytest.mark.parametrize("state", ["UNREGISTERED", "INVALID_ARGUMENT"])
async def test_a_token_fcm_refuses_is_removed_from_its_topics_and_from_storage(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str, state: str) -> None:
    service = await start_push()
    token = phone_token("dead")
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune, "categories": ["alerte", "travaux"]}]})
    assert reply.status == 201
    assert await stored(service, token)

    # The app was uninstalled: FCM now refuses the token.
    fcm.mark_token(token, state)
    reply = await http(nc, "PUT", f"/api/v1/devices/{token}",
                       {"follows": [{"commune": commune, "categories": ["alerte"]}]})
    assert reply.status == 422
    assert reply.body["error"]["fields"][0]["field"] == "token"
    assert not await stored(service, token)
    unsubscribed = {r["path"].rsplit("/", 1)[1] for r in list(fcm.received)
                    if r["method"] == "DELETE" and token in r["path"]}
    assert unsubscribed == {f"crieur-{commune}-alerte", f"crieur-{commune}-travaux"}


async def test_a_new_phone_fcm_refuses_is_not_kept(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push()
    token = phone_token("bad")
    fcm.mark_token(token, "INVALID_ARGUMENT")
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune}]})
    assert reply.status == 422
    assert not await stored(service, token)


async def test_fcm_away_during_registration_gets_503_and_a_retry_works(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    await start_push(push_reply_within_s=30)  # wait out firebase-admin's own retries
    token = phone_token("later")
    # More 503s than firebase-admin's own retries.
    fcm.fail(503, times=5, path="topicSubscriptions")
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune, "categories": ["alerte"]}]})
    assert reply.status == 503
    assert int(reply.headers["retry-after"]) >= 1
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune, "categories": ["alerte"]}]})
    assert reply.status == 200  # known already: kept from the first try
    await wait_for(lambda: fcm.topics_of(token) == {f"crieur-{commune}-alerte"},
                   what="the subscription")



async def test_a_slow_fcm_gets_202_within_the_front_doors_wait_and_the_work_goes_on(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push(push_reply_within_s=0.2)
    fcm.registration_delay_s = 1.0
    token = phone_token("slow")
    reply = await http(nc, "POST", "/api/v1/devices", {
        "token": token, "follows": [{"commune": commune}]})
    assert reply.status == 202 and reply.body["pending"] is True
    assert len(reply.body["topics"]) == 4
    assert service.routes is not None
    routes = service.routes
    found: list[object] = []

    async def synced() -> bool:
        device = await routes.devices.get(token)
        found[:] = [device]
        return device is not None and len(fcm.topics_of(token)) == 4 and \
            set(device.topics) == fcm.topics_of(token)

    deadline = asyncio.get_running_loop().time() + 30
    while not await synced():
        assert asyncio.get_running_loop().time() < deadline, f"not synced: {found}"
        await asyncio.sleep(0.2)


async def test_tokens_fcm_forgot_are_pruned_now_and_then(
        nc: Client, fcm: FcmStandin, start_push: StartPush, commune: str) -> None:
    service = await start_push(push_prune_every_s=0.5)
    alive, dead = phone_token("alive"), phone_token("dead")
    for token in (alive, dead):
        reply = await http(nc, "POST", "/api/v1/devices", {
            "token": token, "follows": [{"commune": commune, "categories": ["alerte"]}]})
        assert reply.status == 201
    # The app was uninstalled; topic messages would never tell.
    fcm.mark_token(dead, "UNREGISTERED")
    await wait_for(lambda: any(r["method"] == "DELETE" and dead in r["path"]
                               for r in list(fcm.received)), what="the dead token unsubscribed")
    deadline = asyncio.get_running_loop().time() + 20
    while await stored(service, dead):
        assert asyncio.get_running_loop().time() < deadline, "the dead token is still stored"
        await asyncio.sleep(0.1)
    assert await stored(service, alive)
    checks = [r for r in list(fcm.received) if r["path"].endswith("/messages:send")]
    assert checks and all(r["body"]["validate_only"] is True for r in checks)
    assert fcm.sent() == []  # a check reaches no phone
