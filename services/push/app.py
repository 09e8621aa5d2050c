"""Builds the push service from its settings: the kit's fan-out and worker for FCM topics,
the device routes over request-reply, and /healthz on CRIEUR_PUSH_HTTP_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from crieur import metrics
from crieur.bus import connect, ensure_bucket
from crieur.channel.http_bridge import Router
from crieur.channel.preview import serve_previews
from crieur.channel.runner import ChannelRunner
from crieur.communes import CommuneDirectory
from crieur.mirror import BucketMirror
from schemas.deliveries import Channel
from schemas.previews import PreviewRequest, PushPreview
from schemas.streams import COMMUNES
from services.push.devices import DEVICES, Device, Devices
from services.push.handlers import DeviceRoutes, PushChannel
from services.push.preview import push_preview
from services.push.sender import FcmSender
from services.push.settings import PushSettings

log = structlog.get_logger("crieur.push")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PushService:
    """Everything the push service runs, started and stopped as one."""

    def __init__(self, settings: PushSettings, *, name: str | None = None,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.settings = settings
        self.name = name
        self.now = now
        self.nc: Client | None = None
        assert settings.fcm_credentials is not None and settings.fcm_project is not None
        # Opened now (no network): a credential firebase-admin cannot read stops the start-up.
        self.sender = FcmSender.open(settings.fcm_credentials, settings.fcm_project,
                                     settings.fcm_url, settings.fcm_timeout_s,
                                     threads=settings.push_concurrency + 32)
        self.runner: ChannelRunner | None = None
        self.routes: DeviceRoutes | None = None
        self._http: Subscription | None = None
        self._previews: Subscription | None = None
        self.phones: BucketMirror[Device] | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        settings = self.settings
        while self.nc is None:
            try:
                self.nc = await connect(settings.nats_url, name="crieur-push")
            except Exception as error:  # NATS not up yet: a channel waits for it
                log.warning("push_waiting_for_nats", error=repr(error)[:200])
                await asyncio.sleep(1.0)
        port = PushChannel(self.sender, concurrency=settings.push_concurrency,
                           rate_per_s=settings.push_rate_per_s or None,
                           public_url=settings.public_url, now=self.now)
        self.runner = ChannelRunner(port, settings, self.nc, name=self.name, now=self.now)
        js = self.runner.js
        await self.runner.ensure()
        devices = await Devices.open(js)
        communes = CommuneDirectory(await ensure_bucket(js, COMMUNES), service="push")

        async def commune_known(insee: str) -> bool:
            return await communes.get(insee) is not None

        self.routes = DeviceRoutes(devices, self.sender, commune_known,
                                   per_hour=settings.push_rate_limit_per_ip, now=self.now,
                                   reply_within_s=settings.push_reply_within_s,
                                   trusted_proxies=settings.proxies())
        router = Router()
        self.routes.register(router)
        self._http = await router.serve(self.nc, Channel.PUSH.value)
        # The previews count the phones on a topic from this copy (no bucket scan per preview).
        phones = BucketMirror(await ensure_bucket(js, DEVICES), Device, service="push")
        await phones.start()
        self.phones = phones

        async def preview(request: PreviewRequest) -> PushPreview:
            return push_preview(phones, request, self.now())

        self._previews = await serve_previews(self.nc, Channel.PUSH.value, preview)
        await self.runner.start()
        if settings.push_prune_every_s:
            self._task = asyncio.create_task(self._prune_now_and_then(
                settings.push_prune_every_s))
        self.ready.set()
        log.info("push_started", fcm_url=settings.fcm_url, project=settings.fcm_project)

    async def _prune_now_and_then(self, every_s: float) -> None:
        assert self.routes is not None
        while True:
            await asyncio.sleep(every_s)
            try:
                forgotten = await self.routes.prune()
                log.info("devices_pruned", forgotten=forgotten)
            except Exception as error:  # NATS away: next time
                log.warning("devices_prune_failed", error=repr(error)[:300])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for subscription in (self._http, self._previews):
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        if self.phones is not None:
            with contextlib.suppress(Exception):
                await self.phones.stop()
        if self.runner is not None:
            await self.runner.drain()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        await self.sender.close()


def _exit_if_failed(task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    # Not a half-started service that looks alive: stop, and the launcher starts it again.
    log.error("push_start_failed", error=repr(task.exception())[:500])
    os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings: PushSettings) -> FastAPI:
    service = PushService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Started in the background: the health page answers 503 until NATS is there.
        task = asyncio.create_task(service.start())
        task.add_done_callback(_exit_if_failed)
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            await service.stop()

    app = FastAPI(title="Crieur push", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        nats_ok = service.nc is not None and service.nc.is_connected
        ok = service.ready.is_set() and nats_ok
        return JSONResponse({"status": "ok" if ok else "starting", "nats": nats_ok,
                             "fcm_url": settings.fcm_url},
                            status_code=200 if ok else 503)

    async def ready() -> list[str]:
        if service.runner is None:
            return ["starting"]
        tasks = {"devices-prune": service._task} if settings.push_prune_every_s else {}
        return [*await service.runner.not_ready(),
                *await metrics.nats_reasons(service.nc, [f"KV_{DEVICES.name}"]),
                *metrics.task_reasons(tasks)]

    app.router.routes.extend(metrics.Readiness(ready).routes())
    return app
