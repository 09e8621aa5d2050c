"""Sent records: one KV key per job the sink accepted, so a job is never sent twice.

Key `<name>.<notice_id>.<version>.<kind>.<recipient>` in bucket `sent` (schemas.streams.SENT).
A record is created atomically (expected last subject sequence 0) once the sink took the
message, and read before every send. The same keys tell who got a notice, for
corrections and withdrawals.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.kv import KeyValue

from crieur.bus import ensure_bucket
from crieur.channel import policy
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.streams import SENT

log = structlog.get_logger("crieur.channel.sent")

# JetStream's error codes for "the subject already has a message" (expected sequence 0).
_WRONG_LAST_SEQUENCE = (10071, 10164)
# A publish whose ack never comes (its server died with it) must not hang a worker.
PUBLISH_TIMEOUT_S = 10.0
# How long a record or a report is retried while NATS is away, before the job is left to
# come back after ack_wait (its send is then the one duplicate a long outage may cost).
PUBLISH_PATIENCE_S = 60.0


async def publish_patiently(js: JetStreamContext, subject: str, payload: bytes,
                            headers: dict[str, str]) -> None:
    """Publish and wait for the stream's ack, trying again while NATS is away."""
    deadline = time.monotonic() + PUBLISH_PATIENCE_S
    while True:
        try:
            future = await js.publish_async(subject, payload, headers=dict(headers))
            await asyncio.wait_for(future, PUBLISH_TIMEOUT_S)
            return
        except nats.js.errors.APIError:
            raise
        except (TimeoutError, nats.errors.Error, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


class SentRecords:
    def __init__(self, js: JetStreamContext, kv: KeyValue, name: str) -> None:
        self._js = js
        self._kv = kv
        self._name = name
        self._prefix = f"$KV.{SENT.name}."

    @classmethod
    async def open(cls, js: JetStreamContext, name: str) -> SentRecords:
        return cls(js, await ensure_bucket(js, SENT), name)

    def key(self, job: Job) -> str:
        return f"{self._name}.{job.notice_id}.{job.version}.{job.kind}.{job.recipient}"

    async def was_sent(self, job: Job) -> bool:
        try:
            await self._kv.get(self.key(job), validate_keys=False)
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def record(self, job: Job, target: str, now: Callable[[], datetime]) -> bool:
        """Record `job` as sent; False if it already was (a duplicate send happened)."""
        value = json.dumps({"target": target, "at": now().astimezone(UTC).isoformat()})
        try:
            await publish_patiently(self._js, self._prefix + self.key(job), value.encode(),
                                    {Header.EXPECTED_LAST_SUBJECT_SEQUENCE: "0"})
        except nats.js.errors.APIError as error:
            if error.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    async def recipients(self, notice_id: str, kind: EventKind, version: int) -> set[str]:
        """Who got this notice: the audience of a correction or withdrawal (kind, version)."""
        found: set[str] = set()
        watcher = await self._kv.watch(f"{self._name}.{notice_id}.>", meta_only=True,
                                       ignore_deletes=True)
        try:
            while True:
                entry = await watcher.updates(timeout=30.0)  # type: ignore[no-untyped-call]
                if entry is None:
                    break
                # <name>.<notice_id>.<version>.<kind>.<recipient>
                parts = entry.key.split(".", 4)
                if len(parts) != 5:
                    continue
                try:
                    record_kind = EventKind(parts[3])
                    record_version = int(parts[2])
                except ValueError:
                    continue
                if policy.got_earlier(record_kind, record_version, kind, version):
                    found.add(parts[4])
                if not entry.delta:  # num_pending: nothing more to read
                    break
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return found
