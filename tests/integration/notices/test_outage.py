"""NATS goes away and comes back: the front door says 503, never 500, then works again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats.errors
import pytest

from crieur.nats_server import NatsServer
from schemas import NoticeEvent
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

DRAFT = {"category": "alerte", "title": "Coupure d’eau", "body": "Ce soir de 20 h à 23 h."}


async def test_publishing_during_an_outage_is_503_and_works_after(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    settings = NoticesSettings(nats_url=server.url)
    store = await NatsStore.connect(server.url, name="test-outage")
    await store.commune_registry.add("70299", "Lavoncourt")
    _, token = await store.staff_registry.add("Secrétaire", ("70299",))
    auth = {"Authorization": f"Bearer {token}"}
    app = create_app(settings, Context(store=store, settings=settings))
    url = "/api/v1/communes/70299/notices"
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                before = await http.post(url, json=DRAFT, headers=auth)
                assert before.status_code == 201

                server.kill()
                during = await http.post(url, json=DRAFT, headers=auth)
                assert during.status_code == 503, during.text
                assert during.json()["error"]["code"] == "bus_unavailable"
                assert (await http.get("/healthz")).status_code == 503
                # Reading what is already known still works without the bus.
                assert len((await http.get(url)).json()["notices"]) == 1

                server.start()
                after = None
                for _ in range(150):  # reconnects by itself; generous bound
                    after = await http.post(url, json=DRAFT, headers=auth)
                    if after.status_code == 201:
                        break
                    await asyncio.sleep(0.2)
                assert after is not None and after.status_code == 201, after.text if after else ""
                assert (await http.get("/healthz")).status_code == 200
                ids = {n["id"] for n in (await http.get(url)).json()["notices"]}
                assert ids == {before.json()["id"], after.json()["id"]}
    finally:
        await store.close()
        server.stop()


async def test_a_publish_whose_confirmation_is_lost_says_so_and_a_retry_makes_one_notice(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    real_append = fd.store.append
    lost = True

    async def append_then_lose_the_ack(event: NoticeEvent, expected_last_seq: int) -> int:
        # The server stores the event; its acknowledgement never reaches the front door.
        seq = await real_append(event, expected_last_seq)
        if lost:
            raise nats.errors.TimeoutError
        return seq

    fd.store.append = append_then_lose_the_ack  # type: ignore[method-assign]
    headers = fd.auth | {"Idempotency-Key": "coupure-eau-1"}
    first = await fd.http.post(fd.notices_url(), json=DRAFT, headers=headers)
    assert first.status_code == 503, first.text
    error = first.json()["error"]
    assert error["code"] == "bus_timeout"
    assert "may have been saved" in error["message"] and "Idempotency-Key" in error["message"]
    assert first.headers["retry-after"]

    lost = False
    retry = await fd.http.post(fd.notices_url(), json=DRAFT, headers=headers)
    assert retry.status_code == 201, retry.text
    listed = (await fd.http.get(fd.notices_url())).json()["notices"]
    assert [n["id"] for n in listed] == [retry.json()["id"]], "stored once, not twice"
