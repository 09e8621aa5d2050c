"""The push service on a real nats-server, talking through firebase-admin to the FCM stand-in."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_bucket
from crieur.nats_server import free_port
from crieur.standins.fcm import FcmStandin, write_service_account
from schemas import subjects
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.commune import Commune
from schemas.streams import COMMUNES
from services.push.app import PushService
from services.push.settings import PushSettings
from tests.integration.kit.conftest import random_insee

pytestmark = pytest.mark.integration

FAST = {"channel_ack_wait_s": 3.0, "channel_backoff_s": 0.2, "channel_backoff_max_s": 3.0,
        "channel_batch": 64, "channel_drain_s": 10.0}


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


StartPush = Callable[..., Awaitable[PushService]]


@pytest.fixture
async def start_push(nats_url: str, fcm: FcmStandin,
                     credentials: Path) -> AsyncIterator[StartPush]:
    services: list[PushService] = []

    async def start(**settings: Any) -> PushService:
        config = PushSettings(**(FAST | {"nats_url": nats_url, "fcm_credentials": credentials,
                                         "fcm_url": fcm.url} | settings))
        service = PushService(config, name=f"push-{uuid.uuid4().hex[:8]}")
        await asyncio.wait_for(service.start(), 30)
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


async def http(nc: Client, method: str, path: str, body: Any = None,
               client_ip: str | None = None) -> Reply:
    """A resident's request, forwarded the way the front door forwards it."""
    request = ChannelHttpRequest(method=method, path=path,
                                 body="" if body is None else json.dumps(body),
                                 headers={"content-type": "application/json"},
                                 client_ip=client_ip or f"10.0.{uuid.uuid4().int % 250}.1")
    msg = await nc.request(subjects.channel_http("push"), request.model_dump_json().encode(),
                           timeout=30)
    reply = ChannelHttpReply.model_validate_json(msg.data)
    return Reply(reply.status, json.loads(reply.body) if reply.body else None, reply.headers)


def phone_token(name: str) -> str:
    """A token shaped like FCM's (instance id, colon, a long base64url part)."""
    return f"{name}{uuid.uuid4().hex[:8]}:APA91b{uuid.uuid4().hex}{uuid.uuid4().hex}"
