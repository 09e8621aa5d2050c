"""Builds the email service from its settings: the channel kit, the resident's routes, /healthz.

One process: it connects to NATS (retrying for as long as it takes), loads the subscriber
index, answers `channels.email.http` for the front door, and runs the kit's fan-out and
worker with the email port. Several processes may run at once: they share the work queue
and the routes' queue group. On SIGTERM the kit drains the sends in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js.errors import KeyNotFoundError

from crieur import metrics
from crieur.bus import connect, ensure_bucket
from crieur.channel.preview import serve_previews
from crieur.channel.ratelimit import RateLimiter
from crieur.channel.runner import ChannelRunner
from schemas.commune import Commune
from schemas.deliveries import Channel
from schemas.previews import EmailPreview, PreviewRequest
from schemas.streams import COMMUNES
from services.email.format import build_already_subscribed, build_confirmation
from services.email.handlers import EmailPort
from services.email.links import Links
from services.email.preview import email_preview
from services.email.sender import SmtpConfig, SmtpPool
from services.email.settings import EmailSettings
from services.email.subscribers import SUBSCRIBERS, Registry
from services.email.web import Web, new_nonce

log = structlog.get_logger("crieur.email")

HOUR = 3600.0
SWEEP_EVERY_S = HOUR


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EmailService:
    """Everything the email channel runs in one process."""

    def __init__(self, settings: EmailSettings, *, clock: Callable[[], datetime] = _utcnow,
                 name: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        # The kit's name (subjects jobs.<name>.*, durable names); tests give their own.
        self.name = name or settings.email_channel_name
        self.links = Links(settings.secret_key(), settings.public_url,
                           settings.email_confirm_max_age_s)
        self.pool = SmtpPool(SmtpConfig.from_settings(settings))
        self.nc: Client | None = None
        self.registry: Registry | None = None
        self.runner: ChannelRunner | None = None
        self.web: Web | None = None
        self._http: Subscription | None = None
        self._previews: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    async def start(self) -> None:
        delay = 1.0
        while True:  # nats-py gives up on a first connection that fails: we do not
            try:
                self.nc = await connect(self.settings.nats_url, name=f"crieur-{self.name}")
                break
            except Exception as error:
                log.warning("email_waiting_for_nats", error=repr(error)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        js = self.nc.jetstream()
        while True:
            try:
                self.registry = await Registry.open(js)
                communes = await ensure_bucket(js, COMMUNES)
                break
            except Exception as error:  # NATS not ready yet: wait for it, do not crash
                log.warning("email_waiting_for_nats", error=repr(error)[:200])
                await asyncio.sleep(1.0)
        self._tasks.append(asyncio.create_task(self.registry.watch(), name="email-subscribers"))
        self._tasks.append(asyncio.create_task(self.sweep(), name="email-sweep"))
        # Sends take addresses from the live index while this proves it current.
        self._tasks.append(asyncio.create_task(self.registry.keep_current(),
                                               name="email-index-probe"))

        async def commune_name(insee: str) -> str | None:
            try:
                entry = await communes.get(insee)
            except KeyNotFoundError:
                return None
            except Exception as error:
                if "invalid key" in str(error).lower():
                    return None
                raise
            return Commune.model_validate_json(entry.value or b"").name if entry.value else None

        self.web = Web(
            registry=self.registry, links=self.links, commune_name=commune_name,
            send_confirmation=self.send_confirmation,
            send_already=self.send_already_subscribed, clock=self.clock,
            per_client=RateLimiter(self.settings.email_rate_per_client, HOUR),
            per_address=RateLimiter(self.settings.email_rate_per_address, HOUR),
            trusted_proxies=self.settings.proxies())
        self._http = await self.web.router().serve(self.nc, Channel.EMAIL.value)
        registry = self.registry

        async def preview(request: PreviewRequest) -> EmailPreview:
            return email_preview(self.settings, registry, request, self.clock())

        self._previews = await serve_previews(self.nc, Channel.EMAIL.value, preview)
        port = EmailPort(self.settings, self.registry, self.links, self.pool, self.clock)
        self.runner = ChannelRunner(port, self.settings, self.nc, name=self.name)
        self._tasks.append(asyncio.create_task(self.runner.run(), name="email-kit"))
        await self.registry.ready.wait()
        await self.runner.ready.wait()
        self.ready.set()
        log.info("email_started", smtp=f"{self.settings.smtp_host}:{self.settings.smtp_port}",
                 tls=self.settings.smtp_tls.value, pool=self.settings.smtp_pool,
                 subscribers=len(self.registry.index), public_url=self.settings.public_url)

    async def sweep(self) -> None:
        """Hourly: forget addresses whose confirmation link expired unused."""
        assert self.registry is not None
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.registry.sweep_unconfirmed(self.clock() - timedelta(
                    seconds=self.settings.email_confirm_max_age_s))
            except Exception as error:  # NATS away: the next round does it
                log.warning("unconfirmed_sweep_failed", error=repr(error)[:200])

    async def send_confirmation(self, address: str, confirm_url: str, communes: list[str]) -> None:
        message = build_confirmation(address=address, confirm_url=confirm_url, communes=communes,
                                     from_address=self.settings.smtp_from, now=self.clock(),
                                     nonce=new_nonce())
        await self.pool.send(self.settings.smtp_from, address, message)

    async def send_already_subscribed(self, address: str, manage_url: str) -> None:
        message = build_already_subscribed(address=address, manage_url=manage_url,
                                           from_address=self.settings.smtp_from,
                                           now=self.clock(), nonce=new_nonce())
        await self.pool.send(self.settings.smtp_from, address, message)

    async def stop(self) -> None:
        for subscription in (self._http, self._previews):
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        if self.web is not None:
            await self.web.drain()
        if self.runner is not None:
            self.runner.stop()
        if self.registry is not None:
            self.registry.close()
        for task in self._tasks:
            if task.get_name() == "email-kit":
                with contextlib.suppress(Exception):
                    await task  # the kit drains its sends in flight
            else:
                task.cancel()
                # Bounded: Python 3.11's wait_for (inside nats-py requests) can swallow a
                # cancellation; the registry's loops also end on close().
                done, _ = await asyncio.wait({task}, timeout=5.0)
                if not done:
                    log.warning("email_task_not_stopped", task=task.get_name())
                elif not task.cancelled():
                    task.exception()  # retrieved: a task that failed while stopping is moot
        await self.pool.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        log.info("email_stopped")

    @property
    def healthy(self) -> bool:
        return self.ready.is_set() and self.nc is not None and self.nc.is_connected


def create_app(settings: EmailSettings, service: EmailService | None = None) -> FastAPI:
    """A tiny ASGI app for /healthz; its lifespan runs the email service."""
    email = service or EmailService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starting = asyncio.create_task(email.start())
        # A start that fails for good must say so (and /healthz stays 503).
        starting.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None or log.error(
                "email_start_failed", error=repr(t.exception())[:300]))
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            await email.stop()

    app = FastAPI(title="Crieur — courriel", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.email = email

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Any:
        body = {"status": "ok" if email.healthy else "starting_or_nats_disconnected",
                "subscribers": len(email.registry.index) if email.registry else 0}
        return JSONResponse(body, status_code=200 if email.healthy else 503)

    async def ready() -> list[str]:
        if email.runner is None or email.registry is None:
            return ["starting"]
        return [*await email.runner.not_ready(),
                *await metrics.nats_reasons(email.nc, [f"KV_{SUBSCRIBERS.name}"]),
                *metrics.task_reasons({t.get_name(): t for t in email._tasks}),
                *email.pool.not_ready()]

    app.router.routes.extend(metrics.Readiness(ready).routes())
    return app
