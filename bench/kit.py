"""The channel kit alone: one notice fanned out to N recipients of a sink that does nothing.

This is the plumbing's ceiling (fan-out, JOBS, sent records, reports, acks): a channel
cannot go faster than this, whatever its sink.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
from nats.aio.client import Client

from crieur.bus import RECONNECT_FOREVER, ensure_streams
from crieur.channel.port import Edition, PortDefaults
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from schemas import subjects
from schemas.deliveries import Channel
from schemas.events import NoticePublished
from schemas.jobs import Job
from schemas.notice import Category, Notice, NoticeState
from schemas.streams import NOTICES


class NullSink(PortDefaults):
    """A ChannelPort whose sink accepts everything at once."""

    channel = Channel.SMS
    rate_per_s: float | None = None

    def __init__(self, commune: str, n: int, concurrency: int) -> None:
        self.commune = commune
        self.n = n
        self.concurrency = concurrency
        self.sent = 0
        self.done = asyncio.Event()

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        if notice.commune == self.commune:
            for i in range(self.n):
                yield f"bench{i:07d}"

    async def prepare(self, edition: Edition) -> None:
        return None

    async def send(self, job: Job, draft: None) -> str:
        self.sent += 1
        if self.sent >= self.n:
            self.done.set()
        return job.recipient[:12]

    async def on_permanent(self, job: Job, error: Exception) -> None:
        return None


def bench_notice(commune: str) -> Notice:
    now = datetime.now(UTC)
    return Notice(id=uuid.uuid4().hex[:16], commune=commune, category=Category.ALERTE,
                  title="Tempête : restez chez vous", body="Vents à 120 km/h attendus.",
                  author="bench", version=1, state=NoticeState.PUBLISHED, created_at=now,
                  updated_at=now, published_at=now)


async def publish(nc: Client, notice: Notice) -> None:
    event = NoticePublished(occurred_at=datetime.now(UTC), notice=notice)
    await nc.jetstream().publish(subjects.notice(notice.commune, notice.id),
                                 event.model_dump_json().encode(), stream="NOTICES",
                                 headers={"Nats-Msg-Id": event.msg_id})


async def kit_null_sink(url: str, n: int, concurrency: int) -> tuple[float, float]:
    """Deliveries per second of the kit into a sink that costs nothing, and the CPU
    milliseconds this process spent per delivery (fan-out and worker together)."""
    nc = await nats.connect(url, **RECONNECT_FOREVER)
    await ensure_streams(nc.jetstream(), (NOTICES,))  # the front door's, which we play
    commune = "70299"
    port = NullSink(commune, n, concurrency)
    runner = ChannelRunner(port, ChannelSettings(), nc, name=f"bench-{uuid.uuid4().hex[:6]}")
    task = asyncio.create_task(runner.run())
    await runner.ready.wait()
    start, cpu = time.perf_counter(), time.process_time()
    await publish(nc, bench_notice(commune))
    await asyncio.wait_for(port.done.wait(), 600)
    elapsed = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu) / n * 1000
    runner.stop()
    await task
    await nc.close()
    return n / elapsed, cpu_ms
