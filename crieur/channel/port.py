"""The port: what a channel writes to plug into the kit (who, how to build, how to send).

The kit (fanout, worker, sent records, reports, backoff, dead letters) calls only these.
A channel implements `ChannelPort` with a plain class; it never touches JetStream itself.

Life of one notice event in a channel:

1. fan-out: for a publication the kit asks `recipients(notice)`; for a correction or a
   withdrawal it takes, from its own sent records, those who got an earlier version. One
   `Job` per recipient goes on `jobs.<channel>.<commune>`.
2. worker: for each distinct `Edition` (notice, version, kind, commune name) the kit calls
   `prepare(edition)` ONCE and keeps the result (the "draft": e.g. the email built once,
   with placeholders for the personal parts); then for each job `send(job, draft)`, at
   most `concurrency` at once and at most `rate_per_s` per second.
3. `send` returns a short target for DELIVERIES (never an address: e.g. the first 12
   characters of the recipient id), or raises `crieur.channel.errors.Transient` (retried
   with backoff, Retry-After honoured, then a dead letter), `Permanent` or `RecipientGone`
   (no retry: the kit reports `bounced` and calls `on_permanent`), or `Unsubscribed`
   (the recipient left meanwhile: reported `dropped`).
   Any other exception is taken as transient (a bug must not lose a delivery).
   `Deferred` (crieur.channel.errors) puts the job back on the queue after its delay.
4. Reports of jobs not sent (failed, bounced, dropped) name the recipient by
   `report_target(recipient)`: by default the first 12 characters of its id (push: the
   whole FCM topic, which is not personal).
5. Before a job takes a send slot and the pace, the kit asks `hold(job, notice)`: a delay
   in seconds puts it back on the queue for that long without using the sink's rate (SMS:
   quiet hours); None sends it now.

`PortDefaults` gives the optional parts (`hold`, `report_target`, `on_permanent`) their
defaults: a port subclasses it and writes only what it changes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from crieur.channel.errors import Permanent
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Notice

# A recipient id is used in KV keys of the sent records: keep it to these characters
# (a keyed hash in hex or base64url, a topic name...). The kit refuses any other id.
RECIPIENT_ID = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")


@dataclass(frozen=True)
class Edition:
    """One notice event as every recipient of one channel gets it: built once, sent many times."""

    kind: EventKind
    notice: Notice
    # The commune's name from the `communes` bucket (the email is sent in its name).
    commune_name: str

    @property
    def key(self) -> str:
        return f"{self.notice.id}:{self.notice.version}:{self.kind}"


DraftT = TypeVar("DraftT")


class ChannelPort(Protocol[DraftT]):
    """What one channel (email, push, SMS) gives the kit."""

    # Which channel this is: subjects, durable names and reports use it.
    channel: Channel
    # Sends at once: the sink's pool size (e.g. CRIEUR_SMTP_POOL). At least 1.
    concurrency: int
    # The sink's rate limit in sends per second; None means only `concurrency` limits it.
    rate_per_s: float | None

    def recipients(self, notice: Notice) -> AsyncIterator[str]:
        """Ids (RECIPIENT_ID) of confirmed subscribers who follow the notice's commune and
        category, as an async iterator (never a list of 100,000 in memory), in a stable
        order (sorted): a fan-out planned again then queues the same groups of jobs,
        which JetStream keeps once."""
        ...

    async def prepare(self, edition: Edition) -> DraftT:
        """Build what is the same for every recipient of this edition (once per edition)."""
        ...

    async def send(self, job: Job, draft: DraftT) -> str:
        """Send one job (read the recipient's address now: an unsubscribe wins).

        Returns a short target for DELIVERIES, never an address. Raises Transient,
        Permanent or RecipientGone (crieur.channel.errors). A recipient who is no longer
        subscribed: raise Unsubscribed (reported `dropped`, not retried, no on_permanent).
        """
        ...

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        """The sink refused this recipient for good: the channel acts (mark an address
        bounced, forget an FCM token). `error` may be a RecipientGone."""
        ...

    async def hold(self, job: Job, notice: Notice) -> float | None:
        """Seconds to keep this job back (it comes back on the queue then), or None to send
        it now. Asked before the pace: a held job does not use the sink's rate."""
        ...

    def report_target(self, recipient: str) -> str:
        """How a report names a recipient the sink did not take (never an address)."""
        ...


class PortDefaults:
    """The port's optional parts, as a channel that does not need them has them."""

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        return None

    async def hold(self, job: Job, notice: Notice) -> float | None:
        return None

    def report_target(self, recipient: str) -> str:
        return recipient[:12]


# How a channel service starts the kit (crieur.channel.service runs it for a channel):
#
#     runner = ChannelRunner(port, settings, nc)   # settings: a ChannelSettings subclass
#     await runner.run()                            # fan-out + worker until stop(); SIGTERM drains
