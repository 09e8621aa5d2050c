"""The channel kit on a real nats-server, driven by a fake channel (tests/integration/kit/fake.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_streams
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from schemas import subjects
from schemas.deadletters import DeadLetter
from schemas.notice import Category, Notice, NoticeState
from schemas.streams import NOTICES
from tests.conftest import read_subject

# Shared with the other channels' tests; the kit's test modules import them from here.
from tests.integration.helpers import Mairie as Mairie
from tests.integration.helpers import random_insee as random_insee
from tests.integration.helpers import reports as reports
from tests.integration.helpers import wait_for as wait_for
from tests.integration.kit.fake import FakeChannel

pytestmark = pytest.mark.integration


def make_notice(commune: str, **fields: Any) -> Notice:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "id": uuid.uuid4().hex[:16], "commune": commune, "category": Category.ALERTE,
        "title": "Tempête", "body": "Restez chez vous.", "author": "Mairie", "version": 1,
        "state": NoticeState.PUBLISHED, "created_at": now - timedelta(minutes=1),
        "updated_at": now, "published_at": now,
    }
    return Notice.model_validate(data | fields)


async def dead_letters(nc: Client, service: str) -> list[DeadLetter]:
    found = await read_subject(nc.jetstream(), subjects.dead_letter(service), wait_s=0.5)
    return [DeadLetter.model_validate_json(m.data) for m in found]


async def wait_planned(nc: Client, name: str, within_s: float = 30.0) -> None:
    """Until channel `name`'s fan-outs (both lanes) have acked an event: each does so once
    every job of it is stored (alone or in groups), or at once if it is the other lane's."""
    js = nc.jetstream()
    deadline = time.monotonic() + within_s
    while True:
        infos = [await js.consumer_info("NOTICES", f"{name}-{role}")
                 for role in ("fanout", "alert-fanout")]
        if all(i.delivered.consumer_seq and not i.num_ack_pending for i in infos):
            return
        assert time.monotonic() < deadline, "the event was not planned"
        await asyncio.sleep(0.1)


async def settled(nc: Client, runner: ChannelRunner, within_s: float = 30.0) -> None:
    """Until nothing more can come from `runner`: its fan-outs (both lanes) have every event
    delivered and acked, each acked once all its jobs are queued, and its workers have no
    job waiting nor unacked (a job to retry or being sent is unacked). What a negative check
    waits for, instead of a guess at how long a duplicate would take."""
    js = nc.jetstream()
    deadline = time.monotonic() + within_s
    while True:
        infos = [await js.consumer_info(stream, f"{runner.name}-{role}")
                 for stream, role in (("NOTICES", "fanout"), ("NOTICES", "alert-fanout"),
                                      ("JOBS", "worker"), ("JOBS", "alert-worker"))]
        if all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos):
            return
        assert time.monotonic() < deadline, f"{runner.name} still has work: {infos}"
        await asyncio.sleep(0.05)


FAST = {"channel_ack_wait_s": 3.0, "channel_backoff_s": 0.1, "channel_backoff_max_s": 2.0,
        "channel_batch": 64, "channel_drain_s": 10.0}


async def connect(url: str) -> Client:
    """A connection as a service has it, with NOTICES there as the front door makes it."""
    client = await nats.connect(url, **RECONNECT_FOREVER)
    await ensure_streams(client.jetstream(), (NOTICES,))
    return client


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url)
    yield client
    await client.close()


StartKit = Callable[..., Awaitable[ChannelRunner]]


@pytest.fixture
async def start_kit(nc: Client) -> AsyncIterator[StartKit]:
    """Starts a ChannelRunner for a fake channel under a name of its own; drains at the end."""
    runners: list[tuple[ChannelRunner, asyncio.Task[None]]] = []

    async def start(port: FakeChannel, **settings: Any) -> ChannelRunner:
        runner = ChannelRunner(port, ChannelSettings(**(FAST | settings)), nc,
                               name=f"kit-{uuid.uuid4().hex[:8]}")
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(runner.ready.wait(), 20)
        runners.append((runner, task))
        return runner

    yield start
    for runner, task in runners:
        runner.stop()
        await asyncio.wait_for(task, 30)
