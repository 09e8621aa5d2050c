"""The channel service's shell: what every channel process does the same way.

A channel writes a `ChannelService` subclass with three parts: `open` (its buckets, retried
until NATS answers), `setup` (its routes, previews, port and background tasks, through
`serve_routes`, `serve_previews`, `run_kit` and `background`) and `close` (what it holds).
The shell connects to NATS (retrying for as long as it takes: nats-py gives up on a first
connection that fails), runs those, answers /healthz, /readyz and /metrics, drains the
kit's sends on SIGTERM, and `main` is the channel's `python -m services.<channel>`.

    start: connect (backoff 1 s .. 30 s) -> open (retried every second) -> setup -> ready
    stop:  routes unsubscribed -> kit drained -> close -> background tasks -> NATS drained
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crieur import metrics
from crieur.bus import connect
from crieur.channel import preview
from crieur.channel.http_bridge import Router
from crieur.channel.pacing import Pacer
from crieur.channel.port import ChannelPort
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from crieur.tasks import Supervisor
from schemas.deliveries import Channel
from schemas.previews import PreviewRequest

log = structlog.get_logger("crieur.channel")

# The first connection's backoff (then nats-py reconnects by itself).
CONNECT_FIRST_DELAY_S = 1.0
CONNECT_MAX_DELAY_S = 30.0
# Buckets not answering yet (a NATS just started, a cluster electing): tried again this often.
OPEN_RETRY_S = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class ChannelService:
    """One channel's process: a subclass writes `open`, `setup` and `close`; tests call
    `start()` and `stop()` themselves (with their own `nc`, `name` and `clock` if they like)."""

    channel: ClassVar[Channel]
    # KV buckets and streams checked by /readyz (e.g. "KV_email_subscribers").
    ready_streams: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: ChannelSettings, *, nc: Client | None = None,
                 name: str | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        # The kit's name (subjects jobs.<name>.*, durable names); tests give their own.
        self.name = name
        self.clock = clock
        self.nc = nc
        # A connection given to us is the giver's to close.
        self._own_nc = nc is None
        self.runner: ChannelRunner | None = None
        self.supervisor = Supervisor(str(self.channel))
        self._subscriptions: list[Subscription] = []
        self.ready = asyncio.Event()

    # What a channel writes.

    async def open(self, js: JetStreamContext) -> None:
        """Its buckets and streams; called again (after OPEN_RETRY_S) while it raises."""

    async def setup(self, nc: Client) -> None:
        """Its routes, previews, port and tasks (after `open` succeeded)."""

    async def close(self) -> None:
        """What it holds, once the kit has drained (indexes, pools, providers)."""

    def health(self) -> dict[str, Any]:
        """What /healthz adds for this channel (counts the bench waits for, a provider)."""
        return {}

    async def not_ready(self) -> list[str]:
        """What /readyz adds for this channel (a relay that does not answer)."""
        return []

    # What the shell gives it.

    @property
    def label(self) -> str:
        return self.name or str(self.channel)

    def background(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A task for the service's life, restarted after a failure (crieur.tasks)."""
        self.supervisor.start(name, run)

    async def serve_routes(self, router: Router) -> None:
        """The resident's routes, asked by the front door on channels.<channel>.http."""
        assert self.nc is not None
        self._subscriptions.append(await router.serve(self.nc, str(self.channel)))

    async def serve_previews(self, answer: Callable[[PreviewRequest], Awaitable[BaseModel]]
                             ) -> None:
        assert self.nc is not None
        self._subscriptions.append(await preview.serve_previews(self.nc, str(self.channel),
                                                                answer))

    async def run_kit(self, port: ChannelPort[Any], pacer: Pacer | None = None) -> None:
        """The kit's fan-out and worker for this port, started (consumers ready)."""
        assert self.nc is not None
        self.runner = ChannelRunner(port, self.settings, self.nc, name=self.name,
                                    now=self.clock, pacer=pacer)
        await self.runner.start()

    # The shell.

    async def start(self) -> None:
        if self.nc is None:
            self.nc = await connect_patiently(self.settings.nats_url, f"crieur-{self.label}")
        js = self.nc.jetstream()
        while True:
            try:
                await self.open(js)
                break
            except Exception as error:  # NATS not ready yet: wait for it, do not crash
                log.warning(f"{self.channel}_waiting_for_nats", name=self.label,
                            error=repr(error)[:200])
                await asyncio.sleep(OPEN_RETRY_S)
        await self.setup(self.nc)
        self.ready.set()
        # Each channel's own events (email_started, email_stopped...): what its operators grep.
        log.info(f"{self.channel}_started", name=self.label, health=self.health())

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.drain()  # type: ignore[no-untyped-call]
        self._subscriptions.clear()
        if self.runner is not None:
            await self.runner.drain()  # the sends in flight finish
        await self.close()
        # Bounded: Python 3.11's wait_for (inside nats-py requests) can swallow a cancellation.
        await self.supervisor.stop(within_s=5.0)
        if self.nc is not None and self._own_nc:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        log.info(f"{self.channel}_stopped", name=self.label)

    @property
    def healthy(self) -> bool:
        return self.ready.is_set() and self.nc is not None and self.nc.is_connected

    async def reasons(self) -> list[str]:
        """Why this channel cannot work now, for /readyz."""
        if not self.ready.is_set():
            return ["starting"]
        return [*(await self.runner.not_ready() if self.runner is not None else []),
                *await metrics.nats_reasons(self.nc, self.ready_streams),
                *metrics.task_reasons(self.supervisor.running()),
                *(f"task {name}: failing" for name in sorted(self.supervisor.failing)),
                *await self.not_ready()]


async def connect_patiently(url: str, name: str) -> Client:
    """A first connection, however long NATS takes to come up (then nats-py reconnects)."""
    delay = CONNECT_FIRST_DELAY_S
    while True:
        try:
            return await connect(url, name=name)
        except Exception as error:
            log.warning("channel_waiting_for_nats", connection=name, error=repr(error)[:200],
                        retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, CONNECT_MAX_DELAY_S)


def create_app(service: ChannelService, *, exit_on_failure: bool = True) -> Starlette:
    """/healthz, /readyz and /metrics; its lifespan starts the service in the background
    (the pages say 503 until it is up) and stops it (the kit drains) on SIGTERM."""

    def failed(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # Not a half-started service that looks alive: stop, and the launcher starts it again.
        log.error(f"{service.channel}_start_failed", name=service.label,
                  error=repr(task.exception())[:500])
        if exit_on_failure:
            os.kill(os.getpid(), signal.SIGTERM)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        starting = asyncio.create_task(service.start())
        starting.add_done_callback(failed)
        try:
            yield
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await starting
            await service.stop()

    async def healthz(_: Request) -> JSONResponse:
        ok = service.healthy
        nats_ok = service.nc is not None and service.nc.is_connected
        body = {"status": "ok" if ok else "starting" if nats_ok else "nats_disconnected",
                "nats": nats_ok, **service.health()}
        return JSONResponse(body, status_code=200 if ok else 503)

    app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"]),
                            *metrics.Readiness(service.reasons).routes()],
                    lifespan=lifespan)
    app.state.service = service
    return app
