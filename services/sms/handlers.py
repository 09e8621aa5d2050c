"""The SMS channel on the kit (ChannelPort): who gets a notice, its SMS, and sending it.

- recipients: confirmed numbers following the commune and category, and only for the
  categories SMS carries in that commune (alerts by default: SMS costs money);
- prepare: the SMS of a notice event, built once (the same for every recipient);
- hold: quiet hours (a non-alert is held: the kit puts the job back on the queue until
  they end, before the pace, and checks it again then: withdrawn or expired, it is dropped);
- send: the number as it stands now (STOP wins: from the live index while it is proven
  current, else read from the bucket), then the provider (the kit paced it at
  CRIEUR_SMS_RATE, with a pacer the confirmation codes share).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from nats.js.kv import KeyValue

from crieur.channel.errors import Permanent, Unsubscribed
from crieur.channel.grouped import GroupWriter
from crieur.channel.pacing import Pacer
from crieur.channel.port import Edition, PortDefaults
from schemas.deliveries import Channel
from schemas.jobs import Job
from schemas.notice import Category, Notice
from services.sms import format as compose
from services.sms import quiet
from services.sms.sender import INVALID_NUMBER, Provider
from services.sms.settings import SmsSettings
from services.sms.subscribers import Registry, Subscriber

log = structlog.get_logger("crieur.sms")


def message_key(message_id: str) -> str:
    """A provider's message id as a KV key."""
    return re.sub(r"[^A-Za-z0-9_=-]", "_", message_id)[:200]


class MessageIds:
    """Provider message id -> what was sent (bucket sms_messages), for delivery receipts.

    Written off the send path and in groups, as the kit's sent records are
    (crieur.channel.grouped): a KV put awaited in every send was a NATS round trip and a
    socket write of its own per SMS. `settled()` waits until every record handed over is
    written: a receipt reads after it.
    """

    def __init__(self, kv: KeyValue, linger_s: float) -> None:
        self.kv = kv
        self._records: GroupWriter[tuple[str, bytes]] = GroupWriter(
            self._write, linger_s, name="sms_message_ids")

    def keep(self, message_id: str, record: dict[str, object]) -> None:
        self._records.add((message_key(message_id), json.dumps(record).encode()))

    async def _write(self, group: list[tuple[str, bytes]]) -> None:
        done = await asyncio.gather(*(self.kv.put(key, value) for key, value in group),
                                    return_exceptions=True)
        lost = [error for error in done if isinstance(error, BaseException)]
        if lost:  # the SMS are sent: a lost receipt is no reason to resend
            log.warning("sms_message_id_not_kept", count=len(lost), error=repr(lost[0])[:200])

    async def settled(self) -> None:
        await self._records.flush()


@dataclass(frozen=True)
class Draft:
    sms: compose.Sms
    alert: bool


def notice_link(settings: SmsSettings, notice: Notice) -> str:
    return settings.sms_notice_url.format(public_url=settings.public_url,
                                          commune=notice.commune, id=notice.id)


def draft_for(settings: SmsSettings, edition: Edition) -> Draft:
    """The SMS of one edition (pure given the settings)."""
    notice = edition.notice
    sms = compose.compose_notice(
        kind=edition.kind, commune_name=edition.commune_name, label=notice.label,
        title=notice.title, body=notice.body, link=notice_link(settings, notice),
        stop=compose.stop_mention(settings.sms_stop_number), max_parts=settings.sms_max_parts,
        transliterated=settings.sms_transliterate)
    return Draft(sms=sms, alert=notice.category is Category.ALERTE)


class SmsChannel(PortDefaults):
    channel = Channel.SMS

    def __init__(self, settings: SmsSettings, registry: Registry, provider: Provider,
                 messages: MessageIds, clock: Callable[[], datetime],
                 pacer: Pacer | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.provider = provider
        self.messages = messages
        self.clock = clock
        self.concurrency = settings.sms_concurrency
        self.rate_per_s: float | None = settings.sms_rate
        # The kit paces with it, and the confirmation codes (services.sms.service) share
        # it: one pace for all SMS.
        self.pacer = pacer or Pacer(settings.sms_rate)
        self._hours = settings.quiet_hours()

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        if notice.category not in self.settings.categories_for(notice.commune):
            log.info("sms_category_not_carried", notice_id=notice.id, commune=notice.commune,
                     category=str(notice.category))
            return
        try:
            await asyncio.wait_for(self.registry.ready.wait(), 30)
        except TimeoutError:
            # Planning with a half-loaded index would skip people: fail, the kit retries.
            raise RuntimeError("SMS subscribers not loaded yet") from None
        for rid in self.registry.matching(notice.commune, str(notice.category)):
            yield rid

    async def prepare(self, edition: Edition) -> Draft:
        return draft_for(self.settings, edition)

    async def hold(self, job: Job, notice: Notice) -> float | None:
        if notice.category is Category.ALERTE:
            return None
        wait = quiet.seconds_left(self.clock(), self._hours)
        return min(wait, self.settings.sms_hold_recheck_s) if wait > 0 else None

    async def send(self, job: Job, draft: Draft) -> str:
        phone = await self._number(job.recipient)
        accepted = await self.provider.send(phone, draft.sms)
        if accepted.message_id:
            self.messages.keep(accepted.message_id, {
                "commune": job.commune, "notice_id": job.notice_id, "version": job.version,
                "kind": str(job.kind), "target": job.recipient[:12]})
        return job.recipient[:12]

    async def _number(self, rid: str) -> str:
        """The number to send to now; Unsubscribed or Permanent (invalid) if none."""
        cached = self.registry.cached(rid)
        if cached is not None:
            # The live index is proven current and holds active subscribers only
            # (confirmed, number not invalid): no NATS read and no parse for this SMS.
            return cached[0]
        # Not current, or not active: the bucket says why (and is the authority).
        found = await self.registry.get(rid)
        subscriber: Subscriber | None = found[0] if found else None
        if subscriber is None or not subscriber.confirmed:
            raise Unsubscribed("unsubscribed")
        if subscriber.invalid:
            raise Permanent(INVALID_NUMBER)
        return subscriber.phone

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        if error.reason != INVALID_NUMBER:
            return

        def flag(current: Subscriber | None) -> Subscriber | None:
            if current is None or current.invalid:
                return None
            return current.model_copy(update={"invalid": True})

        await self.registry.change(job.recipient, flag)
        log.warning("sms_number_flagged_invalid", recipient=job.recipient[:12])
