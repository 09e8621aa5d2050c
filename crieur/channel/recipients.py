"""A channel's subscriber registry: one NATS KV bucket, and a live index kept by a KV watch.

Email and SMS keep their subscribers the same way: key = recipient id (a keyed hash of the
address or number), value = the subscriber (the address or number is only there). The
fan-out asks `matching(commune, category)` for 100,000 subscribers at a time, so an
in-memory index (recipient id -> what it follows) follows the bucket with a KV watch.

Sends need the address and what the subscriber follows now (an unsubscribe wins over a job
already queued). `cached(rid)` answers from the index, without a NATS read per send, but
only while the index is proven current: `keep_current()` reads the bucket's last sequence
every PROBE_EVERY_S, and once the watch has applied that sequence the index holds every
write made before the probe. Older than CURRENT_WITHIN_S, `cached` answers None and the
sender reads the bucket. So an unsubscribe stops queued sends within milliseconds, and at
worst CURRENT_WITHIN_S late. (A read per send was a third of the email service's CPU.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from crieur.natsx import bucket_context, bucket_stream
from schemas.commune import Insee
from schemas.notice import Category

Topic = tuple[str, str]  # (commune, category)

# How current the index must be proven to answer a send, and how often it is probed.
CURRENT_WITHIN_S = 1.0
PROBE_EVERY_S = 0.25


class Follow(BaseModel):
    """A commune and the categories of its notices a resident wants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commune: Insee
    categories: tuple[Category, ...] = Field(min_length=1, max_length=len(Category))


def merge_follows(old: Iterable[Follow], new: Iterable[Follow]) -> tuple[Follow, ...]:
    """One Follow per commune, categories united, in a stable order."""
    merged: dict[str, set[Category]] = {}
    for follow in (*old, *new):
        merged.setdefault(follow.commune, set()).update(follow.categories)
    return tuple(Follow(commune=c, categories=tuple(sorted(cats)))
                 for c, cats in sorted(merged.items()))


def topics_of(follows: Iterable[Follow]) -> frozenset[Topic]:
    return frozenset((f.commune, str(c)) for f in follows for c in f.categories)


class Subscription(Protocol):
    """What the registry needs of a channel's stored subscriber (a frozen pydantic model)."""

    @property
    def confirmed(self) -> bool: ...

    @property
    def active(self) -> bool: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def follows(self) -> tuple[Follow, ...]: ...

    @property
    def contact(self) -> str:
        """The address or number to send to (personal data: never logged)."""
        ...

    def model_dump_json(self) -> str: ...


S = TypeVar("S", bound=Subscription)
# What a change does to a subscriber (None in: unknown; None out: write nothing).
Change = Callable[[S | None], S | None]


class RecipientIndex(Generic[S]):
    """Recipient ids by (commune, category), active subscribers only, and their contact."""

    def __init__(self) -> None:
        self._topics: dict[str, frozenset[Topic]] = {}
        self._by_topic: dict[Topic, set[str]] = {}
        self._contacts: dict[str, str] = {}
        # Most residents follow the same few things: one shared set per distinct choice
        # keeps 100,000 subscribers in tens of MB.
        self._shared: dict[frozenset[Topic], frozenset[Topic]] = {}
        # Never confirmed, and since when: swept once their link or code has expired.
        self.unconfirmed: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._topics)

    def put(self, rid: str, subscriber: S | None) -> None:
        if subscriber is not None and not subscriber.confirmed:
            self.unconfirmed[rid] = subscriber.created_at
        else:
            self.unconfirmed.pop(rid, None)
        topics: frozenset[Topic] = frozenset()
        if subscriber is not None and subscriber.active:
            topics = topics_of(subscriber.follows)
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
            assert subscriber is not None
            self._topics[rid] = topics
            self._contacts[rid] = subscriber.contact
        else:
            self._contacts.pop(rid, None)

    def matching(self, commune: str, category: str) -> list[str]:
        return sorted(self._by_topic.get((commune, category), ()))

    def active(self, rid: str) -> tuple[str, frozenset[Topic]] | None:
        """An active subscriber's contact and what it follows, or None."""
        contact = self._contacts.get(rid)
        return None if contact is None else (contact, self._topics[rid])


