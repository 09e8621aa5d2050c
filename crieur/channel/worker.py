"""The worker: pulls jobs in batches, sends those still worth sending, once, and reports.

For each batch: unreadable jobs become dead letters; the notices are read as they stand
(withdrawn, expired, superseded jobs are dropped and reported); jobs with a sent record
are not sent again; the rest are sent `port.concurrency` at a time, paced to
`port.rate_per_s`, each checked once more against the live notice right before it goes.
One Worker serves both lanes (crieur.channel.lanes), a batch of each at once: the sink's
`concurrency` slots are shared, and an alert job waiting for one gets the next free.
A sent job's record (sent records) is written off the send path, in groups
(crieur.channel.grouped: the first waits up to `channel_record_linger_s` for company).
The batch's outcomes are reported together at its end (one DELIVERIES message per notice
version, outcome and detail), then its jobs are acked together; a crash before that only
brings back jobs whose sent records stop a second send. NATS round trips and socket writes,
not the sends, were most of the worker's CPU per email when it reported and acked each job
alone. A transient failure naks the job with backoff (Retry-After honoured) and pauses the
whole sink for that long; after `channel_max_attempts` it is a dead letter and a `failed`
report. A permanent one is a `bounced` report and `port.on_permanent`. Jobs fetched but not
started when the worker stops are handed back at once (nak), so a graceful stop sends
nothing twice.

A JOBS message may be a group (schemas.jobs.JobGroup): its jobs are handled one by one like
any other, and the message is acked once each of them is settled. Those that must come
back (a retry, a hold, a stop) come back together, the group naked, when none of them got
anywhere; otherwise they are queued again as jobs of their own (their attempts so far in
`ATTEMPTS_HEADER`) before the group is acked. A job of a group that could not be settled
(NATS away) leaves the whole group to come back after ack_wait, unreported: its sent jobs
are skipped then, by their sent records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header
from pydantic import ValidationError

from crieur import metrics, trace
from crieur.channel import policy
from crieur.channel.current import CurrentNotices, Freshness
from crieur.channel.errors import Deferred, Permanent, Transient, Unsubscribed
from crieur.channel.fanout import JobTemplate, keep_in_progress, publish_jobs
from crieur.channel.grouped import GroupWriter
from crieur.channel.lanes import Lane, PriorityGate, lane_of
from crieur.channel.pacing import Pacer
from crieur.channel.port import ChannelPort, Edition
from crieur.channel.reports import Reports
from crieur.channel.sent import SentRecords
from crieur.channel.settings import ChannelSettings
from crieur.deadletter import dead_letter
from crieur.tasks import cancel_and_wait
from schemas import subjects
from schemas.deliveries import ALREADY_SENT, DeliveryOutcome
from schemas.jobs import ATTEMPTS_HEADER, Job, read_jobs
from schemas.notice import Notice
from schemas.versions import NewerSchemaVersion

log = structlog.get_logger("crieur.channel.worker")


class State(Enum):
    """Where a job of a batch stands; `_Item.move` checks each step (_STEPS)."""

    # Being handled (fetched, sending, its sent record being written): kept in progress.
    PENDING = "pending"
    # Done with, `_Item.outcome` to report and its message to ack at the end of the batch.
    OUTCOME = "outcome"
    # To be taken again after `_Item.delay`: a job alone is naked at once; a grouped one
    # comes back with its group at the end of the batch (settlement()).
    BACK = "back"
    # Kept as a dead letter (its `failed` report made): a job alone is acked at once; a
    # grouped one is set aside alone and its group acked with the others.
    DEAD = "dead"
    # Could not be settled (NATS away): comes back after ack_wait, unreported, and so does
    # its whole group; its sent record, if stored, stops a second send.
    LOST = "lost"
    # Reported and acked at the end of the batch.
    SETTLED = "settled"


_STEPS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.OUTCOME, State.BACK, State.DEAD, State.LOST}),
    State.OUTCOME: frozenset({State.SETTLED}),
    State.BACK: frozenset(),
    State.DEAD: frozenset(),
    State.LOST: frozenset(),
    State.SETTLED: frozenset(),
}


@dataclass
class _Item:
    msg: Msg
    job: Job
    attempt: int
    # One of the jobs of a group message: `msg` is shared, acked or naked for all of them.
    grouped: bool = False
    state: State = State.PENDING
    # OUTCOME: what to report, (outcome, target, detail).
    outcome: tuple[DeliveryOutcome, str, str] | None = None
    # BACK: after how long (None: at once).
    delay: float | None = None
    # The sink's pause round when this job's send started (see Worker._retry_later).
    round: int = 0

    def move(self, state: State, outcome: tuple[DeliveryOutcome, str, str] | None = None,
             delay: float | None = None) -> None:
        """The one place a job changes state; a step _STEPS does not list is a bug."""
        assert state in _STEPS[self.state], f"job {self.state.value} -> {state.value}"
        assert (outcome is not None) is (state is State.OUTCOME), "an outcome iff OUTCOME"
        self.state = state
        if outcome is not None:
            self.outcome = outcome
        self.delay = delay

    @property
    def in_progress(self) -> bool:
        """Its message still needs in-progress acks (nothing settled or handed it back)."""
        return self.state in (State.PENDING, State.OUTCOME)


@dataclass
class _Settlement:
    """What the end of a batch does, in this order: queue again alone the grouped jobs
    that must come back (before the acks: a crash in between queues them again,
    deduplicated by their Nats-Msg-Id), report, ack, nak."""

    back: list[_Item] = field(default_factory=list)
    report: list[_Item] = field(default_factory=list)
    acks: list[Msg] = field(default_factory=list)
    naks: list[tuple[Msg, float | None]] = field(default_factory=list)

    def ack(self, items: list[_Item]) -> None:
        """The message of `items` (one job, or all of a group) acked, with what that takes."""
        self.back += [i for i in items if i.state is State.BACK]
        self.report += [i for i in items if i.state is State.OUTCOME]
        self.acks.append(items[0].msg)


def settlement(items: list[_Item]) -> _Settlement:
    """The end of a batch as a function of its jobs' states.

    A job alone: OUTCOME is reported and acked; BACK (naked), DEAD (acked) and LOST (left
    to come back) were settled as they got there. A group message: left to come back
    after ack_wait if any job of it is PENDING or LOST; naked as it is (the shortest
    delay, none if any has none) if all are BACK; else acked, its OUTCOME jobs reported
    and its BACK ones queued again alone.
    """
    plan = _Settlement()
    groups: dict[int, list[_Item]] = {}
    for item in items:
        if item.grouped:
            groups.setdefault(id(item.msg), []).append(item)
        elif item.state is State.OUTCOME:
            plan.ack([item])
    for group in groups.values():
        states = {i.state for i in group}
        if states & {State.PENDING, State.LOST}:
            continue
        if states == {State.BACK}:
            plan.naks.append((group[0].msg, _shortest([i.delay for i in group])))
        else:
            plan.ack(group)
    return plan


def _shortest(delays: list[float | None]) -> float | None:
    """The delay a group comes back after: none if one of its jobs has none."""
    return None if None in delays else min(d for d in delays if d is not None)


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)
    # Jobs to queue because the notice moved on (publication of a new version, follow-ups).
    more: list[Job] = field(default_factory=list)
    sent: list[Job] = field(default_factory=list)
    # Sent jobs (and what took them) whose records are to be written, in groups.
    records: GroupWriter[tuple[_Item, str]] | None = None
    lane: Lane = Lane.NORMAL


class Drafts:
    """`port.prepare` once per edition; the last few editions are kept."""

    def __init__(self, port: ChannelPort[Any], keep: int = 32) -> None:
        self._port = port
        self._keep = keep
        self._drafts: dict[str, asyncio.Future[Any]] = {}

    async def get(self, edition: Edition) -> Any:
        future = self._drafts.get(edition.key)
        if future is not None and future.done() and future.exception() is None:
            return future.result()  # the usual case: no shield (a future per send)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.ensure_future(self._port.prepare(edition))
            self._drafts[edition.key] = future
            while len(self._drafts) > self._keep:
                del self._drafts[next(iter(self._drafts))]
        return await asyncio.shield(future)


class Worker:
    def __init__(self, port: ChannelPort[Any], settings: ChannelSettings, js: JetStreamContext,
                 name: str, sent: SentRecords, reports: Reports, notices: CurrentNotices,
                 now: Callable[[], datetime], stopping: asyncio.Event,
                 pacer: Pacer | None = None) -> None:
        self.port = port
        self.settings = settings
        self.js = js
        self.name = name
        self.sent = sent
        self.reports = reports
        self.notices = notices
        self.now = now
        self.stopping = stopping
        self.drafts = Drafts(port)
        # One pace per sink: a channel that also sends outside the kit (SMS codes) shares it.
        self.pacer = pacer or Pacer(port.rate_per_s)
        # Both lanes' batches share the sink's slots; an alert job takes the next one free.
        self.gate = PriorityGate(port.concurrency)
        # The sink is failing: no send before this (monotonic) time.
        self._paused_until = 0.0
        self._failures_in_a_row = 0
        # Bumped each time the sink is paused: sends started before a pause that fail
        # with it are the same round of failures, not new ones.
        self._round = 0
        self.counts: dict[str, int] = {}
        # How reports name a recipient the sink did not take (never an address).
        self.target_of: Callable[[str], str] = port.report_target

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        metrics.MESSAGES.labels(self.name, "job", what).inc()

    async def handle_alerts(self, msgs: list[Msg]) -> None:
        """A batch of the alert lane (crieur.channel.lanes)."""
        with self.gate.alert_work():
            await self.handle(msgs, Lane.ALERT)

    async def handle(self, msgs: list[Msg], lane: Lane = Lane.NORMAL) -> None:
        batch = _Batch(lane=lane)
        batch.records = GroupWriter(lambda group: self._record_group(group, batch),
                                    self.settings.channel_record_linger_s,
                                    name="sent_records")
        for msg in msgs:
            attempt = (msg.metadata.num_delivered or 1) + _attempts_before(msg)
            try:
                jobs, grouped = read_jobs(msg.data)
            except (ValidationError, NewerSchemaVersion) as error:
                await self._dead_letter(msg, attempt, f"not a job: {error}")
                continue
            batch.items.extend(_Item(msg, job, attempt, grouped=grouped) for job in jobs)
        batch.items = _one_copy_each(batch.items)
        if not batch.items:
            return
        keepalive = asyncio.create_task(keep_in_progress(
            lambda: list({id(i.msg): i.msg for i in batch.items if i.in_progress}.values()),
            self.settings.channel_ack_wait_s))
        try:
            await self._handle_batch(batch)
            # Follow-ups are queued before the acks: a crash in between queues them again
            # (deduplicated by their Nats-Msg-Id); after, it would lose them.
            if batch.more:
                await self._queue(batch.more, self._traces(batch))
            await self._report_and_ack(batch)
        finally:
            await cancel_and_wait(keepalive)

    async def _report_and_ack(self, batch: _Batch) -> None:
        """The batch's settlement(): outcomes on DELIVERIES, then the acks and naks (each
        in few network writes)."""
        plan = settlement(batch.items)
        if plan.back:
            await self._queue_back(plan.back, batch)
        if plan.report:
            await self.reports.report_many(
                ((i.job, *i.outcome) for i in plan.report if i.outcome is not None),
                self.now(), traces=self._traces(batch))
        # Not awaited one by one on the wire: nats-py queues them for one flush.
        for msg in plan.acks:
            await msg.ack()
        for msg, delay in plan.naks:
            await msg.nak(delay=delay)
        for item in plan.report:
            item.move(State.SETTLED)

    async def _queue_back(self, items: list[_Item], batch: _Batch) -> None:
        """Jobs of a group that must come back, queued alone with their attempts so far."""
        by_attempt: dict[int, list[Job]] = {}
        for item in items:
            by_attempt.setdefault(item.attempt, []).append(item.job)
            self._count("requeued")
        for attempt, jobs in by_attempt.items():
            await self._queue(jobs, self._traces(batch), {ATTEMPTS_HEADER: str(attempt)})

    @staticmethod
    def _traces(batch: _Batch) -> dict[str, dict[str, str]]:
        """Each notice's trace headers, as its jobs carried them, for what they lead to."""
        return {i.job.notice_id: trace.carried(i.msg.headers) for i in batch.items}

    async def _handle_batch(self, batch: _Batch) -> None:
        now = self.now()
        # A batch may hold jobs of many notices (a département-wide alert: a dozen): they
        # are read together, in one round trip, not one each.
        current = await self.notices.get_many({(i.job.commune, i.job.notice_id)
                                               for i in batch.items}, Freshness.RECENT)
        # The communes' names the sends will need, asked together now rather than one
        # round trip at a time in the senders' path (cached a minute).
        await asyncio.gather(*(self.notices.commune_name(commune)
                               for commune in {i.job.commune for i in batch.items}))
        already = await self.sent.sent_among([i.job for i in batch.items])
        todo: asyncio.Queue[_Item] = asyncio.Queue()
        for item in batch.items:
            if self.sent.key(item.job) in already:
                # Sent before a crash or a lost ack: say so again and ack.
                self._count("duplicate")
                item.move(State.OUTCOME, (DeliveryOutcome.SENT,
                                          self.target_of(item.job.recipient), ALREADY_SENT))
                continue
            verdict = policy.verdict(item.job, current.get(item.job.notice_id), now)
            if verdict.action is policy.Action.DROP:
                await self._drop(item, verdict, batch)
                continue
            todo.put_nowait(item)
        senders = [asyncio.create_task(self._sender(todo, batch))
                   for _ in range(max(1, min(self.port.concurrency, todo.qsize())))]
        if senders:
            await asyncio.gather(*senders)
        if batch.records is not None:
            await batch.records.flush()
        # The notice moved on while these were going out: those recipients need the
        # correction or withdrawal too, which a fan-out reading the sent records a moment
        # earlier could not know.
        fresh = await self.notices.get_many({(j.commune, j.notice_id) for j in batch.sent},
                                            Freshness.FRESH)
        for job in batch.sent:
            extra = policy.follow_up(job, fresh[job.notice_id])
            if extra is not None:
                batch.more.append(extra)

    async def _sender(self, todo: asyncio.Queue[_Item], batch: _Batch) -> None:
        """One of the sink's `concurrency` slots (shared by both lanes), job after job."""
        await self.gate.acquire(batch.lane)
        held = True
        try:
            while not todo.empty():
                if self.gate.alerts_first(batch.lane):
                    # An alert's sender waits: it takes this slot, this one queues again.
                    held = False
                    self.gate.release()
                    await self.gate.acquire(batch.lane)
                    held = True
                    if todo.empty():
                        break
                await self._send_next(todo.get_nowait(), batch)
        finally:
            if held:
                self.gate.release()

    async def _send_next(self, item: _Item, batch: _Batch) -> None:
        try:
            # Every line logged about this job, and its report, name the notice.
            with trace.bound(item.msg.headers, item.job.notice_id):
                await self._take(item, batch)
        except Exception as error:
            # NATS away for longer than the publishes wait: the job comes back after
            # ack_wait; its sent record (if stored) stops a second send.
            log.error("job_handling_failed", error=repr(error)[:300],
                      notice_id=item.job.notice_id)
            item.move(State.LOST)

    async def _take(self, item: _Item, batch: _Batch) -> None:
        if not self.stopping.is_set() and await self._held(item):
            return
        # Paced inside the sender's slot: an alert waits for the sends in flight, never
        # behind the pace of a whole backlog.
        if not self.stopping.is_set():
            await self._wait_for_sink()
            await self.pacer.wait()
        if self.stopping.is_set():
            # Graceful stop: not started, so hand it back for another worker now.
            await self._come_back(item, None)
            return
        # The last word (Freshness.SEEN: no round trip between it and the send): a
        # withdrawal seen a moment ago stops this job.
        notice = self.notices.peek(item.job.notice_id)
        verdict = policy.verdict(item.job, notice, self.now())
        if verdict.action is policy.Action.DROP:
            await self._drop(item, verdict, batch)
            return
        assert notice is not None  # verdict() sends only known notices
        await self._send(item, notice, batch)

    async def _held(self, item: _Item) -> bool:
        """The port keeps this job back (SMS quiet hours): queued again after its delay,
        without the pace; a job the policy drops is not held (it is dropped below)."""
        notice = self.notices.peek(item.job.notice_id)
        if notice is None or policy.verdict(item.job, notice, self.now()).action is \
                policy.Action.DROP:
            return False
        delay = await self.port.hold(item.job, notice)
        if delay is None:
            return False
        self._count("deferred")
        await self._come_back(item, delay)
        return True

    async def _wait_for_sink(self) -> None:
        while (wait := self._paused_until - time.monotonic()) > 0 and not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.stopping.wait(), wait)
            except TimeoutError:
                pass

    async def _send(self, item: _Item, notice: Notice, batch: _Batch) -> None:
        job = item.job
        item.round = self._round
        try:
            edition = Edition(kind=job.kind, notice=notice,
                              commune_name=await self.notices.commune_name(job.commune))
            draft = await self.drafts.get(edition)
            started = time.perf_counter()
            target = await self.port.send(job, draft)
            metrics.SEND_SECONDS.labels(str(self.port.channel)).observe(
                time.perf_counter() - started)
        except Deferred as held:
            # Held on purpose (quiet hours): back in the queue after the delay, so it
            # survives a restart; the job is checked again (withdrawn, expired) then.
            self._count("deferred")
            await self._come_back(item, held.delay_s)
            return
        except Unsubscribed as error:
            self._count("dropped")
            item.move(State.OUTCOME, (DeliveryOutcome.DROPPED, self.target_of(job.recipient),
                                      error.reason))
            return
        except Permanent as error:
            self._failures_in_a_row = 0
            self._count("bounced")
            item.move(State.OUTCOME, (DeliveryOutcome.BOUNCED, self.target_of(job.recipient),
                                      error.reason))
            try:
                await self.port.on_permanent(job, error)
            except Exception as hook_error:
                log.error("on_permanent_failed", error=repr(hook_error)[:300],
                          notice_id=job.notice_id)
            return
        except Exception as error:
            await self._retry_later(item, error)
            return
        self._failures_in_a_row = 0
        self._count("sent")
        metrics.observe_publish_to_send(str(self.port.channel),
                                        trace.published_at(item.msg.headers), self.now())
        # Recorded in the background and in groups: the sink's slot takes the next job now
        # (a NATS round trip would otherwise add to every send).
        assert batch.records is not None
        batch.records.add((item, target))

    async def _record_group(self, group: list[tuple[_Item, str]], batch: _Batch) -> None:
        await asyncio.gather(*(self._record(item, target, batch) for item, target in group))

    async def _record(self, item: _Item, target: str, batch: _Batch) -> None:
        job = item.job
        try:
            if not await self.sent.record(job, target, self.now()):
                log.warning("sent_twice", notice_id=job.notice_id, version=job.version,
                            recipient=job.recipient[:12])
        except Exception as error:
            # NATS away for longer than the publishes wait: the job comes back after
            # ack_wait; its sent record (if stored) stops a second send.
            log.error("sent_record_failed", error=repr(error)[:300], notice_id=job.notice_id)
            item.move(State.LOST)
            return
        item.move(State.OUTCOME, (DeliveryOutcome.SENT, target, ""))
        batch.sent.append(job)

    async def _retry_later(self, item: _Item, error: Exception) -> None:
        retry_after = error.retry_after if isinstance(error, Transient) else None
        reason = error.reason if isinstance(error, Transient) else f"unexpected: {error!r}"
        # The whole sink waits, not just this job: N jobs must not hammer a sink that is down.
        # The schedule moves one step per round of sends, not per failed send: the
        # `concurrency` sends in flight when the sink went down fail together, and counting
        # each would pause it for base × 2^(concurrency-1) (4 min for 8 SMS at once) after
        # a blip of seconds (found by the chaos suite, scenario 3).
        if item.round == self._round:
            self._failures_in_a_row += 1
            self._round += 1
        pause = policy.backoff_delay(self._failures_in_a_row, self.settings.channel_backoff_s,
                                     self.settings.channel_backoff_max_s, retry_after)
        self._paused_until = max(self._paused_until, time.monotonic() + pause)
        bound = log.bind(notice_id=item.job.notice_id, commune=item.job.commune,
                         attempt=item.attempt, reason=reason[:300])
        if item.attempt >= self.settings.channel_max_attempts:
            self._count("failed")
            await self.reports.report(item.job, DeliveryOutcome.FAILED, self.now(),
                                      target=self.target_of(item.job.recipient),
                                      detail=f"gave up after {item.attempt} attempts: {reason}")
            await self._dead_letter_job(item, f"gave up after {item.attempt} attempts: {reason}")
            return
        delay = policy.backoff_delay(item.attempt, self.settings.channel_backoff_s,
                                     self.settings.channel_backoff_max_s, retry_after,
                                     jitter=0.2)
        self._count("retried")
        metrics.RETRIES.labels(str(self.port.channel)).inc()
        bound.warning("send_failed_retry", retry_in_s=round(delay, 2))
        await self._come_back(item, delay)

    async def _come_back(self, item: _Item, delay: float | None) -> None:
        """This job is to be taken again (after `delay`): naked if alone; a grouped one is
        settled with its group at the end of the batch (_report_and_ack)."""
        if not item.grouped:
            await item.msg.nak(delay=delay)
        item.move(State.BACK, delay=delay)

    async def _drop(self, item: _Item, verdict: policy.Verdict, batch: _Batch) -> None:
        self._count("dropped")
        if verdict.instead is not None:
            # Queued before the ack: a crash in between queues it again, deduplicated.
            await self._queue([verdict.instead], self._traces(batch))
        item.move(State.OUTCOME, (DeliveryOutcome.DROPPED, self.target_of(item.job.recipient),
                                  verdict.reason))

    async def _queue(self, jobs: list[Job], traces: dict[str, dict[str, str]],
                     headers: dict[str, str] | None = None) -> None:
        """Queue jobs alone, with their notice's trace headers (and `headers`)."""
        by_route: dict[tuple[str, str], list[tuple[bytes, str]]] = {}
        for job in jobs:
            payload, key = JobTemplate(job).render(job.recipient)
            by_route.setdefault((self._subject(job), job.notice_id), []).append((payload, key))
        for (subject, notice_id), items in by_route.items():
            await publish_jobs(self.js, subject, items, self.settings.channel_fanout_window,
                               headers={**traces.get(notice_id, {}), **(headers or {})}
                               or None)

    def _subject(self, job: Job) -> str:
        """Where a job queued again goes: its notice's lane as the notice stands now (a
        correction may have made it an alert, or no longer one)."""
        notice = self.notices.peek(job.notice_id)
        alert = notice is not None and lane_of(notice.category) is Lane.ALERT
        return subjects.jobs(self.name, job.commune, alert=alert)

    async def _dead_letter(self, msg: Msg, attempt: int, reason: str,
                           job: Job | None = None) -> None:
        """`msg` kept as a dead letter and acked; or, given `job` (one of a group), that job
        alone, its own key as Nats-Msg-Id (a replay sends it alone), `msg` not acked."""
        data, headers = msg.data, dict(msg.headers or {})
        if job is not None:
            data, headers[Header.MSG_ID] = JobTemplate(job).render(job.recipient)
        await dead_letter(self.js, service=f"{self.name}-worker", subject=msg.subject,
                          data=data, reason=reason[:2000], headers=headers,
                          deliveries=attempt, stream_sequence=msg.metadata.sequence.stream)
        if job is None:
            await msg.ack()

    async def _dead_letter_job(self, item: _Item, reason: str) -> None:
        """One job kept as a dead letter; a group's other jobs go on, and its message is
        acked with them."""
        await self._dead_letter(item.msg, item.attempt, reason,
                                job=item.job if item.grouped else None)
        item.move(State.DEAD)


def _attempts_before(msg: Msg) -> int:
    """Attempts a job had before it was queued again alone (ATTEMPTS_HEADER), else 0."""
    value = (msg.headers or {}).get(ATTEMPTS_HEADER, "")
    return int(value) if value.isdigit() else 0


def _one_copy_each(items: list[_Item]) -> list[_Item]:
    """One item per job, its latest delivery: a batch may hold a job twice.

    nats-py leaves messages that arrive after a fetch returned in the subscription's queue
    (listed in crieur.natsx), where no in-progress ack reaches them; when a batch outlasts
    ack_wait they are handed out again, and the next fetch returns both copies. Neither
    has a sent record yet, so both would be sent (found by the chaos suite, scenario 4: a
    provider slower than ack_wait). The other copy is left unacked: the kept one's ack
    settles the job.
    """
    kept: dict[str, _Item] = {}
    for item in items:
        key = item.job.key
        if key not in kept or item.attempt > kept[key].attempt:
            kept[key] = item
    return list(kept.values())
