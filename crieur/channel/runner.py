"""ChannelRunner: what a channel service starts; it runs the fan-out and the worker for a port,
each in two lanes (crieur.channel.lanes: alerts first).

    nc = await nats.connect(settings.nats_url, **RECONNECT_FOREVER)
    runner = ChannelRunner(port, settings, nc)
    runner.stop_on_signals()   # SIGTERM/SIGINT: drain in-flight sends, then return
    await runner.run()

Several processes may run the same channel: they share the durable consumers.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from crieur import metrics
from crieur.bus import ensure_bucket, ensure_streams
from crieur.channel.consumers import (
    Handler,
    durable,
    ensure_consumers,
    fanout_consumer,
    pull_loop,
    worker_consumer,
)
from crieur.channel.current import CurrentNotices
from crieur.channel.fanout import Fanout
from crieur.channel.lanes import Lane
from crieur.channel.pacing import Pacer
from crieur.channel.port import ChannelPort
from crieur.channel.reports import Reports
from crieur.channel.sent import SentRecords
from crieur.channel.settings import ChannelSettings
from crieur.channel.worker import Worker
from schemas import subjects
from schemas.streams import (
    CHANNEL_STREAMS,
    DEADLETTERS,
    DEADLETTERS_STREAM,
    DELIVERIES,
    DELIVERIES_STREAM,
    JOBS_STREAM,
    NOTICES_STREAM,
    SENT,
)

log = structlog.get_logger("crieur.channel")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ChannelRunner:
    """Fan-out and worker of one channel, until stopped; `name` defaults to the channel."""

    def __init__(self, port: ChannelPort[Any], settings: ChannelSettings, nc: Client, *,
                 name: str | None = None, fanout: bool = True, worker: bool = True,
                 now: Callable[[], datetime] = _utcnow, pacer: Pacer | None = None) -> None:
        self.port = port
        self.pacer = pacer
        self.settings = settings
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=4 * max(
            settings.channel_fanout_window, settings.channel_batch))
        # Subjects, durable names and sent-record keys use it (tests give each run its own).
        self.name = name or str(port.channel)
        self.now = now
        self._run_fanout = fanout
        self._run_worker = worker
        self.stopping = asyncio.Event()
        self.notices = CurrentNotices(nc, self.js)
        self.fanout: Fanout | None = None
        self._fanouts: list[Fanout] = []
        self.worker: Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    async def ensure(self) -> None:
        """Streams and buckets the kit uses, created or brought up to date."""
        # Those the kit owns or writes to; NOTICES (only read) is the front door's.
        await ensure_streams(self.js, (*CHANNEL_STREAMS, DELIVERIES, DEADLETTERS))
        await ensure_bucket(self.js, SENT)

    async def start(self) -> None:
        while True:
            try:
                await self.ensure()
                sent = await SentRecords.open(self.js, self.name)
                break
            except Exception as error:  # NATS not there yet: a channel waits for it
                log.warning("channel_waiting_for_nats", channel=self.name, error=repr(error))
                await asyncio.sleep(1.0)
        await self.notices.start()
        reports = Reports(self.js, self.port.channel)
        armed: list[asyncio.Event] = []
        configs = self._consumers()
        lock = asyncio.Lock()

        async def ensure() -> None:
            # The streams, then the lanes' durables in their order (ensure_consumers); the
            # pull loops call it again after a server lost them.
            await self.ensure()
            async with lock:
                await ensure_consumers(self.js, list(configs.values()), self.name)

        if self._run_worker:
            self.worker = Worker(self.port, self.settings, self.js, self.name, sent, reports,
                                 self.notices, self.now, self.stopping, self.pacer)
        if self._run_fanout:
            for lane in Lane:
                fanout = Fanout(self.port, self.settings, self.js, self.name, sent,
                                self.notices, self.now, lane)
                self._fanouts.append(fanout)
                if lane is Lane.NORMAL:
                    self.fanout = fanout
                config = configs[durable(self.name, "fanout", lane)]
                self._tasks.append(asyncio.create_task(name=config.durable_name, coro=pull_loop(
                    self.js, stream=NOTICES_STREAM, subject=subjects.NOTICES, config=config,
                    batch=1, handle=self._fanout_handler(fanout, lane),
                    stopping=self.stopping, ensure=ensure, armed=_new(armed))))
        if self.worker is not None:
            for lane in Lane:
                config = configs[durable(self.name, "worker", lane)]
                self._tasks.append(asyncio.create_task(name=config.durable_name, coro=pull_loop(
                    self.js, stream=JOBS_STREAM, subject=config.filter_subject or "",
                    config=config,
                    # About channel_batch jobs a pull, whether in groups or alone.
                    batch=-(-self.settings.channel_batch // self.settings.channel_group_size),
                    handle=(self.worker.handle_alerts if lane is Lane.ALERT
                            else self.worker.handle),
                    stopping=self.stopping, ensure=ensure, armed=_new(armed))))
        # Ready once the consumers exist: an event published from now on is planned.
        for event in armed:
            await event.wait()
        self.ready.set()
        log.info("channel_started", channel=self.name, fanout=self._run_fanout,
                 worker=self._run_worker, concurrency=self.port.concurrency,
                 rate_per_s=self.port.rate_per_s)

    def _fanout_handler(self, fanout: Fanout, lane: Lane) -> Handler:
        """An alert being planned already holds the normal lane's sends back: its first jobs
        find the sink free (crieur.channel.lanes)."""
        worker = self.worker
        if lane is Lane.NORMAL or worker is None:
            return fanout.handle

        async def handle(msgs: list[Msg]) -> None:
            with worker.gate.alert_work():
                await fanout.handle(msgs)
        return handle

    async def not_ready(self) -> list[str]:
        """Why this channel cannot work now (for /readyz): NATS, streams, consumers, tasks."""
        if not self.ready.is_set():
            return [f"channel {self.name}: starting"]
        consumers: dict[str, list[str]] = {}
        for config in self._consumers().values():
            name = config.durable_name or ""
            stream = NOTICES_STREAM if name.endswith("-fanout") else JOBS_STREAM
            consumers.setdefault(stream, []).append(name)
        found = await metrics.nats_reasons(
            self.nc, [NOTICES_STREAM, JOBS_STREAM, DELIVERIES_STREAM, DEADLETTERS_STREAM,
                      f"KV_{SENT.name}"], consumers)
        return found + metrics.task_reasons(
            {task.get_name(): task for task in self._tasks} if self._tasks else {"kit": None})

    def _consumers(self) -> dict[str, ConsumerConfig]:
        """This runner's durables by name: a fan-out and a worker per lane."""
        ack_wait = self.settings.channel_ack_wait_s
        found: list[ConsumerConfig] = []
        if self._run_fanout:
            found += [fanout_consumer(self.name, ack_wait, lane,
                                      max_ack_pending=self.settings.channel_fanout_concurrency)
                      for lane in Lane]
        if self._run_worker:
            found += [worker_consumer(self.name, ack_wait, self.settings.channel_max_ack_pending),
                      worker_consumer(self.name, ack_wait,
                                      self.settings.channel_alert_max_ack_pending, Lane.ALERT)]
        return {c.durable_name or "": c for c in found}

    async def run(self) -> None:
        """Start, then wait until `stop()`; in-flight work is finished before returning."""
        await self.start()
        await self.stopping.wait()
        await self.drain()

    def stop(self) -> None:
        self.stopping.set()

    async def drain(self) -> None:
        """Let the current batch finish (sends in flight, records, reports, acks)."""
        self.stopping.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, self.settings.channel_drain_s)
            except TimeoutError:
                log.warning("channel_drain_timeout", channel=self.name)
            except Exception as error:
                log.error("channel_task_failed", channel=self.name, error=repr(error)[:300])
        self._tasks.clear()
        for fanout in self._fanouts:
            await fanout.close()
        await self.notices.stop()
        log.info("channel_stopped", channel=self.name,
                 counts=self.worker.counts if self.worker else {})

    def stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)


def _new(events: list[asyncio.Event]) -> asyncio.Event:
    event = asyncio.Event()
    events.append(event)
    return event
