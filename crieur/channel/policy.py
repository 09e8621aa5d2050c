"""Who gets which event, whether a job is still worth sending, and how long to wait: pure.

- published: every recipient the channel lists (confirmed, following commune and category);
- corrected: only those who got an earlier version (from the sent records);
- withdrawn: those who got any version; jobs not yet sent for that notice are dropped.

A job is sent only while its notice is current: not withdrawn, not expired, and the job's
version is still the notice's version. A publication job superseded by a correction
before its turn becomes a publication of the new version (that recipient never saw the
old one, so "correction" would mislead). A recipient sent an old version while a
correction or withdrawal was being planned gets that follow-up too (`follow_up`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Notice, NoticeState


class Audience(StrEnum):
    SUBSCRIBERS = "subscribers"  # ask the channel
    EARLIER_RECIPIENTS = "earlier_recipients"  # ask the sent records


def audience(kind: EventKind) -> Audience:
    if kind is EventKind.PUBLISHED:
        return Audience.SUBSCRIBERS
    return Audience.EARLIER_RECIPIENTS


def got_earlier(record_kind: EventKind, record_version: int,
                event_kind: EventKind, event_version: int) -> bool:
    """Whether a sent record (kind, version) makes its recipient one of an event's audience.

    A withdrawal keeps the notice's last version, so any version counts for it; a
    correction is a new version, so only older ones count.
    """
    if record_kind is EventKind.WITHDRAWN:
        return False
    return event_kind is EventKind.WITHDRAWN or record_version < event_version


class Action(StrEnum):
    SEND = "send"
    DROP = "drop"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    # A job to queue instead (the same recipient, the notice's current version).
    instead: Job | None = None


SEND = Verdict(Action.SEND)


def expired(notice: Notice, now: datetime) -> bool:
    return notice.ends_at is not None and notice.ends_at <= now


def verdict(job: Job, current: Notice | None, now: datetime) -> Verdict:
    """Whether `job` is still worth sending, given the notice as it stands now."""
    if current is None:
        return Verdict(Action.DROP, "notice unknown")
    if job.kind is EventKind.WITHDRAWN:
        # A withdrawal is news even after the end date: the resident was told about it.
        if current.version > job.version:
            return Verdict(Action.DROP, "superseded")
        return SEND
    if current.state is NoticeState.WITHDRAWN:
        return Verdict(Action.DROP, "withdrawn")
    if expired(current, now):
        return Verdict(Action.DROP, "expired")
    if current.version > job.version:
        instead = None
        if job.kind is EventKind.PUBLISHED:
            instead = job.model_copy(update={"version": current.version})
        return Verdict(Action.DROP, f"superseded by version {current.version}", instead)
    return SEND


def follow_up(job: Job, current: Notice | None) -> Job | None:
    """After `job` was sent: the job the recipient now needs if the notice moved meanwhile."""
    if current is None or job.kind is EventKind.WITHDRAWN:
        return None
    if current.state is NoticeState.WITHDRAWN:
        return job.model_copy(update={"version": current.version, "kind": EventKind.WITHDRAWN})
    if current.version > job.version:
        return job.model_copy(update={"version": current.version, "kind": EventKind.CORRECTED})
    return None


def backoff_delay(attempt: int, base_s: float, max_s: float,
                  retry_after: float | None = None, jitter: float = 0.0) -> float:
    """Wait before attempt `attempt + 1`: base * 2**(attempt-1), capped; Retry-After wins
    when longer. `jitter` (0..1) spreads retries of many jobs; 0 gives the exact schedule."""
    delay = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    if jitter:
        delay *= 1 - jitter * random.random()  # spreading retries, not secrecy
    if retry_after is not None:
        # The sink's own word wins, even over the cap: it knows when it will take more.
        delay = max(delay, retry_after)
    return delay
