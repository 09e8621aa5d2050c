"""The notices service's NATS side: the NOTICES stream and the KV buckets it owns.

Writes go to JetStream first; the in-memory `NoticeView` is fed by an ordered consumer, so
any number of front doors agree on what the stream says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crieur.bus import RECONNECT_FOREVER, ensure_all
from schemas import Commune, Notice, NoticeEvent, parse_notice_event, subjects
from schemas.streams import COMMUNES, IDEMPOTENCY, NOTICES_STREAM, SCHEDULE, STAFF
from services.notices.view import NoticeView

log = structlog.get_logger("crieur.notices.store")

M = TypeVar("M", bound=BaseModel)

# JetStream's error code when Nats-Expected-Last-Subject-Sequence does not match.
WRONG_LAST_SEQUENCE = 10071


class ConcurrentChange(Exception):
    """Someone else changed the notice since it was read: reload, then try again."""


class StaffMember(BaseModel):
    """A staff token's record; the token itself is never stored, only its SHA-256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=100)
    communes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None


def token_hash(token: str) -> str:
    # Tokens are 192 random bits, so a fast hash is enough (argon2 is for passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "crieur_" + secrets.token_urlsafe(24)


class BucketMirror(Generic[M]):
    """A KV bucket kept in memory by a watcher: reads cost no NATS call and survive an outage.

    Writes still go to the bucket first; the local copy is updated at once as well, so
    this front door reads its own writes, and others' writes arrive through the watcher.
    """

    def __init__(self, kv: KeyValue, model: type[M]) -> None:
        self.kv = kv
        self.model = model
        self.values: dict[str, M] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watcher = await self.kv.watchall()
        self._task = asyncio.create_task(self._mirror(self._watcher))

    async def _mirror(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the end of the initial values
                continue
            if entry.operation in ("DEL", "PURGE"):
                self.values.pop(entry.key, None)
                continue
            try:
                self.values[entry.key] = self.model.model_validate_json(entry.value or b"")
            except ValidationError as error:
                log.error("bucket_entry_unreadable", model=self.model.__name__, key=entry.key,
                          error=str(error)[:300])

    async def put(self, key: str, value: M) -> None:
        await self.kv.put(key, value.model_dump_json().encode())
        self.values[key] = value

    async def delete(self, key: str) -> None:
        await self.kv.delete(key)
        self.values.pop(key, None)

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()


class NatsStore:
    """Everything the front door keeps, all of it in NATS."""

    def __init__(self, nc: Client, js: JetStreamContext, buckets: dict[str, KeyValue]) -> None:
        self.nc = nc
        self.js = js
        self.communes_kv = buckets[COMMUNES.name]
        self.staff_kv = buckets[STAFF.name]
        self.idempotency_kv = buckets[IDEMPOTENCY.name]
        self.schedule_kv = buckets[SCHEDULE.name]
        self.view = NoticeView()
        self._ready = asyncio.Event()
        self._feed: JetStreamContext.PushSubscription | None = None
        self.schedule_mirror = BucketMirror(self.schedule_kv, Notice)
        self.commune_mirror = BucketMirror(self.communes_kv, Commune)

    @classmethod
    async def connect(
        cls, url: str, name: str = "crieur-notices", options: dict[str, Any] | None = None
    ) -> NatsStore:
        nc = await nats.connect(url, name=name, **(options or RECONNECT_FOREVER))
        js = nc.jetstream()
        return cls(nc, js, await ensure_all(js))

    async def close(self) -> None:
        await self.schedule_mirror.stop()
        await self.commune_mirror.stop()
        if self._feed is not None:
            await self._feed.unsubscribe()
        await self.nc.drain()

    # -- notices -----------------------------------------------------------------------

    async def follow_notices(self, wait_s: float = 30.0) -> None:
        """Feed the view: last event of every notice, then every new one; wait for the replay."""
        info = await self.js.stream_info(NOTICES_STREAM)
        if info.state.messages == 0:
            self._ready.set()
        self._feed = await self.js.subscribe(
            subjects.NOTICES,
            cb=self._on_event,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        )
        await asyncio.wait_for(self._ready.wait(), wait_s)
        log.info("notices_loaded", notices=self.view.count())

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = parse_notice_event(msg.data)
        except ValidationError as error:
            # Only this service writes NOTICES; a bad message is logged, never fatal.
            log.error("notice_event_unreadable", subject=msg.subject, error=str(error)[:300])
        else:
            self.view.apply(msg.metadata.sequence.stream, event)
        if msg.metadata.num_pending == 0:
            self._ready.set()

    async def append(self, event: NoticeEvent, expected_last_seq: int) -> int:
        """Publish an event; refused if the notice changed since `expected_last_seq` was read."""
        notice = event.notice
        if not self.nc.is_connected:
            # Fail at once: waiting for the publish timeout would only make staff wait.
            raise nats.errors.ConnectionReconnectingError
        headers = {
            "Nats-Msg-Id": event.msg_id,
            "Nats-Expected-Last-Subject-Sequence": str(expected_last_seq),
        }
        try:
            ack = await self.js.publish(
                subjects.notice(notice.commune, notice.id),
                event.model_dump_json().encode(),
                headers=headers,
                stream=NOTICES_STREAM,
            )
        except APIError as error:
            if error.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrentChange(notice.id) from error
            raise
        if not ack.duplicate:
            self.view.apply(ack.seq, event)
        structlog.get_logger().info(
            "notice_event_stored", notice_id=notice.id, commune=notice.commune,
            kind=event.kind, version=notice.version, seq=ack.seq, duplicate=ack.duplicate,
        )
        return ack.seq

    def get(self, commune: str, notice_id: str) -> tuple[int, Notice] | None:
        return self.view.get(commune, notice_id)

    # -- scheduled notices ---------------------------------------------------------------

    async def follow_buckets(self) -> None:
        """Mirror the schedule and the commune registry (the scheduler and every read use them)."""
        await self.schedule_mirror.start()
        await self.commune_mirror.start()

    async def schedule(self, notice: Notice) -> None:
        await self.schedule_mirror.put(notice.id, notice)

    async def unschedule(self, notice_id: str) -> None:
        await self.schedule_mirror.delete(notice_id)

    async def scheduled(self, notice_id: str) -> Notice | None:
        try:
            entry = await self.schedule_kv.get(notice_id)
        except KeyNotFoundError:
            return None
        return Notice.model_validate_json(entry.value or b"")

    def all_scheduled(self) -> list[Notice]:
        return list(self.schedule_mirror.values.values())

    # -- communes ------------------------------------------------------------------------

    async def add_commune(self, insee: str, name: str) -> Commune:
        commune = Commune(insee=insee, name=name, created_at=datetime.now(UTC))
        await self.commune_mirror.put(insee, commune)
        return commune

    async def commune(self, insee: str) -> Commune | None:
        known = self.commune_mirror.values.get(insee)
        if known is not None:
            return known
        # Not mirrored (the CLI does not follow the buckets) or just added elsewhere.
        try:
            entry = await self.communes_kv.get(insee)
        except KeyNotFoundError:
            return None
        return Commune.model_validate_json(entry.value or b"")

    async def communes(self) -> list[Commune]:
        try:
            keys = await self.communes_kv.keys()
        except NoKeysError:
            return []
        found = [await self.commune(k) for k in sorted(keys)]
        return [c for c in found if c is not None]

    # -- staff ---------------------------------------------------------------------------

    async def add_staff(self, name: str, communes: tuple[str, ...]) -> tuple[StaffMember, str]:
        """A new staff member; returns the token, which is shown once and never stored."""
        token = new_token()
        member = StaffMember(
            id=secrets.token_hex(4), name=name, communes=communes, created_at=datetime.now(UTC)
        )
        await self.staff_kv.put(token_hash(token), member.model_dump_json().encode())
        return member, token

    async def staff_for_token(self, token: str) -> StaffMember | None:
        try:
            entry = await self.staff_kv.get(token_hash(token))
        except KeyNotFoundError:
            return None
        member = StaffMember.model_validate_json(entry.value or b"")
        return None if member.revoked_at else member

    async def staff(self) -> list[tuple[str, StaffMember]]:
        try:
            keys = await self.staff_kv.keys()
        except NoKeysError:
            return []
        members = []
        for key in keys:
            entry = await self.staff_kv.get(key)
            members.append((key, StaffMember.model_validate_json(entry.value or b"")))
        return sorted(members, key=lambda km: km[1].created_at)

    async def revoke_staff(self, id_or_name: str) -> list[StaffMember]:
        """Revoke every live token whose id or name matches; returns what was revoked."""
        revoked = []
        for key, member in await self.staff():
            if member.revoked_at is None and id_or_name in (member.id, member.name):
                done = member.model_copy(update={"revoked_at": datetime.now(UTC)})
                await self.staff_kv.put(key, done.model_dump_json().encode())
                revoked.append(done)
        return revoked

    # -- idempotency keys ----------------------------------------------------------------

    async def claim(self, key: str, value: dict[str, str]) -> dict[str, str] | None:
        """Record `value` under `key` unless the key is taken; returns what holds it if taken.

        Atomic (a KV create), so two requests racing with one key agree on one notice id.
        """
        try:
            await self.idempotency_kv.create(key, json.dumps(value).encode())
        except KeyWrongLastSequenceError:
            entry = await self.idempotency_kv.get(key)
            held: dict[str, str] = json.loads(entry.value or b"{}")
            return held
        return None
