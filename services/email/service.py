"""The email channel on the kit's shell (crieur.channel.service): the subscriber index, the
resident's routes, the previews and the SMTP port.

Several processes may run at once: they share the work queue and the routes' queue group.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from crieur.bus import ensure_bucket
from crieur.channel.ratelimit import SharedLimit
from crieur.channel.service import ChannelService
from schemas.buckets import EMAIL_LIMITS
from schemas.commune import Commune
from schemas.deliveries import Channel
from schemas.previews import EmailPreview, PreviewRequest
from schemas.streams import COMMUNES
from services.email.format import build_already_subscribed, build_confirmation, build_new_links
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


class EmailService(ChannelService):
    """Everything the email channel runs in one process."""

    channel = Channel.EMAIL
    ready_streams = (f"KV_{SUBSCRIBERS.name}", f"KV_{EMAIL_LIMITS.name}")
    settings: EmailSettings

    def __init__(self, settings: EmailSettings, **given: Any) -> None:
        given.setdefault("name", settings.email_channel_name)
        super().__init__(settings, **given)
        self.links = Links(settings.secret_key(), settings.public_url,
                           settings.email_confirm_max_age_s, settings.email_link_key,
                           clock=lambda: self.clock().timestamp())
        self.pool = SmtpPool(SmtpConfig.from_settings(settings))
        self.registry: Registry | None = None
        self.web: Web | None = None
        self._communes: KeyValue | None = None
        self._limits_kv: KeyValue | None = None

    async def open(self, js: JetStreamContext) -> None:
        self.registry = await Registry.open(js)
        self._communes = await ensure_bucket(js, COMMUNES)
        self._limits_kv = await ensure_bucket(js, EMAIL_LIMITS)

    async def setup(self, nc: Client) -> None:
        registry, communes = self.registry, self._communes
        assert registry is not None and communes is not None
        self.background("subscribers", registry.watch)
        self.background("sweep", self.sweep)
        # Sends take addresses from the live index while this proves it current.
        self.background("index-probe", registry.keep_current)

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
            registry=registry, links=self.links, commune_name=commune_name,
            send_confirmation=self.send_confirmation,
            send_already=self.send_already_subscribed, send_new_links=self.send_new_links,
            clock=self.clock,
            per_client=self._limit("client", self.settings.email_rate_per_client),
            per_address=self._limit("mailbox", self.settings.email_rate_per_address),
            trusted_proxies=self.settings.proxies())
        await self.serve_routes(self.web.router())

        async def preview(request: PreviewRequest) -> EmailPreview:
            return email_preview(self.settings, registry, request, self.clock())

        await self.serve_previews(preview)
        await self.run_kit(EmailPort(self.settings, registry, self.links, self.pool,
                                     self.clock))
        await registry.ready.wait()

    def _limit(self, what: str, count: int) -> SharedLimit:
        """`count` an hour, shared by every process and kept across restarts."""
        assert self._limits_kv is not None
        # Keys start with the kit's name: two instances sharing one NATS count apart.
        return SharedLimit(self._limits_kv, f"{self.name or Channel.EMAIL.value}.{what}",
                           count, HOUR, clock=lambda: self.clock().timestamp())

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

    async def send_new_links(self, address: str, manage_url: str) -> None:
        message = build_new_links(address=address, manage_url=manage_url,
                                  from_address=self.settings.smtp_from, now=self.clock(),
                                  nonce=new_nonce())
        await self.pool.send(self.settings.smtp_from, address, message)

    async def close(self) -> None:
        if self.web is not None:
            await self.web.drain()
        if self.registry is not None:
            # Its loops end even if a cancellation is lost (3.11's wait_for in nats-py).
            self.registry.close()
        await self.pool.close()

    def health(self) -> dict[str, Any]:
        return {"subscribers": len(self.registry.index) if self.registry else 0}

    async def not_ready(self) -> list[str]:
        return self.pool.not_ready()
