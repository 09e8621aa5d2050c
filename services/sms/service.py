"""The SMS channel on the kit's shell (crieur.channel.service): provider, subscriber index,
resident's routes and provider webhooks, previews, the SMS port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from crieur import metrics
from crieur.bus import ensure_bucket, ensure_stream
from crieur.channel.pacing import Pacer
from crieur.channel.ratelimit import SharedLimit
from crieur.channel.sent import publish_patiently
from crieur.channel.service import ChannelService
from schemas import subjects
from schemas.buckets import SMS_LIMITS, SMS_MESSAGES, SMS_SUBSCRIBERS
from schemas.commune import Commune
from schemas.deliveries import Channel, DeliveryOutcome, DeliveryReport
from schemas.previews import PreviewRequest
from schemas.streams import COMMUNES, DELIVERIES
from services.sms.format import Sms
from services.sms.handlers import MessageIds, SmsChannel, message_key
from services.sms.preview import sms_preview
from services.sms.providers.brevo import BrevoProvider
from services.sms.providers.ovh import OvhProvider
from services.sms.sender import Provider, Receipt
from services.sms.settings import ProviderName, SmsSettings
from services.sms.subscribers import MESSAGES, Registry
from services.sms.web import WEBHOOKS, Limits, Web

log = structlog.get_logger("crieur.sms")
# How often numbers never confirmed are looked for (the email service sweeps as often).
SWEEP_EVERY_S = 3600.0


def make_provider(settings: SmsSettings) -> Provider | None:
    """The configured provider, or None (said in the log) when its credentials are missing."""
    missing = settings.missing()
    if missing:
        log.error("sms_channel_off", provider=str(settings.sms_provider), missing=missing,
                  hint="set these variables to turn the SMS channel on")
        return None
    secret = settings.webhook_secret()
    receipts = f"{settings.public_url}{WEBHOOKS}/{secret}/receipts" if secret else None
    if settings.sms_provider is ProviderName.OVH:
        assert settings.sms_ovh_application_key and settings.sms_ovh_application_secret
        assert settings.sms_ovh_consumer_key and settings.sms_ovh_service_name
        return OvhProvider(application_key=settings.sms_ovh_application_key,
                           application_secret=settings.sms_ovh_application_secret,
                           consumer_key=settings.sms_ovh_consumer_key,
                           service_name=settings.sms_ovh_service_name,
                           sender=settings.sms_sender, base_url=settings.api_url(),
                           timeout_s=settings.sms_timeout_s)
    key = settings.sms_brevo_api_key or "standin"
    return BrevoProvider(key, settings.sms_sender, base_url=settings.api_url(),
                         timeout_s=settings.sms_timeout_s, web_url=receipts,
                         concurrency=settings.sms_concurrency)


class SmsService(ChannelService):
    """Everything the SMS service runs; `start()` then `stop()` (tests run it in-process)."""

    channel = Channel.SMS
    ready_streams = (f"KV_{SMS_SUBSCRIBERS.name}", f"KV_{SMS_MESSAGES.name}",
                     f"KV_{SMS_LIMITS.name}")
    settings: SmsSettings

    def __init__(self, settings: SmsSettings, nc: Client | None = None, *,
                 provider: Provider | None = None, **given: Any) -> None:
        super().__init__(settings, nc=nc, **given)
        self.provider = provider
        self.registry: Registry | None = None
        self.web: Web | None = None
        self.message_ids: MessageIds | None = None
        # One pace for every SMS of this process, notices' (the kit's) and codes'
        # (CRIEUR_SMS_RATE).
        self.pacer = Pacer(settings.sms_rate)
        self._messages: KeyValue | None = None
        self._communes: KeyValue | None = None
        self._limits_kv: KeyValue | None = None

    async def open(self, js: JetStreamContext) -> None:
        self.registry = await Registry.open(js)
        self._messages = await ensure_bucket(js, MESSAGES)
        await ensure_stream(js, DELIVERIES)
        self._communes = await ensure_bucket(js, COMMUNES)
        self._limits_kv = await ensure_bucket(js, SMS_LIMITS)

    async def setup(self, nc: Client) -> None:
        registry, communes, messages = self.registry, self._communes, self._messages
        assert registry is not None and communes is not None and messages is not None
        js = nc.jetstream()
        self.message_ids = ids = MessageIds(messages, self.settings.channel_record_linger_s)
        self.background("subscribers", registry.watch)
        # Sends take numbers from the live index while this proves it current.
        self.background("index-probe", registry.keep_current)
        self.background("sweep", self._sweep_hourly)
        if self.provider is None:
            self.provider = make_provider(self.settings)
        self.web = Web(
            registry=registry, key=self.settings.secret_key(),
            commune_name=lambda insee: commune_name(communes, insee),
            send_now=self._send_now,
            record_receipt=lambda receipt: record_receipt(js, ids, receipt, self.clock),
            clock=self.clock,
            limits=self._limits(),
            countries=self.settings.countries(),
            trusted_proxies=self.settings.proxies(),
            webhook_secret=self.settings.webhook_secret(),
            code_ttl_s=self.settings.sms_code_ttl_s,
            code_attempts=self.settings.sms_code_attempts,
            transliterated=self.settings.sms_transliterate,
            enabled=self.provider is not None)
        await self.serve_routes(self.web.router())

        async def preview(request: PreviewRequest) -> BaseModel:
            return sms_preview(self.settings, registry, request, on=self.provider is not None)

        await self.serve_previews(preview)
        # The channel off (no provider credentials) is configured so: its routes still answer.
        if self.provider is not None:
            await self.run_kit(SmsChannel(self.settings, registry, self.provider, ids,
                                          self.clock, pacer=self.pacer), pacer=self.pacer)

    async def sweep(self) -> int:
        """Forget the numbers never confirmed for CRIEUR_SMS_UNCONFIRMED_MAX_AGE_S."""
        assert self.registry is not None
        return await self.registry.sweep_unconfirmed(
            self.clock() - timedelta(seconds=self.settings.sms_unconfirmed_max_age_s))

    async def _sweep_hourly(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.sweep()
            except Exception as error:  # NATS away: the next round does it
                log.warning("unconfirmed_sweep_failed", error=repr(error)[:200])

    def _limits(self) -> Limits:
        kv = self._limits_kv
        assert kv is not None
        # Keys start with the kit's name: two instances sharing one NATS count apart.
        name = self.name or Channel.SMS.value
        every, per_prefix = self.settings.code_budget()

        def limit(what: str, count: int) -> SharedLimit:
            return SharedLimit(kv, f"{name}.{what}", count, 3600.0,
                               clock=lambda: self.clock().timestamp())

        return Limits(per_client=limit("client", self.settings.sms_rate_per_client),
                      per_number=limit("number", self.settings.sms_rate_per_number),
                      codes=limit("codes", every), codes_per_prefix=limit("prefix", per_prefix))

    async def _send_now(self, number: str, sms: Sms) -> None:
        """A confirmation code: paced with the notices' SMS, ahead of the queued ones (the
        worker holds at most CRIEUR_SMS_CONCURRENCY sends in the pacer)."""
        assert self.provider is not None
        await self.pacer.wait()
        await self.provider.send(number, sms)

    async def close(self) -> None:
        if self.message_ids is not None:
            await self.message_ids.settled()
        if self.web is not None:
            await self.web.drain()
        if self.registry is not None:
            # Its loops end even if a cancellation is lost (3.11's wait_for in nats-py).
            self.registry.close()
        if self.provider is not None:
            await self.provider.aclose()

    def health(self) -> dict[str, Any]:
        return {"channel": "on" if self.provider else "off",
                "provider": str(self.settings.sms_provider),
                # Active subscribers indexed: the bench waits for its seeding.
                "subscribers": len(self.registry.index) if self.registry else 0}

    async def not_ready(self) -> list[str]:
        if self.registry is None or not self.registry.ready.is_set():
            return ["subscribers: index loading"]
        return []


async def commune_name(kv: KeyValue, insee: str) -> str | None:
    try:
        entry = await kv.get(insee)
        return Commune.model_validate_json(entry.value or b"").name
    except (nats.js.errors.KeyNotFoundError, ValidationError):
        return None


async def record_receipt(js: JetStreamContext, messages: MessageIds, receipt: Receipt,
                         clock: Callable[[], datetime]) -> bool:
    """A provider's delivery receipt as a DELIVERIES report (delivered, or failed and why)."""
    # A receipt may come back before its message id's record is written (they are
    # written in groups, after the send).
    await messages.settled()
    try:
        entry = await messages.kv.get(message_key(receipt.message_id))
        sent = json.loads(entry.value or b"{}")
        report = DeliveryReport(
            channel=Channel.SMS, commune=sent["commune"], notice_id=sent["notice_id"],
            version=sent["version"], at=clock(), target=sent.get("target", ""),
            outcome=DeliveryOutcome.DELIVERED if receipt.delivered else DeliveryOutcome.FAILED,
            detail=("delivered" if receipt.delivered
                    else f"not delivered: {receipt.status}")[:500])
    except (nats.js.errors.KeyNotFoundError, ValueError, KeyError, ValidationError):
        return False
    await publish_patiently(js, subjects.delivery(Channel.SMS, report.commune),
                            report.model_dump_json().encode(),
                            {Header.MSG_ID: f"sms-receipt:{receipt.message_id}:{receipt.status}"})
    metrics.DELIVERIES.labels(Channel.SMS.value, str(report.outcome)).inc()
    return True
