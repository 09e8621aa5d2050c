"""The email subscriber registry: NATS KV only, one key per recipient id, and a live index.

Key = recipient id (a keyed hash of the normalised address, `Links.recipient_id`), so a
second subscription of the same address lands on the same key. The value holds the
address (the only place it is kept), whether it is confirmed, what it follows, and its
hard bounces. Unsubscribing or "delete my data" purges the key: the address is gone.

The fan-out asks `matching(commune, category)` for 100,000 subscribers at a time, so an
in-memory index (recipient id -> what it follows, no addresses) follows the bucket with
a KV watch. The address is read again at send time, so an unsubscribe wins over a job
already queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from crieur.bus import ensure_bucket
from schemas.buckets import EMAIL_SUBSCRIBERS
from schemas.commune import Insee
from schemas.notice import Category

log = structlog.get_logger("crieur.email.subscribers")

SUBSCRIBERS = EMAIL_SUBSCRIBERS


class Follow(BaseModel):
    """A commune and the categories of its notices a resident wants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commune: Insee
    categories: tuple[Category, ...] = Field(min_length=1, max_length=len(Category))


class Subscriber(BaseModel):
    # Stored state: read tolerantly, so a newer release can add fields.
    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str
    confirmed: bool = False
    follows: tuple[Follow, ...] = ()
    bounces: int = 0
    suspended: bool = False
    created_at: datetime
    confirmed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.confirmed and not self.suspended

    def follows_notice(self, commune: str, category: str) -> bool:
        return any(f.commune == commune and category in f.categories for f in self.follows)


def merge_follows(old: Iterable[Follow], new: Iterable[Follow]) -> tuple[Follow, ...]:
    """One Follow per commune, categories united, in a stable order."""
    merged: dict[str, set[Category]] = {}
    for follow in (*old, *new):
        merged.setdefault(follow.commune, set()).update(follow.categories)
    return tuple(Follow(commune=c, categories=tuple(sorted(cats)))
                 for c, cats in sorted(merged.items()))


Topic = tuple[str, str]  # (commune, category)
# What a change does to a subscriber (None in: unknown; None out: write nothing).
Change = Callable[[Subscriber | None], Subscriber | None]


class SubscriberIndex:
    """Recipient ids by (commune, category), active subscribers only; no addresses."""

    def __init__(self) -> None:
        self._topics: dict[str, frozenset[Topic]] = {}
        self._by_topic: dict[Topic, set[str]] = {}
        # Most residents follow the same few things: one shared set per distinct choice
        # keeps 100,000 subscribers in tens of MB.
        self._shared: dict[frozenset[Topic], frozenset[Topic]] = {}
        # Addresses never confirmed, and since when: swept once their link has expired.
        self.unconfirmed: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._topics)

    def put(self, rid: str, subscriber: Subscriber | None) -> None:
        if subscriber is not None and not subscriber.confirmed:
            self.unconfirmed[rid] = subscriber.created_at
        else:
            self.unconfirmed.pop(rid, None)
        topics: frozenset[Topic] = frozenset()
        if subscriber is not None and subscriber.active:
            topics = frozenset((f.commune, str(c)) for f in subscriber.follows
                               for c in f.categories)
            topics = self._shared.setdefault(topics, topics)
        old = self._topics.pop(rid, frozenset())
        for topic in old - topics:
            members = self._by_topic.get(topic)
            if members is not None:
                members.discard(rid)
                if not members:
                    del self._by_topic[topic]
        for topic in topics - old:
            self._by_topic.setdefault(topic, set()).add(rid)
        if topics:
            self._topics[rid] = topics

    def matching(self, commune: str, category: str) -> list[str]:
        return sorted(self._by_topic.get((commune, category), ()))


class Registry:
    """Reads and writes subscribers; `watch()` keeps `index` in step with the bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.index = SubscriberIndex()
        self.ready = asyncio.Event()

    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        return cls(await ensure_bucket(js, SUBSCRIBERS))

    async def get(self, rid: str) -> tuple[Subscriber, int] | None:
        """The subscriber and its revision (for `update`), or None."""
        try:
            entry = await self.kv.get(rid)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return Subscriber.model_validate_json(entry.value), entry.revision or 0

    async def put(self, rid: str, subscriber: Subscriber, revision: int | None = None) -> None:
        """Write; with a revision, only if nobody wrote since (KeyWrongLastSequenceError)."""
        data = subscriber.model_dump_json().encode()
        if revision is None:
            await self.kv.put(rid, data)
        elif revision == 0:
            await self.kv.create(rid, data)
        else:
            await self.kv.update(rid, data, last=revision)

    async def forget(self, rid: str) -> None:
        """Every trace of this subscriber goes (purge, not a delete marker over the data)."""
        with contextlib.suppress(KeyNotFoundError):
            await self.kv.purge(rid)

    async def change(self, rid: str, how: Change) -> Subscriber | None:
        """Read-modify-write with optimistic concurrency, retried on a concurrent write."""
        for _ in range(20):
            found = await self.get(rid)
            current, revision = found if found else (None, 0)
            new = how(current)
            if new is None:
                return current
            try:
                await self.put(rid, new, revision)
            except KeyWrongLastSequenceError:
                continue
            return new
        raise RuntimeError("subscriber changed concurrently too often")

    def matching(self, commune: str, category: str) -> list[str]:
        return self.index.matching(commune, category)

    async def sweep_unconfirmed(self, older_than: datetime) -> int:
        """Purge addresses never confirmed since before `older_than` (their link is dead):
        an address someone typed, maybe not its owner, is not kept for nothing."""
        swept = 0
        for rid, since in list(self.index.unconfirmed.items()):
            if since >= older_than:
                continue
            found = await self.get(rid)
            if found is None or found[0].confirmed or found[0].created_at >= older_than:
                continue
            await self.forget(rid)
            swept += 1
        if swept:
            log.info("unconfirmed_swept", count=swept)
        return swept

    async def watch(self) -> None:
        """Follow the bucket forever (start with every key, then each change)."""
        while True:
            try:
                watcher = await self.kv.watchall()
                # A fresh index each time, swapped in once complete: a watch restarted
                # after an outage must not keep someone who left meanwhile.
                index = SubscriberIndex()
                async for entry in watcher:
                    if entry is None:  # the initial values are all in
                        self.index = index
                        self.ready.set()
                        log.info("subscribers_loaded", active=len(index))
                        continue
                    rid = entry.key
                    subscriber = None
                    if entry.operation not in ("DEL", "PURGE") and entry.value:
                        try:
                            subscriber = Subscriber.model_validate_json(entry.value)
                        except ValueError as error:
                            log.error("subscriber_unreadable", rid=rid[:12],
                                      error=str(error)[:200])
                    index.put(rid, subscriber)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("subscribers_watch_failed", error=repr(error)[:200])
                await asyncio.sleep(1.0)


def now() -> datetime:
    return datetime.now(UTC)


async def add_confirmed(registry: Registry, rid: str, address: str,
                        follows: tuple[Follow, ...]) -> None:
    """A confirmed subscriber in one write: for seeding (bench, tests), not for residents."""
    moment = now()
    await registry.put(rid, Subscriber(email=address, confirmed=True, follows=follows,
                                       created_at=moment, confirmed_at=moment))
