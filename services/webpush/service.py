"""The Web Push channel on the kit's shell (crieur.channel.service): the subscriptions'
index, the resident's routes, the previews and the kit's sends."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from crieur.bus import ensure_bucket
from crieur.channel.ratelimit import SharedLimit
from crieur.channel.service import ChannelService
from crieur.communes import CommuneDirectory
from schemas.buckets import WEBPUSH_LIMITS, WEBPUSH_SUBSCRIPTIONS
from schemas.commune import Commune
from schemas.deliveries import Channel
from schemas.previews import PreviewRequest, WebpushPreview
from schemas.streams import COMMUNES
from services.webpush.handlers import WebpushChannel
from services.webpush.preview import webpush_preview
from services.webpush.sender import WebpushSender
from services.webpush.settings import WebpushSettings
from services.webpush.subscriptions import Registry, b64encode
from services.webpush.web import Routes


class WebpushService(ChannelService):
    channel = Channel.WEBPUSH
    ready_streams = (f"KV_{WEBPUSH_SUBSCRIPTIONS.name}", f"KV_{WEBPUSH_LIMITS.name}")
    settings: WebpushSettings

    def __init__(self, settings: WebpushSettings, **given: Any) -> None:
        super().__init__(settings, **given)
        vapid = settings.vapid()  # a key that cannot be read stops the start-up
        self.public_key = b64encode(vapid.public_key.public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint))
        self.sender = WebpushSender(vapid, settings.webpush_subject,
                                    timeout_s=settings.webpush_timeout_s,
                                    concurrency=settings.webpush_concurrency)
        self.registry: Registry | None = None
        self._communes: CommuneDirectory | None = None
        self._limits_kv: KeyValue | None = None

    async def open(self, js: JetStreamContext) -> None:
        self.registry = await Registry.open(js)
        self._communes = CommuneDirectory(await ensure_bucket(js, COMMUNES), service="webpush")
        self._limits_kv = await ensure_bucket(js, WEBPUSH_LIMITS)

    def _per_client(self) -> SharedLimit:
        """CRIEUR_WEBPUSH_RATE_LIMIT_PER_IP an hour, shared by every process, kept across
        restarts."""
        assert self._limits_kv is not None
        # Keys start with the kit's name: two instances sharing one NATS count apart.
        return SharedLimit(self._limits_kv, f"{self.name or Channel.WEBPUSH.value}.client",
                           self.settings.webpush_rate_limit_per_ip, 3600.0,
                           clock=lambda: self.clock().timestamp())

    async def setup(self, nc: Client) -> None:
        registry, communes, settings = self.registry, self._communes, self.settings
        assert registry is not None and communes is not None
        self.background("subscriptions", registry.watch)
        # Sends take subscriptions from the live index while this proves it current.
        self.background("index-probe", registry.keep_current)
        await communes.start()

        async def commune(insee: str) -> Commune | None:
            return await communes.get(insee)

        routes = Routes(registry, self.public_key, commune,
                        extra_hosts=settings.extra_hosts(),
                        per_client=self._per_client(), clock=self.clock,
                        trusted_proxies=settings.proxies())
        await self.serve_routes(routes.router())

        async def preview(request: PreviewRequest) -> WebpushPreview:
            return webpush_preview(registry, request, settings.public_url, self.clock())

        await self.serve_previews(preview)
        await self.run_kit(WebpushChannel(registry, self.sender,
                                          concurrency=settings.webpush_concurrency,
                                          public_url=settings.public_url, clock=self.clock))

    async def close(self) -> None:
        if self.registry is not None:
            self.registry.close()
        if self._communes is not None:
            await self._communes.stop()
        await self.sender.close()

    def health(self) -> dict[str, Any]:
        # Subscribed browsers indexed: the bench waits for its seeding.
        return {"subscriptions": len(self.registry.index) if self.registry else 0}

    async def not_ready(self) -> list[str]:
        if self.registry is None or not self.registry.ready.is_set():
            return ["subscriptions: index loading"]
        return []
