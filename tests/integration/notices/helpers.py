"""What the front door's integration tests share: a hand-moved clock, the FrontDoor handle."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from nats.aio.msg import Msg

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.helpers import random_insee as random_insee


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


def logged(written: io.StringIO, event: str) -> list[dict[str, object]]:
    """The JSON log lines named `event` in what the `json_logs` fixture captured."""
    lines = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


@asynccontextmanager
async def channel(door: FrontDoor, name: str,
                  answer: Callable[[ChannelHttpRequest], ChannelHttpReply]
                  ) -> AsyncIterator[list[ChannelHttpRequest]]:
    """A channel answering its HTTP routes over the real request-reply, recording each one."""
    seen: list[ChannelHttpRequest] = []

    async def respond(msg: Msg) -> None:
        request = ChannelHttpRequest.model_validate_json(msg.data)
        seen.append(request)
        await msg.respond(answer(request).model_dump_json().encode())

    sub = await door.store.nc.subscribe(f"channels.{name}.http", cb=respond)
    try:
        yield seen
    finally:
        await sub.unsubscribe()


def reply(status: int, body: dict[str, Any]) -> ChannelHttpReply:
    return ChannelHttpReply(status=status, headers={"content-type": "application/json"},
                            body=json.dumps(body))


@asynccontextmanager
async def open_front_door(nats_url: str, **settings: Any) -> AsyncIterator[FrontDoor]:
    """The front door as an ASGI app on a real NATS, with a commune and a staff token of its
    own; `settings` are NoticesSettings fields over the tests' defaults."""
    config = NoticesSettings(**({"nats_url": nats_url, "schedule_interval_s": 0.2,
                                 "public_url": "https://crieur.example"} | settings))
    store = await NatsStore.connect(nats_url, name="test-notices")
    clock = Clock()
    app = create_app(config, Context(store=store, settings=config, clock=clock))
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    _, token = await store.staff_registry.add("Secrétaire", (insee,))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield FrontDoor(http, store, clock, insee, token, app)
    finally:
        await store.close()
