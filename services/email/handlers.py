"""The email channel's port on the channel kit: who gets a notice, how it is built and sent.

The kit (crieur.channel) follows NOTICES, plans one job per recipient, checks that the
notice is still current and the job not sent yet; this file only answers its questions.
The address is taken at send time from the registry's live index while it is proven
current (else read from the bucket): an unsubscribe wins over a queued job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from crieur.channel.errors import Permanent, Unsubscribed
from crieur.channel.port import Edition, PortDefaults
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Notice
from services.email.format import BadAddress, EmailDraft, build_notice
from services.email.links import Links
from services.email.sender import Bounced, SmtpPool
from services.email.settings import EmailSettings
from services.email.subscribers import Registry, Subscriber

log = structlog.get_logger("crieur.email")


@dataclass
class EmailPort(PortDefaults):
    """`crieur.channel.port.ChannelPort[EmailDraft]` for email."""

    settings: EmailSettings
    registry: Registry
    links: Links
    pool: SmtpPool
    clock: Callable[[], datetime]
    channel: Channel = Channel.EMAIL
    concurrency: int = 1
    rate_per_s: float | None = None

    def __post_init__(self) -> None:
        # As many sends at once as the pool has connections; the relay's quota, if any.
        self.concurrency = self.settings.smtp_pool
        self.rate_per_s = self.settings.smtp_rate or self.settings.smtp_rate_per_s or None

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        """Confirmed, not suspended, following this commune and category."""
        await self.registry.ready.wait()
        for rid in self.registry.matching(notice.commune, notice.category.value):
            yield rid

    async def prepare(self, edition: Edition) -> EmailDraft:
        return build_notice(edition.kind, edition.notice, edition.commune_name,
                            from_address=self.settings.smtp_from,
                            public_url=self.settings.public_url, now=self.clock())

    async def send(self, job: Job, draft: EmailDraft) -> str:
        rid = job.recipient
        address = await self._address(job, draft)
        try:
            message = draft.personalise(rid, address, self.links.unsubscribe_url(rid),
                                        self.links.manage_url(rid))
        except BadAddress as error:
            raise Permanent("stored address unusable") from error
        await self.pool.send(draft.envelope_from, address, message)
        return rid[:12]

    async def _address(self, job: Job, draft: EmailDraft) -> str:
        """The address to send to now, or Unsubscribed (reported `dropped` by the kit)."""
        cached = self.registry.cached(job.recipient)
        if cached is not None:
            # The live index is proven current: no NATS read for this email.
            address, topics = cached
            if job.kind == EventKind.WITHDRAWN or (job.commune, draft.category) in topics:
                return address
        # Not current, or the index says no: the bucket says why (and is the authority).
        found = await self.registry.get(job.recipient)
        subscriber = found[0] if found else None
        refusal = _refusal(job, subscriber, draft.category)
        if refusal:
            # Reported `dropped` by the kit: the resident left or changed their mind.
            raise Unsubscribed(refusal)
        assert subscriber is not None
        return subscriber.email

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        if not isinstance(error, Bounced):
            return  # unsubscribed meanwhile: nothing to mark
        limit = self.settings.email_max_bounces

        def bounce(current: Subscriber | None) -> Subscriber | None:
            if current is None:
                return None
            bounces = current.bounces + 1
            return current.model_copy(update={"bounces": bounces,
                                              "suspended": bounces >= limit})

        marked = await self.registry.change(job.recipient, bounce)
        if marked is not None:
            log.warning("address_bounced", recipient=job.recipient[:12], code=error.code,
                        bounces=marked.bounces, suspended=marked.suspended)


def _refusal(job: Job, subscriber: Subscriber | None, category: str) -> str:
    """Why this job must not go to this subscriber now ("" if it may)."""
    if subscriber is None:
        return "unsubscribed"
    if not subscriber.confirmed:
        return "not confirmed"
    if subscriber.suspended:
        return "suspended after hard bounces"
    # A withdrawal goes to whoever got the notice; news of it is owed even to one who
    # has since stopped following that category.
    if job.kind != EventKind.WITHDRAWN and not subscriber.follows_notice(
            job.commune, category):
        return "no longer follows"
    return ""
