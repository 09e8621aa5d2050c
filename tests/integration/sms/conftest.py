"""The SMS service in-process on the session's nats-server, with the SMS stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_all
from crieur_dev.standins.sms import SmsStandin
from services.sms.service import SmsService
from services.sms.settings import SmsSettings
from tests.integration.sms.helpers import SECRET, Clock, StartSms

FAST: dict[str, Any] = {
    "channel_ack_wait_s": 3.0, "channel_backoff_s": 0.1, "channel_backoff_max_s": 1.0,
    "channel_batch": 128, "channel_drain_s": 10.0, "sms_rate": 1000.0, "sms_concurrency": 8,
    "sms_timeout_s": 2.0, "sms_quiet_hours": "", "sms_webhook_secret": SECRET,
    "sms_secret_key": "k" * 40, "sms_stop_number": "36180",
}


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url, **RECONNECT_FOREVER)
    await ensure_all(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[SmsStandin]:
    server = await SmsStandin(tmp_path / "standins").start()
    yield server
    await server.stop()


@pytest.fixture
async def start_sms(nc: Client, standin: SmsStandin, tmp_path: Path,
                    ) -> AsyncIterator[StartSms]:
    services: list[SmsService] = []

    async def start(clock: Clock | None = None, name: str | None = None,
                    **settings: Any) -> SmsService:
        config = SmsSettings(nats_url="nats://unused", data_dir=tmp_path,
                             **(FAST | {"sms_api_url": standin.url} | settings))
        service = SmsService(config, nc, clock=clock or Clock(),
                             name=name or f"sms-{uuid.uuid4().hex[:8]}")
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()
