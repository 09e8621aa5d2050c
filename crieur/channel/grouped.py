"""Writes handed over one at a time, written in groups off the caller's path.

A send hands over what it must record (a sent record, an SMS's message id) and its slot
takes the next job at once. The first item handed over waits up to `linger_s` for others
(or until `max_group` are waiting, or `flush()` is called); then one call of `write` takes
the whole group, while what arrives meanwhile waits for the next one. One writer at a time.

Why the linger: each small publish to NATS wakes nats-server, and its reply wakes this
process again. With a sink taking a few hundred messages a second, sends finish a few ms
apart, so without waiting every group held one record. Measured in the bench (10,000
email and SMS at once, 2 cores): waiting 50 ms took nats-server from 0.31-0.35 to
0.11-0.14 ms of CPU per email+SMS pair and the email service from 0.66-0.69 to 0.47-0.54
ms per email (10 ms gives most of it). The price:
a process killed outright may have sent, in its last `linger_s`, a few messages whose
records were not written yet; they are sent again (at most the jobs in flight, as before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("crieur.channel.grouped")

T = TypeVar("T")


class GroupWriter(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[None]], linger_s: float,
                 max_group: int = 256, name: str = "group") -> None:
        self._write = write
        self._linger_s = linger_s
        self._max_group = max_group
        self._name = name
        self._pending: list[T] = []
        self._writer: asyncio.Task[None] | None = None
        # Set to cut the linger short: a full group, or someone waiting in flush().
        self._now = asyncio.Event()
        self._hurry = False

    def add(self, item: T) -> None:
        self._pending.append(item)
        if len(self._pending) >= self._max_group:
            self._now.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run())

    @property
    def waiting(self) -> int:
        """Items handed over and not yet taken by a write."""
        return len(self._pending)

    async def _run(self) -> None:
        try:
            while self._pending:
                if not self._hurry and len(self._pending) < self._max_group:
                    try:
                        await asyncio.wait_for(self._now.wait(), self._linger_s)
                    except TimeoutError:
                        pass
                self._now.clear()
                group, self._pending = self._pending[:self._max_group], \
                    self._pending[self._max_group:]
                try:
                    await self._write(group)
                except Exception as error:
                    # `write` handles its own failures; one that escapes must not strand
                    # the items handed over after it.
                    log.error("group_write_failed", writer=self._name, count=len(group),
                              error=repr(error)[:300])
        finally:
            self._hurry = False

    async def flush(self) -> None:
        """Write what waits without lingering, and return once all handed over is written."""
        while self._writer is not None and not self._writer.done():
            self._hurry = True
            self._now.set()
            await asyncio.shield(self._writer)
