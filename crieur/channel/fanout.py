"""The fan-out: each NOTICES event becomes one job per recipient on `jobs.<name>.<commune>`
(`jobs.<name>.<commune>.alert` for an alert: crieur.channel.lanes).

A channel runs one fan-out per lane, each on its own durable reading every event: each
plans its lane's events and acks the others unread, so an alert is planned while a
100,000-recipient information is still being planned. The alert lane plans one event at a
time, in order. The normal lane plans up to `channel_fanout_concurrency` events at once,
one task per notice, a notice's events one after the other (a correction never before its
publication), and paces each notice's planning by the workers: it adds a window of
`channel_fanout_ahead` jobs only while fewer than that wait in the queue, not yet handed
out. Notices planned together thus take turns in the queue, a window each, and a notice
published while a 100,000-recipient one is planned starts behind a short backlog, not
behind the whole of it (docs/architecture.md, "Lanes: alerts first"). Held jobs (quiet
hours, retries) are handed out, so they do not count: they never stall planning.

The jobs go in groups of `channel_group_size` recipients, one bus message each
(schemas.jobs.JobGroup; a lone recipient is a plain Job). Groups are published
asynchronously in windows (never 100,000 futures at once), each with `Nats-Msg-Id` =
its key, and the event is acked only once every group is stored. The recipients come
sorted, so a planner killed midway plans the same groups again from the start and
JetStream keeps each once. An event that cannot be read is a dead letter, and the next
event goes on.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header
from pydantic import ValidationError

from crieur import metrics, trace
from crieur.channel import policy
from crieur.channel.consumers import durable
from crieur.channel.current import CurrentNotices, Freshness
from crieur.channel.lanes import Lane, lane_of
from crieur.channel.port import RECIPIENT_ID, ChannelPort
from crieur.channel.sent import PUBLISH_TIMEOUT_S, SentRecords
from crieur.channel.settings import ChannelSettings
from crieur.deadletter import dead_letter
from crieur.tasks import cancel_and_wait
from schemas import subjects
from schemas.events import EventKind, NoticeEvent, parse_notice_event
from schemas.jobs import Job, JobGroup, group_key
from schemas.notice import NoticeState
from schemas.streams import JOBS_STREAM
from schemas.versions import NewerSchemaVersion

log = structlog.get_logger("crieur.channel.fanout")


class JobTemplate:
    """Serialises the jobs of one event cheaply: the JSON is the same but for the recipients.

    Recipients are RECIPIENT_ID strings (or a channel's own ids, such as push topics),
    which need no JSON escaping.
    """

    def __init__(self, job: Job) -> None:
        marker = "\x00recipient\x00"
        text = job.model_copy(update={"recipient": marker}).model_dump_json()
        self._before, self._after = text.split(json.dumps(marker), 1)
        self._key = job.key[: -len(job.recipient)]
        group = JobGroup(**job.model_dump(exclude={"schema_version", "recipient"}),
                         recipients=(marker,)).model_dump_json()
        self._group_before, self._group_after = group.split(json.dumps(marker), 1)

    def render(self, recipient: str) -> tuple[bytes, str]:
        return f'{self._before}"{recipient}"{self._after}'.encode(), self._key + recipient

    def render_group(self, recipients: list[str]) -> tuple[bytes, str]:
        """One message for `recipients` (a plain Job for one alone), and its msg id."""
        if len(recipients) == 1:
            return self.render(recipients[0])
        inner = '","'.join(recipients)
        return (f'{self._group_before}"{inner}"{self._group_after}'.encode(),
                group_key(self._key, recipients))


async def publish_jobs(js: JetStreamContext, subject: str,
                       jobs: Iterable[tuple[bytes, str]] | AsyncIterator[tuple[bytes, str]],
                       window: int, on_window: Callable[[], Any] | None = None,
                       headers: dict[str, str] | None = None) -> int:
    """Publish (payload, msg id) pairs in windows; returns how many; raises if one failed.

    `headers` go on every job as well (the notice's trace, crieur.trace). `on_window` is
    awaited after each full window is stored, before the next is published.
    """
    pending: list[asyncio.Future[Any]] = []
    count = 0

    async def settle() -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*pending), PUBLISH_TIMEOUT_S)
        finally:
            for future in pending:
                if not future.done():
                    future.cancel()
            pending.clear()

    async def each() -> AsyncIterator[tuple[bytes, str]]:
        if isinstance(jobs, AsyncIterator):
            async for item in jobs:
                yield item
        else:
            for item in jobs:
                yield item

    room = False
    async for payload, msg_id in each():
        if room and on_window is not None:
            await on_window()
        room = False
        pending.append(await js.publish_async(subject, payload, stream=JOBS_STREAM,
                                              headers={**(headers or {}),
                                                       Header.MSG_ID: msg_id}))
        count += 1
        if len(pending) >= window:
            await settle()
            room = True
    if pending:
        await settle()
    return count


class Fanout:
    def __init__(self, port: ChannelPort[Any], settings: ChannelSettings, js: JetStreamContext,
                 name: str, sent: SentRecords, notices: CurrentNotices,
                 now: Callable[[], datetime], lane: Lane = Lane.NORMAL) -> None:
        self.port = port
        self.lane = lane
        # Dead letters and metrics are the channel's fan-out's, whichever lane.
        self.service = durable(name, "fanout")
        self.settings = settings
        self.js = js
        self.name = name
        self.sent = sent
        self.notices = notices
        self.now = now
        # Normal lane: the events being planned here (by stream sequence), and each
        # notice's last one, which its next event waits for.
        self._planning: dict[int, asyncio.Task[None]] = {}
        self._last_of: dict[str, asyncio.Task[None]] = {}
        # The normal worker's queue depth, read once for every planner waiting on it.
        self._depth: tuple[float, int | None] = (0.0, None)
        self._depth_lock = asyncio.Lock()

    @property
    def _side_by_side(self) -> bool:
        return self.lane is Lane.NORMAL and self.settings.channel_fanout_concurrency > 1

    async def handle(self, msgs: list[Msg]) -> None:
        """Plan `msgs`: the alert lane now, in order; the normal lane in the background, each
        after its notice's previous event (the server bounds how many: max_ack_pending)."""
        for msg in msgs:
            if not self._side_by_side:
                await self.handle_one(msg)
                continue
            sequence = msg.metadata.sequence.stream
            if sequence in self._planning:
                continue  # handed out again while planned here: that planning goes on
            notice_id = _notice_id(msg.data)
            before = self._last_of.get(notice_id) if notice_id else None
            task = asyncio.create_task(self._after(before, msg),
                                       name=f"{self.service}:{sequence}")
            self._planning[sequence] = task
            if notice_id:
                self._last_of[notice_id] = task
            task.add_done_callback(functools.partial(self._forget, sequence=sequence,
                                                     notice_id=notice_id))

    def _forget(self, task: asyncio.Task[None], sequence: int, notice_id: str | None) -> None:
        self._planning.pop(sequence, None)
        if notice_id and self._last_of.get(notice_id) is task:
            del self._last_of[notice_id]

    async def _after(self, before: asyncio.Task[None] | None, msg: Msg) -> None:
        try:
            if before is not None:
                await asyncio.wait({before})  # its outcome is its own (acked, naked, dead)
            await self.handle_one(msg)
        except asyncio.CancelledError:
            # Stopping: not planned to the end, so planned again at once, here or elsewhere
            # (the jobs already queued are kept once, by their Nats-Msg-Id).
            try:
                await msg.nak()
            except Exception as error:  # NATS away: it comes back after ack_wait
                log.debug("fanout_nak_failed", error=repr(error))
            raise
        except Exception as error:
            log.error("fanout_task_failed", error=repr(error)[:300])

    async def close(self) -> None:
        """Stop the plannings under way; their events are handed back (nak)."""
        tasks = list(self._planning.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def handle_one(self, msg: Msg) -> None:
        with trace.bound(msg.headers):
            await self._handle_one(msg)

    async def _handle_one(self, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered or 1
        try:
            event = parse_notice_event(msg.data)
        except (ValidationError, NewerSchemaVersion) as error:
            if self.lane is not Lane.NORMAL:
                await msg.ack()  # the normal lane keeps it as a dead letter, once
                return
            # Not an event, or one of a newer contract (kept, to replay after an upgrade).
            await dead_letter(self.js, service=self.service, subject=msg.subject,
                              data=msg.data, reason=f"not a notice event: {error}"[:2000],
                              headers=dict(msg.headers or {}), deliveries=attempt,
                              stream_sequence=msg.metadata.sequence.stream)
            await msg.ack()
            metrics.MESSAGES.labels(self.service, "notice_event", "dead_letter").inc()
            return
        if lane_of(event.notice.category) is not self.lane:
            await msg.ack()  # the other lane's fan-out plans it
            return
        structlog.contextvars.bind_contextvars(notice_id=event.notice.id)
        bound = log.bind(notice_id=event.notice.id, commune=event.notice.commune,
                         kind=event.kind, version=event.notice.version)
        # Planning 100,000 jobs takes longer than ack_wait: say we are on it meanwhile.
        keepalive = asyncio.create_task(keep_in_progress(lambda: [msg],
                                                         self.settings.channel_ack_wait_s))
        try:
            count = await self.plan(event, trace.carried(msg.headers))
        except Exception as error:
            keepalive.cancel()
            if attempt >= self.settings.channel_max_attempts:
                await dead_letter(self.js, service=self.service, subject=msg.subject,
                                  data=msg.data, reason=f"planning failed: {error!r}"[:2000],
                                  deliveries=attempt,
                                  stream_sequence=msg.metadata.sequence.stream)
                await msg.ack()
                metrics.MESSAGES.labels(self.service, "notice_event",
                                        "dead_letter").inc()
                return
            delay = policy.backoff_delay(attempt, self.settings.channel_backoff_s,
                                         self.settings.channel_backoff_max_s)
            bound.warning("fanout_failed", error=repr(error)[:300], attempt=attempt,
                          retry_in_s=delay)
            await msg.nak(delay=delay)
            metrics.MESSAGES.labels(self.service, "notice_event", "retried").inc()
            return
        finally:
            await cancel_and_wait(keepalive)
        await msg.ack()
        metrics.MESSAGES.labels(self.service, "notice_event", "planned").inc()
        bound.info("fanout_planned", jobs=count, attempt=attempt, lane=self.lane)

    def _withdrawn(self, notice_id: str) -> bool:
        current = self.notices.peek(notice_id)  # Freshness.SEEN: checked every 1000 planned
        return current is not None and current.state is NoticeState.WITHDRAWN

    async def plan(self, event: NoticeEvent, headers: dict[str, str] | None = None) -> int:
        notice = event.notice
        current = await self.notices.get(notice.commune, notice.id, Freshness.RECENT)
        if event.kind is not EventKind.WITHDRAWN and current is not None and (
                current.state is NoticeState.WITHDRAWN or policy.expired(current, self.now())):
            return 0  # nobody needs it any more; the worker would drop every job
        template = JobTemplate(Job(channel=self.port.channel, commune=notice.commune,
                                   notice_id=notice.id, version=notice.version,
                                   kind=event.kind, recipient="x"))
        subject = subjects.jobs(self.name, notice.commune,
                                alert=lane_of(notice.category) is Lane.ALERT)

        async def recipients() -> AsyncIterator[str]:
            if policy.audience(event.kind) is policy.Audience.SUBSCRIBERS:
                planned = 0
                async for recipient in self.port.recipients(notice):
                    if RECIPIENT_ID.match(recipient):
                        yield recipient
                    else:
                        log.error("recipient_id_invalid", channel=self.name, length=len(recipient))
                    planned += 1
                    if planned % 1000 == 0 and self._withdrawn(notice.id):
                        # Withdrawn while we plan: the rest would only be dropped one by one.
                        log.info("fanout_stopped_withdrawn", notice_id=notice.id,
                                 planned=planned)
                        return
            else:
                for recipient in sorted(await self.sent.recipients(notice.id, event.kind,
                                                                   notice.version)):
                    yield recipient

        size = self.settings.channel_group_size
        count = 0

        async def grouped() -> AsyncIterator[tuple[bytes, str]]:
            nonlocal count
            group: list[str] = []
            async for recipient in recipients():
                group.append(recipient)
                if len(group) >= size:
                    count += len(group)
                    yield template.render_group(group)
                    group = []
            if group:
                count += len(group)
                yield template.render_group(group)

        # Windows of messages: a window of groups holds `size` times the jobs.
        window = max(1, self.settings.channel_fanout_window // size)
        paced = self._side_by_side and self.settings.channel_fanout_ahead > 0
        if paced:
            # A window no larger than the backlog kept ahead of the workers.
            window = min(window, max(1, -(-self.settings.channel_fanout_ahead // size)))
        async def room() -> None:
            await self._room(notice.id, window)

        await publish_jobs(self.js, subject, grouped(), window, headers=headers,
                           on_window=room if paced else None)
        return count

    async def _room(self, notice_id: str, window: int) -> None:
        """Until the normal worker's queue holds fewer than `channel_fanout_ahead` jobs not
        yet handed out: every notice being planned waits for this, then adds a window, so
        they take turns. Jobs handed out and held (quiet hours, a retry's delay) are not
        counted; nor is anything when there is no worker durable to read."""
        limit = max(1, -(-self.settings.channel_fanout_ahead // self.settings.channel_group_size))
        while not self._withdrawn(notice_id):
            depth = await self._queue_depth()
            if depth is None:
                return
            if depth < limit:
                # Counted at once: the planners let through on the same reading must not
                # all see the room this window takes (windows go out faster than a poll).
                self._depth = (self._depth[0], depth + window)
                return
            await asyncio.sleep(_DEPTH_POLL_S)

    async def _queue_depth(self) -> int | None:
        """JOBS messages of the normal lane not yet handed out, read at most every
        _DEPTH_POLL_S whatever the number of planners."""
        async with self._depth_lock:
            at, depth = self._depth
            if asyncio.get_running_loop().time() - at < _DEPTH_POLL_S:
                return depth
            try:
                info = await self.js.consumer_info(JOBS_STREAM, durable(self.name, "worker"))
                depth = info.num_pending
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as error:
                # No worker durable yet, or NATS away: plan on; the publishes say if it is.
                log.debug("fanout_depth_unknown", error=repr(error)[:200])
                depth = None
            self._depth = (asyncio.get_running_loop().time(), depth)
            return depth


_DEPTH_POLL_S = 0.05


def _notice_id(data: bytes) -> str | None:
    """The notice an event is about, to keep a notice's events in order; None if unreadable
    (handle_one makes it a dead letter)."""
    try:
        return parse_notice_event(data).notice.id
    except (ValidationError, NewerSchemaVersion, ValueError):
        return None


async def keep_in_progress(msgs: Callable[[], list[Msg]], ack_wait_s: float) -> None:
    """Tell JetStream, every ack_wait/3, that these messages are being worked on."""
    while True:
        await asyncio.sleep(ack_wait_s / 3)
        for msg in msgs():
            try:
                await msg.in_progress()
            except Exception as error:  # an ack already sent, a connection away: keep going
                log.debug("in_progress_failed", error=repr(error))
