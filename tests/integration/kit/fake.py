"""A fake channel for the kit's tests: a real ChannelPort whose sink is a list (or a file).

The sink can be told to fail: transient for a recipient a number of times (with or without
Retry-After), permanent for a recipient, slow, or paced.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from crieur.channel.errors import Deferred, Permanent, Transient, Unsubscribed
from crieur.channel.port import Edition, PortDefaults
from schemas.deliveries import Channel
from schemas.jobs import Job
from schemas.notice import Category, Notice


@dataclass
class Sent:
    key: str
    recipient: str
    notice_id: str
    version: int
    kind: str
    at: float


@dataclass
class FakeChannel(PortDefaults):
    """Recipients per commune; every send lands in `sent` (and in `out_file` if given)."""

    recipients_by_commune: dict[str, list[str]] = field(default_factory=dict)
    channel: Channel = Channel.SMS
    concurrency: int = 4
    rate_per_s: float | None = None
    send_delay_s: float = 0.0
    out_file: Path | None = None
    # recipient -> how many more times it fails transiently, and the Retry-After to give
    transient: dict[str, int] = field(default_factory=dict)
    retry_after: float | None = None
    permanent: set[str] = field(default_factory=set)
    unsubscribed: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    # Non-alerts held (Deferred) for this long, as SMS in quiet hours; each hold counted.
    hold_s: float | None = None
    held: list[str] = field(default_factory=list)
    # Non-alerts kept back by the port's `hold` hook (before the pace) for this long.
    hook_hold_s: float | None = None
    sent: list[Sent] = field(default_factory=list)
    attempts: dict[str, list[float]] = field(default_factory=dict)
    prepared: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        for recipient in self.recipients_by_commune.get(notice.commune, []):
            yield recipient

    async def hold(self, job: Job, notice: Notice) -> float | None:
        if self.hook_hold_s is None or notice.category is Category.ALERTE:
            return None
        self.held.append(job.recipient)
        return self.hook_hold_s

    async def prepare(self, edition: Edition) -> Edition:
        self.prepared.append(edition.key)
        return edition

    async def send(self, job: Job, draft: Edition) -> str:
        assert draft.notice.id == job.notice_id and draft.kind == job.kind
        if self.hold_s is not None and draft.notice.category is not Category.ALERTE:
            self.held.append(job.recipient)
            raise Deferred("quiet hours", self.hold_s)
        self.attempts.setdefault(job.recipient, []).append(time.monotonic())
        if self.send_delay_s:
            await asyncio.sleep(self.send_delay_s)
        if job.recipient in self.slow:
            await asyncio.sleep(self.slow[job.recipient])
        if self.transient.get(job.recipient, 0) > 0:
            self.transient[job.recipient] -= 1
            raise Transient("451 try later", retry_after=self.retry_after)
        if job.recipient in self.unsubscribed:
            raise Unsubscribed("unsubscribed")
        if job.recipient in self.permanent:
            raise Permanent("550 no such user")
        self.sent.append(Sent(job.key, job.recipient, job.notice_id, job.version, job.kind,
                              time.monotonic()))
        if self.out_file is not None:
            # One write per send, appended: what a crashed process sent stays on disk.
            fd = os.open(self.out_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"{job.key}\n".encode())
            finally:
                os.close(fd)
        return job.recipient[:12]

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        self.gone.append(job.recipient)
