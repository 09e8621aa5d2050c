"""Notices on the NOTICES stream: appending events, and following them into the read model.

Writes go to JetStream first; the in-memory `NoticeView` is fed by an ordered consumer, so
any number of front doors agree on what the stream says.
"""

from __future__ import annotations

import asyncio

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import APIError
from pydantic import ValidationError

from crieur import metrics, trace
from crieur.bus import IDLE_HEARTBEAT_S
from crieur.deadletter import dead_letter
from schemas import Notice, NoticeEvent, parse_notice_event, subjects
from schemas.streams import NOTICES_STREAM
from schemas.versions import NewerSchemaVersion
from services.notices.view import NoticeView

log = structlog.get_logger("crieur.notices.notices")

# JetStream's error code when Nats-Expected-Last-Subject-Sequence does not match.
WRONG_LAST_SEQUENCE = 10071


class ConcurrentChange(Exception):
    """Someone else changed the notice since it was read: reload, then try again."""


class NoticeLog:
    """The NOTICES stream as the front door uses it, and the view it keeps of it."""

    def __init__(self, nc: Client, js: JetStreamContext, *, service: str = "notices") -> None:
        self.nc = nc
        self.js = js
        self.service = service
        self.view = NoticeView()
        self._ready = asyncio.Event()
        self._feed: JetStreamContext.PushSubscription | None = None

    async def follow(self, wait_s: float = 30.0) -> None:
        """Feed the view: last event of every notice, then every new one; wait for the replay."""
        info = await self.js.stream_info(NOTICES_STREAM)
        if info.state.messages == 0:
            self._ready.set()
        self._feed = await self.js.subscribe(
            subjects.NOTICES,
            cb=self._on_event,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            idle_heartbeat=IDLE_HEARTBEAT_S,
        )
        await asyncio.wait_for(self._ready.wait(), wait_s)
        log.info("notices_loaded", notices=self.view.count())

    async def stop(self) -> None:
        if self._feed is not None:
            await self._feed.unsubscribe()

    async def _on_event(self, msg: Msg) -> None:
        # nats-py runs this callback in its own task: whatever happens is handled here.
        seq = msg.metadata.sequence.stream
        try:
            self.view.apply(seq, parse_notice_event(msg.data))
        except (ValidationError, NewerSchemaVersion) as error:
            # A newer front door's event, or a bad message: set aside, never fatal.
            await self._set_aside(msg, seq, error)
        except Exception as error:
            log.exception("notice_event_failed", subject=msg.subject, seq=seq)
            await self._set_aside(msg, seq, error)
        if msg.metadata.num_pending == 0:
            self._ready.set()

    async def _set_aside(self, msg: Msg, seq: int, error: Exception) -> None:
        newer = isinstance(error, NewerSchemaVersion)
        log.error("notice_event_skipped", subject=msg.subject, seq=seq, newer_version=newer,
                  error=str(error)[:300])
        try:
            await dead_letter(self.js, service=self.service, subject=msg.subject,
                              data=msg.data, reason=str(error), stream_sequence=seq)
        except Exception as failed:  # NATS away: the log line above still says it
            log.warning("dead_letter_failed", subject=msg.subject, error=repr(failed)[:200])

    async def append(self, event: NoticeEvent, expected_last_seq: int) -> int:
        """Publish an event; refused if the notice changed since `expected_last_seq` was read."""
        notice = event.notice
        if not self.nc.is_connected:
            # Fail at once: waiting for the publish timeout would only make staff wait.
            raise nats.errors.ConnectionReconnectingError
        headers = {
            "Nats-Msg-Id": event.msg_id,
            "Nats-Expected-Last-Subject-Sequence": str(expected_last_seq),
            # The notice followed across services (crieur.trace): copied onto every job.
            **trace.event_headers(notice.id),
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
            metrics.NOTICE_EVENTS.labels(str(event.kind)).inc()
        structlog.get_logger().info(
            "notice_event_stored", notice_id=notice.id, commune=notice.commune,
            kind=event.kind, version=notice.version, seq=ack.seq, duplicate=ack.duplicate,
        )
        return ack.seq

    def get(self, commune: str, notice_id: str) -> tuple[int, Notice] | None:
        return self.view.get(commune, notice_id)