class RecipientRegistry(Generic[S]):
    """Reads and writes one channel's subscribers; `watch()` keeps `index` in step."""

    def __init__(self, kv: KeyValue, parse: Callable[[bytes], S], name: str) -> None:
        self.kv = kv
        self._parse = parse
        self._log = structlog.get_logger(f"crieur.{name}.subscribers")
        self._name = name
        self.index: RecipientIndex[S] = RecipientIndex()
        self.ready = asyncio.Event()
        # `cached` may answer while a probe read the bucket's last sequence at time t and
        # the watch has applied it since: then `_current_at` = t.
        self._applied = 0
        self._probe: tuple[float, int] | None = None
        self._current_at = -1e9
        # Set by `close()`: the loops below end even if a cancellation is lost (Python
        # 3.11's asyncio.wait_for, under nats-py's requests, can swallow one).
        self._closed = False

    def close(self) -> None:
        """`watch()` and `keep_current()` end (cancel their tasks too)."""
        self._closed = True
        self._current_at = -1e9

    async def get(self, rid: str) -> tuple[S, int] | None:
        """The subscriber and its revision (for `put`), or None."""
        try:
            entry = await self.kv.get(rid)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return self._parse(entry.value), entry.revision or 0

    async def put(self, rid: str, subscriber: S, revision: int | None = None) -> None:
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

    def unconfirmed_since(self, subscriber: S) -> datetime:
        """Since when this unconfirmed subscriber has been idle (a channel may count a later
        event, such as a code sent since); the index's `unconfirmed` holds `created_at`."""
        return subscriber.created_at

    async def sweep_unconfirmed(self, older_than: datetime) -> int:
        """Purge subscribers never confirmed and idle since before `older_than` (their link
        or code is dead): an address or number someone typed, maybe not its owner's, is not
        kept for nothing. Returns how many went."""
        swept = 0
        for rid, since in list(self.index.unconfirmed.items()):
            if since >= older_than:
                continue
            found = await self.get(rid)
            if (found is None or found[0].confirmed
                    or self.unconfirmed_since(found[0]) >= older_than):
                continue
            await self.forget(rid)
            swept += 1
        if swept:
            self._log.info("unconfirmed_swept", channel=self._name, count=swept)
        return swept

    async def change(self, rid: str, how: Change[S]) -> S | None:
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

    def cached(self, rid: str) -> tuple[str, frozenset[Topic]] | None:
        """For a send: the contact and follows from memory, if the index is proven current
        to within CURRENT_WITHIN_S; None means: read the bucket (`get`)."""
        if time.monotonic() - self._current_at > CURRENT_WITHIN_S:
            return None
        return self.index.active(rid)

    def _loaded(self, index: RecipientIndex[S], last_seen: int) -> None:
        """The initial values are all in `index`: it becomes the one plans and sends read."""
        self.index = index
        self._note(last_seen)
        self.ready.set()
        self._log.info("subscribers_loaded", channel=self._name, active=len(index))

    def _note(self, applied: int | None = None) -> None:
        if applied is not None:
            self._applied = max(self._applied, applied)
        if self._probe is not None and self._applied >= self._probe[1]:
            self._current_at = max(self._current_at, self._probe[0])
            self._probe = None

    async def keep_current(self) -> None:
        """Probe the bucket's last sequence often, so `cached` knows it may answer."""
        while not self._closed:
            try:
                at = time.monotonic()
                info = await bucket_context(self.kv).stream_info(bucket_stream(self.kv))
                if self._probe is None:  # a probe not yet caught up keeps its place
                    self._probe = (at, info.state.last_seq)
                self._note()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS away: sends read the bucket meanwhile
                self._log.debug("subscribers_probe_failed", error=repr(error)[:200])
            await asyncio.sleep(PROBE_EVERY_S)

    async def watch(self) -> None:
        """Follow the bucket until `close()` (every key first, then each change)."""
        while not self._closed:
            try:
                # Until the new watch has caught up, `cached` answers None.
                self._current_at, self._applied, self._probe = -1e9, 0, None
                # nats-py's None ("the initial values are all in") is trusted only for a
                # bucket empty when the watch began: it comes before the first value when
                # the server pushed them all before answering the watch's consumer-info
                # request (nats-io/nats.py#842, listed in crieur.natsx). Otherwise the index
                # is complete with the value after which nothing is pending.
                info = await bucket_context(self.kv).stream_info(bucket_stream(self.kv))
                empty = not info.state.messages
                watcher = await self.kv.watchall()
                # A fresh index each time, swapped in once complete: a watch restarted
                # after an outage must not keep someone who left meanwhile.
                index: RecipientIndex[S] = RecipientIndex()
                last_seen = 0
                loaded = False
                async for entry in watcher:
                    if entry is None:
                        if not loaded and not empty:
                            # Emptied since (its last values expired): nothing will come.
                            info = await bucket_context(self.kv).stream_info(bucket_stream(self.kv))
                            empty = not info.state.messages
                        if empty and not loaded:
                            loaded = True
                            self._loaded(index, last_seen)
                        continue
                    last_seen = max(last_seen, entry.revision or 0)
                    subscriber = None
                    if entry.operation not in ("DEL", "PURGE") and entry.value:
                        try:
                            subscriber = self._parse(entry.value)
                        except ValueError as error:
                            self._log.error("subscriber_unreadable", recipient=entry.key[:12],
                                            error=str(error)[:200])
                    index.put(entry.key, subscriber)
                    if not loaded and not entry.delta:
                        loaded = True
                        self._loaded(index, last_seen)
                    elif index is self.index:
                        self._note(entry.revision)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._log.warning("subscribers_watch_failed", error=repr(error)[:200])
                await asyncio.sleep(1.0)
