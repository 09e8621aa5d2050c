"""A front door whose scheduler keeps failing says so on /healthz, and recovers by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.notices import scheduler
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.helpers import eventually

pytestmark = pytest.mark.integration


async def test_a_failing_scheduler_is_restarted_and_healthz_says_503_meanwhile(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = True
    runs = 0

    async def run(store: NatsStore, clock: Callable[[], datetime], interval_s: float) -> Any:
        nonlocal runs
        runs += 1
        if broken:
            raise RuntimeError("the schedule mirror is gone")
        await asyncio.sleep(3600)

    monkeypatch.setattr(scheduler, "run", run)
    settings = NoticesSettings(nats_url=nats_url)
    store = await NatsStore.connect(nats_url, name="test-health")
    app = create_app(settings, Context(store=store, settings=settings))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

                async def health() -> int:
                    return (await http.get("/healthz")).status_code

                await eventually(lambda: health_is(health, 503), "503 while it fails")
                body = (await http.get("/healthz")).json()
                assert body == {"status": "task_failing", "tasks": ["scheduler"]}
                broken = False
                await eventually(lambda: health_is(health, 200), "200 once restarted",
                                 within=60)
                assert runs >= 2
    finally:
        await store.close()


async def health_is(health: Callable[[], Any], status: int) -> bool:
    return bool(await health() == status)
