"""The notices as they stand now, for the worker's "is this job still worth sending?".

Two sources: a live subscription to NOTICES subjects (a withdrawal is seen the moment it
is published, so no job is sent after it), and a direct read of the last event of the
notice's subject when the cached one is older than `max_age_s` (events missed while
disconnected). Also the communes' names, which channels send in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

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

    def peek(self, notice_id: str) -> Notice | None:
        """The notice as last seen, without asking NATS (checked right before each send)."""
        known = self._notices.get(notice_id)
        return known[0] if known else None

    async def get(self, commune: str, notice_id: str, fresh: bool = False) -> Notice | None:
        """The notice as it stands, read from NOTICES unless seen within `max_age_s`."""
        known = self._notices.get(notice_id)
        if not fresh and known is not None and time.monotonic() - known[1] < self._max_age_s:
            return known[0]
        try:
            raw = await self._js.get_last_msg(NOTICES_STREAM, subjects.notice(commune, notice_id),
                                              direct=True)
        except nats.js.errors.NotFoundError:
            return known[0] if known else None
        try:
            notice = parse_notice_event(raw.data or b"").notice
        except (ValidationError, NewerSchemaVersion):
            log.error("notice_last_event_unreadable", notice_id=notice_id, commune=commune)
            return known[0] if known else None
        self._remember(notice)
        return self.peek(notice_id)

    async def get_many(self, wanted: Iterable[tuple[str, str]], fresh: bool = False,
                       ) -> dict[str, Notice | None]:
        """`get` for many (commune, notice id) at once: those not seen within `max_age_s`
        (all of them if `fresh`) are read in one direct get, not one round trip each (a
        batch of a département-wide alert holds jobs of a dozen notices)."""
        found: dict[str, Notice | None] = {}
        stale: dict[str, str] = {}
        now = time.monotonic()
        for commune, notice_id in wanted:
            known = self._notices.get(notice_id)
            if not fresh and known is not None and now - known[1] < self._max_age_s:
                found[notice_id] = known[0]
            else:
                stale[subjects.notice(commune, notice_id)] = notice_id
        listed = list(stale)
        for start in range(0, len(listed), MULTI_LAST_MAX):
            try:
                msgs = await multi_last(self._nc, NOTICES_STREAM,
                                        listed[start:start + MULTI_LAST_MAX])
            except (TimeoutError, nats.errors.Error) as error:
                # A server without batched direct gets, or a slow answer: one by one.
                log.warning("notices_multi_get_failed", error=repr(error)[:200])
                for subject in listed[start:start + MULTI_LAST_MAX]:
                    notice_id = stale[subject]
                    commune = subject.split(".")[1]
                    found[notice_id] = await self.get(commune, notice_id, fresh=True)
                continue
            for msg in msgs:
                try:
                    self._remember(parse_notice_event(msg.data or b"").notice)
                except (ValidationError, NewerSchemaVersion):
                    log.error("notice_last_event_unreadable",
                              subject=(msg.headers or {}).get("Nats-Subject", ""))
        for notice_id in stale.values():
            found.setdefault(notice_id, self.peek(notice_id))
        return found

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
