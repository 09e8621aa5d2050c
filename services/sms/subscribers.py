"""The SMS subscriber registry: NATS KV only (bucket `sms_subscribers`), and a live index.

Key = recipient id (a keyed hash of the E.164 number), so subscribing twice makes one
subscription. The value holds the number (the only place it is kept), whether it is
confirmed, what it follows, a pending confirmation code (hashed), and whether the
provider called the number invalid. STOP or "delete my data" purges the key.

The fan-out lists recipients from an in-memory index (ids by commune and category, no
numbers) that follows the bucket; the number is read again at send time, so a STOP wins
over a job already queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from crieur.bus import ensure_bucket
from schemas.buckets import SMS_MESSAGES, SMS_SUBSCRIBERS
from schemas.commune import Insee
from schemas.notice import Category

log = structlog.get_logger("crieur.sms.subscribers")

SUBSCRIBERS = SMS_SUBSCRIBERS
MESSAGES = SMS_MESSAGES


class Follow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    commune: Insee
    categories: tuple[Category, ...] = Field(min_length=1, max_length=len(Category))


class Purpose(StrEnum):
    SUBSCRIBE = "subscribe"
    DELETE = "delete"


class PendingCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    hash: str
    purpose: Purpose
    follows: tuple[Follow, ...] = ()
    expires_at: datetime
    attempts: int = 0


class Subscriber(BaseModel):
    # Stored state: read tolerantly, so a newer release can add fields.
    model_config = ConfigDict(frozen=True, extra="ignore")

    phone: str
    confirmed: bool = False
    follows: tuple[Follow, ...] = ()
    # The provider said this number cannot get SMS: nothing more is sent to it.
    invalid: bool = False
    code: PendingCode | None = None
    created_at: datetime
    confirmed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.confirmed and not self.invalid


def merge_follows(old: tuple[Follow, ...], new: tuple[Follow, ...]) -> tuple[Follow, ...]:
    """One Follow per commune, categories united, in a stable order."""
    merged: dict[str, set[Category]] = {}
    for follow in (*old, *new):
        merged.setdefault(follow.commune, set()).update(follow.categories)
    return tuple(Follow(commune=c, categories=tuple(sorted(cats)))
                 for c, cats in sorted(merged.items()))


Topic = tuple[str, str]  # (commune, category)
Change = Callable[[Subscriber | None], Subscriber | None]


class SubscriberIndex:
    """Recipient ids by (commune, category), active subscribers only; no numbers."""

    def __init__(self) -> None:
        self._topics: dict[str, frozenset[Topic]] = {}
        self._by_topic: dict[Topic, set[str]] = {}

    def __len__(self) -> int:
        return len(self._topics)

    def put(self, rid: str, subscriber: Subscriber | None) -> None:
        topics: frozenset[Topic] = frozenset()
        if subscriber is not None and subscriber.active:
            topics = frozenset((f.commune, str(c)) for f in subscriber.follows
                               for c in f.categories)
        for topic in self._topics.pop(rid, frozenset()) - topics:
            members = self._by_topic.get(topic)
            if members is not None:
                members.discard(rid)
                if not members:
                    del self._by_topic[topic]
        for topic in topics:
            self._by_topic.setdefault(topic, set()).add(rid)
        if topics:
            self._topics[rid] = topics

    def matching(self, commune: str, category: str) -> list[str]:
        return sorted(self._by_topic.get((commune, category), ()))


class Registry:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.index = SubscriberIndex()
        self.ready = asyncio.Event()

    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        return cls(await ensure_bucket(js, SUBSCRIBERS))

    async def get(self, rid: str) -> tuple[Subscriber, int] | None:
        try:
            entry = await self.kv.get(rid)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return Subscriber.model_validate_json(entry.value), entry.revision or 0

    async def forget(self, rid: str) -> None:
        """Every trace goes (purge, not a delete marker over the data)."""
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
            data = new.model_dump_json().encode()
            try:
                if revision == 0:
                    await self.kv.create(rid, data)
                else:
                    await self.kv.update(rid, data, last=revision)
            except KeyWrongLastSequenceError:
                continue
            return new
        raise RuntimeError("subscriber changed concurrently too often")

    async def put(self, rid: str, subscriber: Subscriber) -> None:
        await self.kv.put(rid, subscriber.model_dump_json().encode())

    def matching(self, commune: str, category: str) -> list[str]:
        return self.index.matching(commune, category)

    async def watch(self) -> None:
        """Follow the bucket forever (every key first, then each change)."""
        while True:
            try:
                watcher = await self.kv.watchall()
                index = SubscriberIndex()
                async for entry in watcher:
                    if entry is None:  # the initial values are all in
                        self.index = index
                        self.ready.set()
                        log.info("sms_subscribers_loaded", active=len(index))
                        continue
                    subscriber = None
                    if entry.operation not in ("DEL", "PURGE") and entry.value:
                        try:
                            subscriber = Subscriber.model_validate_json(entry.value)
                        except ValueError as error:
                            log.error("sms_subscriber_unreadable", recipient=entry.key[:12],
                                      error=str(error)[:200])
                    index.put(entry.key, subscriber)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("sms_subscribers_watch_failed", error=repr(error)[:200])
                await asyncio.sleep(1.0)
