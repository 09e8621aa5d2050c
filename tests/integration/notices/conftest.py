"""A front door on the session's nats-server, a fresh commune and a staff token per test."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FrontDoor:
    http: httpx.AsyncClient
    store: NatsStore
    clock: Clock
    insee: str
    token: str
    app: FastAPI

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def notices_url(self, insee: str | None = None) -> str:
        return f"/api/v1/communes/{insee or self.insee}/notices"


def random_insee() -> str:
    return f"{random.randint(1000, 95999):05d}"


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
