"""The notices as they stand now, for the worker's "is this job still worth sending?".

Two sources: a live subscription to NOTICES subjects (a withdrawal is seen the moment it
is published, so no job is sent after it), and a direct read of the last event of the
notice's subject when the cached one is older than `max_age_s` (events missed while
disconnected). How old a copy may be is `Freshness`, one rule that every reader names.
Also the communes' names, which channels send in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from enum import Enum

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import ValidationError

from crieur.natsx import MULTI_LAST_MAX, multi_last
from schemas import subjects
from schemas.commune import Commune
from schemas.events import parse_notice_event
from schemas.notice import Notice, NoticeState
from schemas.streams import COMMUNES, NOTICES_STREAM
from schemas.versions import NewerSchemaVersion, read_message

log = structlog.get_logger("crieur.channel.current")


def _newer(candidate: Notice, known: Notice | None) -> bool:
    if known is None:
        return True
    # A withdrawal keeps the version: at equal versions, withdrawn wins.
    rank = (candidate.version, candidate.state is NoticeState.WITHDRAWN)
    return rank >= (known.version, known.state is NoticeState.WITHDRAWN)


class Freshness(Enum):
    """How old a copy of a notice may be for what the reader decides with it."""

    # As last seen (`peek`), no round trip: the live subscription keeps it, and the check
    # right before a send must not wait for NATS (nor add a round trip to every send).
    SEEN = "seen"
    # Read from NOTICES unless seen within `max_age_s`: the start of a batch, a fan-out's
    # plan (a withdrawal missed while disconnected is caught there, a read a batch).
    RECENT = "recent"
    # Always read from NOTICES: right after sends, whose recipients need a correction or
    # withdrawal published meanwhile, whose live event may not have reached us yet.
    FRESH = "fresh"


class CurrentNotices:
    def __init__(self, nc: Client, js: JetStreamContext, max_age_s: float = 2.0) -> None:
        self._nc = nc
        self._js = js
        self._max_age_s = max_age_s
        self._notices: dict[str, tuple[Notice, float]] = {}
        self._communes: dict[str, tuple[str, float]] = {}
        self._sub: Subscription | None = None
        # The communes bucket, looked up once (each lookup is a stream info round trip).
        self._communes_kv: KeyValue | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(subjects.NOTICES, cb=self._on_event)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except nats.errors.Error:
                pass
            self._sub = None

    async def _on_event(self, msg: Msg) -> None:
        try:
            notice = parse_notice_event(msg.data).notice
        except (ValidationError, NewerSchemaVersion):
            return  # the fan-out sets unreadable events aside; here they change nothing
        self._remember(notice)

    def _remember(self, notice: Notice) -> None:
        known = self._notices.get(notice.id)
        if _newer(notice, known[0] if known else None):
            self._notices[notice.id] = (notice, time.monotonic())
        elif known is not None:
            self._notices[notice.id] = (known[0], time.monotonic())
        if len(self._notices) > 10_000:  # a village's worth; forget the oldest
            for key in list(self._notices)[:1000]:
                del self._notices[key]

    def _usable(self, notice_id: str, freshness: Freshness, now: float) -> bool:
        """The one freshness rule: may the copy in memory answer, or must NOTICES?"""
        if freshness is Freshness.SEEN:
            return True
        known = self._notices.get(notice_id)
        return (freshness is Freshness.RECENT and known is not None
                and now - known[1] < self._max_age_s)

    def peek(self, notice_id: str) -> Notice | None:
        """The notice as last seen, without asking NATS (Freshness.SEEN)."""
        known = self._notices.get(notice_id)
        return known[0] if known else None

    async def get(self, commune: str, notice_id: str, freshness: Freshness) -> Notice | None:
        """The notice as it stands, as fresh as `freshness` asks."""
        return (await self.get_many([(commune, notice_id)], freshness))[notice_id]

    async def get_many(self, wanted: Iterable[tuple[str, str]],
                       freshness: Freshness) -> dict[str, Notice | None]:
        """Many (commune, notice id) at once, as fresh as `freshness` asks: those the copy
        in memory cannot answer are read in one direct get, not one round trip each (a
        batch of a département-wide alert holds jobs of a dozen notices)."""
        wanted = list(wanted)
        now = time.monotonic()
        stale = [(commune, notice_id) for commune, notice_id in wanted
                 if not self._usable(notice_id, freshness, now)]
        if len(stale) == 1:
            await self._read_one(*stale[0])  # one notice: a plain direct get
        else:
            for start in range(0, len(stale), MULTI_LAST_MAX):
                await self._read_together(stale[start:start + MULTI_LAST_MAX])
        return {notice_id: self.peek(notice_id) for _, notice_id in wanted}

    async def _read_one(self, commune: str, notice_id: str) -> None:
        """The last event of the notice's subject, remembered (nothing if it has none)."""
        try:
            raw = await self._js.get_last_msg(NOTICES_STREAM, subjects.notice(commune, notice_id),
                                              direct=True)
        except nats.js.errors.NotFoundError:
            return
        self._read_event(raw.data, notice_id=notice_id, commune=commune)

    async def _read_together(self, wanted: list[tuple[str, str]]) -> None:
        """`_read_one` for up to MULTI_LAST_MAX notices, in one batched direct get."""
        try:
            msgs = await multi_last(self._nc, NOTICES_STREAM,
                                    [subjects.notice(*pair) for pair in wanted])
        except (TimeoutError, nats.errors.Error) as error:
            # A server without batched direct gets, or a slow answer: one by one.
            log.warning("notices_multi_get_failed", error=repr(error)[:200])
            for commune, notice_id in wanted:
                await self._read_one(commune, notice_id)
            return
        for msg in msgs:
            self._read_event(msg.data, subject=(msg.headers or {}).get("Nats-Subject", ""))

    def _read_event(self, data: bytes | None, **where: str) -> None:
        try:
            self._remember(parse_notice_event(data or b"").notice)
        except (ValidationError, NewerSchemaVersion):
            log.error("notice_last_event_unreadable", **where)

    async def commune_name(self, insee: str) -> str:
        """The commune's name from the registry, cached a minute; its code if unknown."""
        known = self._communes.get(insee)
        if known is not None and time.monotonic() - known[1] < 60:
            return known[0]
        name = insee
        try:
            if self._communes_kv is None:
                self._communes_kv = await self._js.key_value(COMMUNES.name)
            entry = await self._communes_kv.get(insee)
            name = read_message(Commune, entry.value or b"").name
        except (nats.js.errors.NotFoundError, ValidationError, NewerSchemaVersion):
            log.warning("commune_name_unknown", commune=insee)
        self._communes[insee] = (name, time.monotonic())
        return name
