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
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum

from schemas.notice import Category


class Lane(StrEnum):
    NORMAL = "normal"
    ALERT = "alert"


def lane_of(category: Category) -> Lane:
    return Lane.ALERT if category is Category.ALERTE else Lane.NORMAL


class PriorityGate:
    """`slots` holders at once; a freed slot goes to the first alert waiter, if any."""

    def __init__(self, slots: int) -> None:
        self._free = max(1, slots)
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {
            Lane.ALERT: deque(), Lane.NORMAL: deque()}

    @property
    def alerts_waiting(self) -> int:
        return len(self._waiting[Lane.ALERT])

    async def acquire(self, lane: Lane) -> None:
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
        return lane is Lane.NORMAL and bool(self._waiting[Lane.ALERT])
