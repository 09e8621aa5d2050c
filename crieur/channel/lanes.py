"""Lanes: a channel's alerts go ahead of everything else it has queued.

Each channel has two lanes, each with its own fan-out and worker durables and its own
window (max_ack_pending), so nothing queued or held in one can block the other:

- normal: `jobs.<channel>.<commune>`, every category but `alerte`;
- alert:  `jobs.<channel>.<commune>.alert`, the `alerte` notices.

Both lanes' workers share the channel's sink: its `concurrency` send slots go through a
`PriorityGate`. A sender keeps its slot from job to job while its batch lasts, but a
normal lane's sender hands it over as soon as an alert's sender waits, and a freed slot
goes to an alert's sender first. The sink's pacing (its rate) is taken inside a slot, so
an alert waits at most for the sends already in flight, whatever the backlog.

Waiting alone is not enough: between two of the alert lane's batches (its fetch, its
records, its acks) no alert sender waits, and a normal sender would slip into every gap
(measured: behind 100,000 information emails, about one in two sends during a 1,000-
recipient alert was the backlog's). So while an alert is being planned or sent, and for
`ALERT_QUIET_S` after, the normal lane takes no slot at all.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from schemas.notice import Category


class Lane(StrEnum):
    NORMAL = "normal"
    ALERT = "alert"


def lane_of(category: Category) -> Lane:
    return Lane.ALERT if category is Category.ALERTE else Lane.NORMAL


# How long the normal lane still stands aside once the alert lane has no batch in hand: more
# than the alert lane's round trip between two batches (a fetch of what its fan-out has
# just planned), little against a backlog's minutes.
ALERT_QUIET_S = 0.3


class PriorityGate:
    """`slots` holders at once; a freed slot goes to the first alert waiter, if any, and
    the normal lane takes none while alert work is under way (`alert_work`)."""

    def __init__(self, slots: int, quiet_s: float = ALERT_QUIET_S) -> None:
        self._free = max(1, slots)
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {
            Lane.ALERT: deque(), Lane.NORMAL: deque()}
        self._quiet_s = quiet_s
        self._alert_work = 0
        self._alerts_quiet = asyncio.Event()
        self._alerts_quiet.set()
        self._quiet_timer: asyncio.TimerHandle | None = None

    @property
    def alerts_waiting(self) -> int:
        return len(self._waiting[Lane.ALERT])

    @contextmanager
    def alert_work(self) -> Iterator[None]:
        """Around an alert's planning or a batch of its jobs: the normal lane stands aside
        until `quiet_s` after the last of them ends."""
        self._alert_work += 1
        self._alerts_quiet.clear()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        try:
            yield
        finally:
            self._alert_work -= 1
            if not self._alert_work:
                self._quiet_timer = asyncio.get_running_loop().call_later(
                    self._quiet_s, self._alerts_quiet.set)

    async def acquire(self, lane: Lane) -> None:
        if lane is Lane.NORMAL:
            await self._alerts_quiet.wait()
        ahead = self._waiting[Lane.ALERT] if lane is Lane.NORMAL else ()
        if self._free and not self._waiting[lane] and not ahead:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[lane].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot while being cancelled: pass it on
            elif future in self._waiting[lane]:
                self._waiting[lane].remove(future)
            raise

    def release(self) -> None:
        for lane in (Lane.ALERT, Lane.NORMAL):
            queue = self._waiting[lane]
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # the slot passes straight to this waiter
                    return
        self._free += 1

    def alerts_first(self, lane: Lane) -> bool:
        """Whether a holder of `lane` should hand its slot over now (alerts are waiting)."""
        return lane is Lane.NORMAL and (bool(self._waiting[Lane.ALERT])
                                        or not self._alerts_quiet.is_set())
