"""The push channel on the kit's shell (crieur.channel.service): the kit's fan-out and
worker for FCM topics, the device routes over request-reply, the previews."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from crieur.bus import ensure_bucket
from crieur.channel.http_bridge import Router
from crieur.channel.ratelimit import SharedLimit
from crieur.channel.service import ChannelService
from crieur.communes import CommuneDirectory
from crieur.mirror import BucketMirror
from schemas.buckets import PUSH_LIMITS
from schemas.deliveries import Channel
from schemas.previews import PreviewRequest, PushPreview
from schemas.streams import COMMUNES
from services.push.devices import DEVICES, Device, Devices
from services.push.handlers import DeviceRoutes, PushChannel
from services.push.preview import push_preview
from services.push.sender import FcmSender
from services.push.settings import PushSettings

log = structlog.get_logger("crieur.push")


class PushService(ChannelService):
    """Everything the push service runs, started and stopped as one."""

    channel = Channel.PUSH
    ready_streams = (f"KV_{DEVICES.name}", f"KV_{PUSH_LIMITS.name}")
    settings: PushSettings

    def __init__(self, settings: PushSettings, **given: Any) -> None:
        super().__init__(settings, **given)
        assert settings.fcm_credentials is not None and settings.fcm_project is not None
        # Opened now (no network): a credential firebase-admin cannot read stops the start-up.
        self.sender = FcmSender.open(settings.fcm_credentials, settings.fcm_project,
                                     settings.fcm_url, settings.fcm_timeout_s,
                                     threads=settings.push_concurrency + 32)
        self.routes: DeviceRoutes | None = None
        self.phones: BucketMirror[Device] | None = None
        self._devices: Devices | None = None
        self._communes: CommuneDirectory | None = None
        self._limits_kv: KeyValue | None = None

    async def open(self, js: JetStreamContext) -> None:
        self._devices = await Devices.open(js)
        self._communes = CommuneDirectory(await ensure_bucket(js, COMMUNES), service="push")
        # The previews count the phones on a topic from this copy (no bucket scan per preview).
        self.phones = BucketMirror(await ensure_bucket(js, DEVICES), Device, service="push")
        self._limits_kv = await ensure_bucket(js, PUSH_LIMITS)

    def _per_client(self) -> SharedLimit:
        """CRIEUR_PUSH_RATE_LIMIT_PER_IP an hour, shared by every process, kept across restarts."""
        assert self._limits_kv is not None
        # Keys start with the kit's name: two instances sharing one NATS count apart.
        return SharedLimit(self._limits_kv, f"{self.name or Channel.PUSH.value}.client",
                           self.settings.push_rate_limit_per_ip, 3600.0,
                           clock=lambda: self.clock().timestamp())

    async def setup(self, nc: Client) -> None:
        settings, communes, phones = self.settings, self._communes, self.phones
        assert self._devices is not None and communes is not None and phones is not None

        async def commune_known(insee: str) -> bool:
            return await communes.get(insee) is not None

        self.routes = DeviceRoutes(self._devices, self.sender, commune_known,
                                   per_client=self._per_client(), now=self.clock,
                                   reply_within_s=settings.push_reply_within_s,
                                   trusted_proxies=settings.proxies())
        router = Router()
        self.routes.register(router)
        await self.serve_routes(router)
        await phones.start()

        async def preview(request: PreviewRequest) -> PushPreview:
            return push_preview(phones, request, self.clock())

        await self.serve_previews(preview)
        await self.run_kit(PushChannel(self.sender, concurrency=settings.push_concurrency,
                                       rate_per_s=settings.push_rate_per_s or None,
                                       public_url=settings.public_url, now=self.clock))
        if settings.push_prune_every_s:
            self.background("devices-prune", self._prune_now_and_then)

    async def _prune_now_and_then(self) -> None:
        assert self.routes is not None
        while True:
            await asyncio.sleep(self.settings.push_prune_every_s)
            try:
                forgotten = await self.routes.prune()
                log.info("devices_pruned", forgotten=forgotten)
            except Exception as error:  # NATS away: next time
                log.warning("devices_prune_failed", error=repr(error)[:300])

    async def close(self) -> None:
        if self.phones is not None:
            try:
                await self.phones.stop()
            except Exception as error:
                log.warning("devices_mirror_not_stopped", error=repr(error)[:200])
        await self.sender.close()

    def health(self) -> dict[str, Any]:
        return {"fcm_url": self.settings.fcm_url}
