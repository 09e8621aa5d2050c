"""Rate limits for a channel's HTTP routes, and the client address they are keyed by.

- `RateLimiter`: a token bucket per key, in memory, per process: a limit for abuse, not an
  accounting. With several processes behind one queue group, the effective limit is at
  most that many times the setting, and a restart forgets it.
- `SharedLimit`: a counter per key and fixed window in a JetStream KV bucket, so every
  process counts together and a restart forgets nothing (what costs money: SMS codes).
- `client_key`: what a client address is limited by. An IPv6 subscriber line gets a /64
  (RFC 6177), so one home or one attacker can change the last 64 bits at will: the /64
  is the client. IPv4 is per address.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """"10.0.0.2, 192.168.1.0/24, fd00::/8" -> networks; ValueError names a bad one."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError as error:
            raise ValueError(f"not an address or a CIDR network: {part!r}") from error
    return tuple(found)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(text: str, networks: Iterable[Network]) -> bool:
    """Whether the address `text` is in one of `networks` (False if it is no address)."""
    address = _address(text)
    return address is not None and any(address in network for network in networks)


def client_key(text: str) -> str:
    """The address a limit counts: IPv4 as is, IPv6 its /64; anything else unchanged."""
    address = _address(text)
    if address is None:
        return text
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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


class LimitUnavailable(Exception):
    """The shared counter could not be read or written (NATS unreachable)."""


@dataclass(frozen=True)
class Refused:
    """A hit over the limit: when the window ends, and whether it is the window's first
    refusal across every process (the one that says so in the log)."""

    retry_after_s: float
    first: bool


class SharedLimit:
    """At most `limit` hits per key in each fixed window of `period_s`, counted in a KV bucket.

    Key `<prefix>.<window number>.<key>`; each hit is a compare-and-set on the key's last
    revision (create for the window's first), retried on a conflict, so processes never
    lose each other's hits. The bucket's TTL (longer than a window) removes old windows.
    The hit that finds the count at the limit writes limit+1: it alone is `first`; later
    refusals write nothing, so a flood costs reads only.
    """

    def __init__(self, kv: KeyValue, prefix: str, limit: int, period_s: float = 3600.0, *,
                 clock: Callable[[], float] = time.time, attempts: int = 20) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("limit must be >= 1 and period_s > 0")
        self.kv, self.prefix, self.limit, self.period_s = kv, prefix, limit, period_s
        self.clock = clock
        self.attempts = attempts

    async def hit(self, key: str) -> Refused | None:
        """Count one hit: None if allowed, else Refused. Raises LimitUnavailable."""
        now = self.clock()
        window = int(now // self.period_s)
        name = f"{self.prefix}.{window}.{key}"
        retry_after = (window + 1) * self.period_s - now
        try:
            for _ in range(self.attempts):
                try:
                    entry = await self.kv.get(name)
                except nats.js.errors.KeyNotFoundError:
                    try:
                        await self.kv.create(name, b"1")
                    except nats.js.errors.KeyWrongLastSequenceError:
                        continue  # another process counted the window's first hit
                    return None
                count = int(entry.value or b"0")
                if count > self.limit:
                    return Refused(retry_after, first=False)
                try:
                    await self.kv.update(name, str(count + 1).encode(), last=entry.revision)
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue
                return None if count < self.limit else Refused(retry_after, first=True)
        except (nats.errors.Error, TimeoutError) as error:
            raise LimitUnavailable(str(error)[:200]) from error
        # So many hits at once on one key that none of ours went through: a flood.
        return Refused(1.0, first=False)
