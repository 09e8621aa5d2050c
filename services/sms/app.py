"""Builds the SMS service from settings: provider, registry, kit runner, routes, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import nats
import nats.js.errors
import structlog
import uvicorn
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crieur import metrics
from crieur.bus import connect, ensure_bucket, ensure_stream
from crieur.channel.pacing import Pacer
from crieur.channel.preview import serve_previews
from crieur.channel.ratelimit import SharedLimit
from crieur.channel.runner import ChannelRunner
from crieur.channel.sent import publish_patiently
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


def utcnow() -> datetime:
    return datetime.now(UTC)


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


@dataclass
class SmsService:
    """Everything the SMS service runs; `start()` then `stop()` (tests run it in-process)."""

    settings: SmsSettings
    nc: Client
    clock: Callable[[], datetime] = utcnow
    # Tests give each run its own kit name (subjects, durable consumers, sent records).
    name: str | None = None
    provider: Provider | None = None
    registry: Registry | None = None
    runner: ChannelRunner | None = None
    web: Web | None = None
    message_ids: MessageIds | None = None
    # One pace for every SMS of this process, notices' and codes' (CRIEUR_SMS_RATE).
    pacer: Pacer | None = None
    _subscription: Subscription | None = None
    _previews: Subscription | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        js = self.nc.jetstream()
        self.registry = await Registry.open(js)
        messages = await ensure_bucket(js, MESSAGES)
        self.message_ids = ids = MessageIds(messages, self.settings.channel_record_linger_s)
        await ensure_stream(js, DELIVERIES)
        self._tasks.append(asyncio.create_task(self.registry.watch()))
        # Sends take numbers from the live index while this proves it current.
        self._tasks.append(asyncio.create_task(self.registry.keep_current()))
        self._tasks.append(asyncio.create_task(self._sweep_hourly()))
        if self.provider is None:
            self.provider = make_provider(self.settings)
        key = self.settings.secret_key()
        communes = await ensure_bucket(js, COMMUNES)
        self.pacer = Pacer(self.settings.sms_rate)
        self.web = Web(
            registry=self.registry, key=key,
            commune_name=lambda insee: commune_name(communes, insee),
            send_now=self._send_now,
            record_receipt=lambda receipt: record_receipt(js, ids, receipt, self.clock),
            clock=self.clock,
            limits=await self._limits(js),
            countries=self.settings.countries(),
            trusted_proxies=self.settings.proxies(),
            webhook_secret=self.settings.webhook_secret(),
            code_ttl_s=self.settings.sms_code_ttl_s,
            code_attempts=self.settings.sms_code_attempts,
            transliterated=self.settings.sms_transliterate,
            enabled=self.provider is not None)
        self._subscription = await self.web.router().serve(self.nc, Channel.SMS)
        registry = self.registry

        async def preview(request: PreviewRequest) -> BaseModel:
            return sms_preview(self.settings, registry, request, on=self.provider is not None)

        self._previews = await serve_previews(self.nc, Channel.SMS, preview)
        if self.provider is not None:
            port = SmsChannel(self.settings, self.registry, self.provider, ids, self.clock,
                              pacer=self.pacer)
            self.runner = ChannelRunner(port, self.settings, self.nc, name=self.name,
                                        now=self.clock)
            await self.runner.start()
        log.info("sms_service_started", provider=str(self.settings.sms_provider),
                 on=self.provider is not None, quiet_hours=self.settings.sms_quiet_hours)

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

    async def _limits(self, js: JetStreamContext) -> Limits:
        kv = await ensure_bucket(js, SMS_LIMITS)
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
        assert self.provider is not None and self.pacer is not None
        await self.pacer.wait()
        await self.provider.send(number, sms)

    async def stop(self) -> None:
        for subscription in (self._subscription, self._previews):
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.drain()  # type: ignore[no-untyped-call]
        if self.runner is not None:
            await self.runner.drain()
        if self.message_ids is not None:
            await self.message_ids.settled()
        if self.web is not None:
            await self.web.drain()
        if self.registry is not None:
            # Its loops end even if a cancellation is lost (3.11's wait_for in nats-py).
            self.registry.close()
        for task in self._tasks:
            task.cancel()
        if self.provider is not None:
            await self.provider.aclose()


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


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service stops the kit first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def main(settings: SmsSettings) -> None:
    nc = await connect(settings.nats_url)
    service = SmsService(settings, nc)
    await service.start()

    async def healthz(request: Request) -> JSONResponse:
        ok = nc.is_connected
        return JSONResponse({"status": "ok" if ok else "nats unreachable",
                             "channel": "on" if service.provider else "off",
                             "provider": str(settings.sms_provider),
                             # Active subscribers indexed: the bench waits for its seeding.
                             "subscribers": len(service.registry.index)
                             if service.registry else 0},
                            status_code=200 if ok else 503)

    async def ready() -> list[str]:
        # The channel off (no provider credentials) is configured so: its routes still answer.
        found = await service.runner.not_ready() if service.runner is not None else []
        if service.registry is None or not service.registry.ready.is_set():
            found.append("subscribers: index loading")
        return [*found, *await metrics.nats_reasons(
                    nc, [f"KV_{SMS_SUBSCRIBERS.name}", f"KV_{SMS_MESSAGES.name}",
                         f"KV_{SMS_LIMITS.name}"]),
                *metrics.task_reasons({f"task{i}": t for i, t in enumerate(service._tasks)})]

    routes = [Route("/healthz", healthz), *metrics.Readiness(ready).routes()]
    server = _Server(uvicorn.Config(Starlette(routes=routes),
                                   host=settings.sms_http_host, port=settings.sms_http_port,
                                   log_config=None, access_log=False, lifespan="off",
                                   proxy_headers=False))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    serving = asyncio.create_task(server.serve())
    await stopping.wait()
    log.info("sms_service_stopping")
    await service.stop()
    server.should_exit = True
    await serving
    await nc.drain()
