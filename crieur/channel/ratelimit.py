"""Rate limits for a channel's HTTP routes: a token bucket per key (client address, email hash).

In memory, per process: a limit for abuse, not an accounting. With several processes
behind one queue group, the effective limit is at most that many times the setting.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """`limit` requests per `period_s` per key, refilled continuously; bounded memory."""

    def __init__(self, limit: int, period_s: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("limit must be >= 1 and period_s > 0")
        self.limit = limit
        self.rate = limit / period_s  # tokens per second
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> tokens, at

    def hit(self, key: str) -> float | None:
        """Take one token: None if allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, at = self._buckets.pop(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        # The least recently seen key goes first: a flood of new keys cannot grow memory.
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate
