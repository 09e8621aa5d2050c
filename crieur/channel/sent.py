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
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, Header
from nats.js.kv import KeyValue

from crieur.bus import ensure_bucket
from crieur.channel import policy
from crieur.natsx import MULTI_LAST_MAX, bucket_stream, connection, multi_last
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.streams import SENT

log = structlog.get_logger("crieur.channel.sent")

KV_OP = "KV-Operation"

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
            # Not publish_async: nats-py 2.16 never resolves its future when JetStream
            # answers an error (wrong last sequence), it raises in its reply handler
            # (nats-io/nats.py#985; crieur.natsx lists every such workaround).
            await js.publish(subject, payload, timeout=PUBLISH_TIMEOUT_S, headers=dict(headers))
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

    async def sent_among(self, jobs: list[Job]) -> set[str]:
        """The keys of those `jobs` that were sent: one direct get for many keys at once
        (JetStream's multi_last), so checking a batch of 256 costs one round trip."""
        found: set[str] = set()
        for start in range(0, len(jobs), MULTI_LAST_MAX):
            keys = [self.key(job) for job in jobs[start:start + MULTI_LAST_MAX]]
            try:
                found |= await self._multi_last(keys)
            except (TimeoutError, nats.errors.Error) as error:
                log.warning("sent_multi_get_failed", error=repr(error)[:200])
                checks = await asyncio.gather(*(self._exists(key) for key in keys))
                found |= {key for key, sent in zip(keys, checks, strict=True) if sent}
        return found

    async def _multi_last(self, keys: list[str]) -> set[str]:
        msgs = await multi_last(connection(self._js), bucket_stream(self._kv),
                                [self._prefix + key for key in keys])
        return {(msg.headers or {}).get("Nats-Subject", "")[len(self._prefix):]
                for msg in msgs if (msg.headers or {}).get(KV_OP) not in ("DEL", "PURGE")}

    async def _exists(self, key: str) -> bool:
        try:
            await self._kv.get(key, validate_keys=False)
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def was_sent(self, job: Job) -> bool:
        try:
            await self._kv.get(self.key(job), validate_keys=False)
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def record(self, job: Job, target: str, at: datetime) -> bool:
        """Record `job` as sent; False if it already was (a duplicate send happened)."""
        value = json.dumps({"target": target, "at": at.astimezone(UTC).isoformat()})
        try:
            await publish_patiently(self._js, self._prefix + self.key(job), value.encode(),
                                    {Header.EXPECTED_LAST_SUBJECT_SEQUENCE: "0"})
        except nats.js.errors.APIError as error:
            if error.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    async def recipients(self, notice_id: str, kind: EventKind, version: int) -> set[str]:
        """Who got this notice: the audience of a correction or withdrawal (kind, version).

        Read with an ordered consumer of its own rather than nats-py's KV watch: the watch
        says "nothing more" before its first entry when the server has pushed every record
        before answering the consumer-info request the watch makes (nats-io/nats.py#842;
        found by the chaos suite, scenario 7: a withdrawal planned for nobody).
        """
        found: set[str] = set()
        sub = await self._js.subscribe(f"{self._prefix}{self._name}.{notice_id}.>",
                                       stream=bucket_stream(self._kv), ordered_consumer=True,
                                       deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                                       headers_only=True, inactive_threshold=300.0)
        try:
            info = await sub.consumer_info()
            delivered = (info.delivered.consumer_seq or 0) if info.delivered else 0
            # Nothing delivered and nothing to deliver: nobody got it. Otherwise the
            # records come, and the last says none is pending.
            if not info.num_pending and not delivered:
                return found
            while True:
                msg = await sub.next_msg(timeout=30.0)
                if (msg.headers or {}).get(KV_OP) not in ("DEL", "PURGE"):
                    # <name>.<notice_id>.<version>.<kind>.<recipient>
                    parts = msg.subject[len(self._prefix):].split(".", 4)
                    if len(parts) == 5:
                        try:
                            record_kind = EventKind(parts[3])
                            record_version = int(parts[2])
                        except ValueError:
                            record_kind = None
                        if record_kind is not None and policy.got_earlier(
                                record_kind, record_version, kind, version):
                            found.add(parts[4])
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return found
