"""A KV bucket kept in memory: reads cost no NATS call and survive an outage.

The mirror follows the bucket's stream with its own ordered consumer rather than nats-py's
`KeyValue.watch`, for two reasons: a short idle heartbeat, so it resumes within seconds
after nats-server restarts (nats-py's watcher uses 5 s, and so resumes 10 to 20 s
late; crieur.natsx lists this workaround), and entries it cannot read are set aside as
dead letters instead of being lost.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from crieur.bus import IDLE_HEARTBEAT_S
from crieur.deadletter import dead_letter
from crieur.natsx import bucket_context, bucket_name
from schemas.versions import NewerSchemaVersion, read_message

log = structlog.get_logger("crieur.mirror")

M = TypeVar("M", bound=BaseModel)

# The KV-Operation header of a deleted or purged key, and nats-server 2.11's expiry markers.
_GONE_OPERATIONS = {"DEL", "PURGE"}
_GONE_MARKERS = {"MaxAge", "Purge", "Remove"}


class BucketMirror(Generic[M]):
    """Every entry of one bucket, as `model`, in `values`.

    Writes still go to the bucket first; the local copy is updated at once as well, so
    the writer reads its own writes, and others' writes arrive through the consumer.
    `service` names the reader in dead letters (its writer must ensure DEADLETTERS).
    """

    def __init__(self, kv: KeyValue, model: type[M], *, service: str = "crieur") -> None:
        self.kv = kv
        self.model = model
        self.service = service
        self.values: dict[str, M] = {}
        self.skipped = 0
        self._js = bucket_context(kv)
        self._name = bucket_name(kv)
        self._prefix = f"$KV.{self._name}."
        self._sub: JetStreamContext.PushSubscription | None = None
        self._loaded = asyncio.Event()

    async def start(self, wait_s: float = 30.0) -> None:
        """Follow the bucket; returns once its current entries are in `values`."""
        info = await self._js.stream_info(f"KV_{self._name}")
        if info.state.messages == 0:
            self._loaded.set()
        self._sub = await self._js.subscribe(
            self._prefix + ">",
            stream=f"KV_{self._name}",
            cb=self._on_entry,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            idle_heartbeat=IDLE_HEARTBEAT_S,
        )
        try:
            await asyncio.wait_for(self._loaded.wait(), wait_s)
        except TimeoutError:
            # Entries that expired between the count and the replay never come: go on with
            # what came; the consumer keeps following the bucket.
            log.warning("bucket_load_incomplete", bucket=self._name, loaded=len(self.values))

    async def _on_entry(self, msg: Msg) -> None:
        # nats-py runs this callback in its own task: what it raises would only be logged
        # as a NATS error, so every failure is handled here, and the mirror goes on.
        try:
            self._apply(msg)
        except Exception as error:
            await self._set_aside(msg, error)
        if msg.metadata.num_pending == 0:
            self._loaded.set()

    def _apply(self, msg: Msg) -> None:
        key = msg.subject[len(self._prefix):]
        headers = msg.headers or {}
        if (headers.get("KV-Operation") in _GONE_OPERATIONS
                or headers.get("Nats-Marker-Reason") in _GONE_MARKERS):
            self.values.pop(key, None)
            return
        self.values[key] = read_message(self.model, msg.data)

    async def _set_aside(self, msg: Msg, error: Exception) -> None:
        """An entry this build cannot read: keep what it had, log, and record a dead letter."""
        self.skipped += 1
        newer = isinstance(error, NewerSchemaVersion)
        reason = str(error) if newer or isinstance(error, ValidationError) else repr(error)
        log.error("bucket_entry_skipped", bucket=self._name, model=self.model.__name__,
                  subject=msg.subject, newer_version=newer, error=reason[:300])
        try:
            await dead_letter(self._js, service=self.service, subject=msg.subject,
                              data=msg.data, reason=reason,
                              stream_sequence=msg.metadata.sequence.stream)
        except Exception as failed:  # NATS away: the log line above still says it
            log.warning("dead_letter_failed", bucket=self._name, error=repr(failed)[:200])

    async def put(self, key: str, value: M) -> None:
        await self.kv.put(key, value.model_dump_json().encode())
        self.values[key] = value

    async def delete(self, key: str) -> None:
        await self.kv.delete(key)
        self.values.pop(key, None)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
