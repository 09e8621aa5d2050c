"""A front door on the session's nats-server, a fresh commune and a staff token per test."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import structlog

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import Clock, FrontDoor, random_insee

# Re-exported for tests that import them from this conftest.
__all__ = ["Clock", "FrontDoor", "front_door", "json_logs", "random_insee"]


@pytest.fixture
async def front_door(nats_url: str) -> AsyncIterator[FrontDoor]:
    settings = NoticesSettings(nats_url=nats_url, max_body_bytes=1_000_000,
                               schedule_interval_s=0.2, public_url="https://crieur.example")
    store = await NatsStore.connect(nats_url, name="test-notices")
    clock = Clock()
    app = create_app(settings, Context(store=store, settings=settings, clock=clock))
    insee = random_insee()
    await store.add_commune(insee, "Lavoncourt")
    _, token = await store.add_staff("Secrétaire", (insee,))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield FrontDoor(http, store, clock, insee, token, app)
    await store.close()


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logs as in production (JSON, to stderr, here a buffer), then back to the tests' own."""
    from crieur import log

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    log.configure("INFO", "json")
    yield written
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level
