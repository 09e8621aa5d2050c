"""A sink's rate limit for the worker: at most `rate` sends per second, smoothly."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Spaces sends evenly (no bursts the sink would refuse); `rate` None is no limit."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
