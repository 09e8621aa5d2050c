"""The push service on a real nats-server, talking through firebase-admin to the FCM stand-in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_bucket, ensure_streams
from crieur.nats_server import free_port
from crieur_dev.standins.fcm import FcmStandin, write_service_account
from schemas.commune import Commune
from schemas.streams import COMMUNES, NOTICES
from services.push.service import PushService
from services.push.settings import PushSettings
from tests.integration.kit.conftest import random_insee
from tests.integration.push.helpers import FAST, StartPush

pytestmark = pytest.mark.integration


@pytest.fixture
def fcm(tmp_path: Path) -> Iterator[FcmStandin]:
    standin = FcmStandin(tmp_path / "standins")
    standin.start(free_port())
    yield standin
    standin.stop()


@pytest.fixture
def credentials(tmp_path: Path, fcm: FcmStandin) -> Path:
    return write_service_account(tmp_path / "sa.json", f"{fcm.url}/token", "crieur-test")


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url, **RECONNECT_FOREVER)
    # The front door's stream, which a channel waits for rather than creates.
    await ensure_streams(client.jetstream(), (NOTICES,))
    yield client
    await client.close()


@pytest.fixture
async def commune(nc: Client) -> str:
    """A commune registered for this test only (its topics are its own)."""
    insee = random_insee()
    kv = await ensure_bucket(nc.jetstream(), COMMUNES)
    await kv.put(insee, Commune(insee=insee, name="Lavoncourt",
                                created_at=datetime.now(UTC)).model_dump_json().encode())
    return insee




@pytest.fixture
async def start_push(nats_url: str, nc: Client, fcm: FcmStandin,
                     credentials: Path) -> AsyncIterator[StartPush]:
    services: list[PushService] = []

    async def start(name: str | None = None, **settings: Any) -> PushService:
        """A push service; `name` shared by two starts makes them one service's processes."""
        config = PushSettings(**(FAST | {"nats_url": nats_url, "fcm_credentials": credentials,
                                         "fcm_url": fcm.url} | settings))
        service = PushService(config, name=name or f"push-{uuid.uuid4().hex[:8]}")
        await asyncio.wait_for(service.start(), 30)
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()


