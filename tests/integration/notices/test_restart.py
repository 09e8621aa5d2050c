"""What the front door keeps survives it: scheduled notices, the view, the buckets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import nats
import pytest

from crieur.bus import ensure_all
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import Clock, FrontDoor

pytestmark = pytest.mark.integration


async def test_a_notice_scheduled_before_a_restart_goes_out_after_it(
    front_door: FrontDoor, nats_url: str
) -> None:
    fd = front_door
    due = fd.clock.now + timedelta(minutes=30)
    draft = {"category": "evenement", "title": "Loto de l’école", "body": "Salle des fêtes.",
             "publish_at": due.isoformat()}
    created = (await fd.http.post(fd.notices_url(), json=draft, headers=fd.auth)).json()
    assert created["state"] == "scheduled"

    # A new front door, as after a restart, with the clock past the publication time.
    settings = NoticesSettings(nats_url=nats_url, schedule_interval_s=0.2)
    store = await NatsStore.connect(nats_url, name="test-notices-restarted")
    clock = Clock()
    clock.now = due + timedelta(minutes=1)
    app = create_app(settings, Context(store=store, settings=settings, clock=clock))
    try:
        async with app.router.lifespan_context(app):
            for _ in range(100):
                found = store.get(fd.insee, created["id"])
                if found is not None:
                    break
                await asyncio.sleep(0.1)
            assert found is not None, "the scheduled notice never went out"
            assert found[1].state == "published"
            assert await store.scheduled(created["id"]) is None
    finally:
        await store.close()


async def test_streams_and_buckets_are_ensured_idempotently(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        first = await ensure_all(js)
        second = await ensure_all(js)
        assert first.keys() == second.keys() == {"communes", "staff", "idempotency", "schedule",
                                                 "staff_sessions", "groups", "cap_alerts",
                                                 "withdrawals"}
        info = await js.stream_info("NOTICES")
        assert info.config.duplicate_window == 86400
        assert info.config.subjects == ["notices.>"]
        idempotency = await js.stream_info("KV_idempotency")
        assert idempotency.config.max_age == 86400, "idempotency keys are kept 24 hours"
    finally:
        await nc.close()
