"""The Web Push service in-process on the session's nats-server, with the Web Push stand-in
served over real HTTP (it decrypts what it gets with the keys of the browsers it made)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
import uvicorn
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_all
from crieur.nats_server import free_port
from crieur_dev.standins.webpush import WebpushStandin
from services.webpush.service import WebpushService
from services.webpush.settings import WebpushSettings

FAST: dict[str, Any] = {
    "channel_ack_wait_s": 3.0, "channel_backoff_s": 0.1, "channel_backoff_max_s": 1.0,
    "channel_drain_s": 10.0, "webpush_timeout_s": 2.0, "public_url": "https://avis.example",
}

StartWebpush = Callable[..., Awaitable[WebpushService]]


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url, **RECONNECT_FOREVER)
    await ensure_all(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[WebpushStandin]:
    port = free_port()
    server = WebpushStandin(tmp_path / "standins", f"http://127.0.0.1:{port}")
    uvicorn_server = uvicorn.Server(uvicorn.Config(server.app, host="127.0.0.1", port=port,
                                                   log_config=None, access_log=False))
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield server
    uvicorn_server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def start_webpush(nc: Client, standin: WebpushStandin, tmp_path: Path,
                        ) -> AsyncIterator[StartWebpush]:
    services: list[WebpushService] = []

    async def start(**settings: Any) -> WebpushService:
        host = standin.base_url.removeprefix("http://")
        config = WebpushSettings(nats_url="nats://unused", data_dir=tmp_path,
                                 **(FAST | {"webpush_extra_hosts": host} | settings))
        service = WebpushService(config, nc=nc, name=f"webpush-{uuid.uuid4().hex[:8]}")
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()
