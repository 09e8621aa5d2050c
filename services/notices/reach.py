"""How far each notice went, from the DELIVERIES stream, counted in memory as reports arrive.

`ReachCounter` follows DELIVERIES from its first message with an ordered consumer and adds
each report to its notice's counters (per channel and outcome; the sign's time on screen;
push per topic), so the staff listing asks `reach_of` for a page of notices at no NATS
cost. Reports are read through `schemas.deliveries.read_reports`, the one place that knows
how a message packs them. A report this build cannot read is set aside as a dead letter.
Counts are of reports: a recipient who got two versions (a correction) counts twice; for
email and SMS, `people` counts each recipient (a keyed hash, the report's target) once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from fastapi import APIRouter, Request
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import BaseModel, ConfigDict, Field

from crieur.bus import IDLE_HEARTBEAT_S
from crieur.deadletter import dead_letter
from schemas import subjects
from schemas.deliveries import Channel, DeliveryOutcome, DeliveryReport, read_reports
from schemas.streams import DELIVERIES_STREAM
from services.notices import errors
from services.notices.api import Ctx, Staff
from services.notices.application import NOTICE_ID_RE, find, staff_commune
from services.notices.errors import ApiError

log = structlog.get_logger("crieur.notices.reach")

SERVICE = "notices"
# The channels whose reports name one person each (push names a topic, the sign itself).
PERSONAL = (Channel.EMAIL, Channel.SMS, Channel.WEBPUSH)


class OutcomeCounts(BaseModel):
    """Reports of one channel for one notice, by outcome (schemas.deliveries.DeliveryOutcome)."""

    model_config = ConfigDict(frozen=True)

    sent: int = 0
    failed: int = 0
    bounced: int = 0
    delivered: int = 0
    dropped: int = 0
    shown: int = 0


class PeopleReach(OutcomeCounts):
    # Recipients sent at least one version, each once (a correction does not add them again).
    people: int = 0


class PushReach(OutcomeCounts):
    # Topic messages FCM accepted, per topic (crieur-<commune>-<category>).
    topics: dict[str, int] = Field(default_factory=dict)


class PanelReach(OutcomeCounts):
    # Time the notice spent on the commune's signs, all versions, in seconds.
    shown_seconds: float = 0.0
    signs: list[str] = Field(default_factory=list)


class NoticeReach(BaseModel):
    """The answer of GET /api/v1/communes/{insee}/notices/{id}/reach."""

    model_config = ConfigDict(frozen=True)

    commune: str
    notice_id: str
    push: PushReach = Field(default_factory=PushReach)
    email: PeopleReach = Field(default_factory=PeopleReach)
    sms: PeopleReach = Field(default_factory=PeopleReach)
    webpush: PeopleReach = Field(default_factory=PeopleReach)
    panel: PanelReach = Field(default_factory=PanelReach)
    # False until DELIVERIES has been read up to where it was when the front door started:
    # the counts may still grow.
    complete: bool = True


@dataclass
class _Tally:
    outcomes: dict[Channel, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    topics: Counter[str] = field(default_factory=Counter)
    shown_seconds: float = 0.0
    signs: set[str] = field(default_factory=set)
    # Email, SMS and Web Push: the recipients (hashed) that were sent a version.
    people: dict[Channel, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, report: DeliveryReport) -> None:
        self.outcomes[report.channel][report.outcome.value] += 1
        if (report.channel in PERSONAL and report.target
                and report.outcome in (DeliveryOutcome.SENT, DeliveryOutcome.DELIVERED)):
            self.people[report.channel].add(report.target)
        if report.channel is Channel.PUSH and report.outcome is DeliveryOutcome.SENT:
            self.topics[report.target] += 1
        if report.channel is Channel.PANEL and report.outcome is DeliveryOutcome.SHOWN:
            self.shown_seconds += report.duration_s or 0.0
            if report.target:
                self.signs.add(report.target)


class ReachCounter:
    """Counters per (commune, notice), kept up to date from DELIVERIES."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._sub: JetStreamContext.PushSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()
        self._stopping = asyncio.Event()
        self.reports = 0
        self.skipped = 0
        self.repeated = 0

    def add(self, report: DeliveryReport) -> None:
        if report.repeated:
            # A job redelivered after its send: counted once, when it went out.
            self.repeated += 1
            return
        key = (report.commune, report.notice_id)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        tally.add(report)
        self.reports += 1

    def reach_of(self, commune: str, notice_id: str) -> NoticeReach:
        """The counters of one notice (zeros if nothing was reported yet)."""
        tally = self._tallies.get((commune, notice_id))
        complete = self.loaded.is_set()
        if tally is None:
            return NoticeReach(commune=commune, notice_id=notice_id, complete=complete)

        def counts(channel: Channel) -> dict[str, int]:
            return dict(tally.outcomes.get(channel, {}))

        return NoticeReach(
            commune=commune, notice_id=notice_id, complete=complete,
            push=PushReach(**counts(Channel.PUSH), topics=dict(tally.topics)),
            email=PeopleReach(**counts(Channel.EMAIL),
                              people=len(tally.people.get(Channel.EMAIL, ()))),
            sms=PeopleReach(**counts(Channel.SMS), people=len(tally.people.get(Channel.SMS, ()))),
            webpush=PeopleReach(**counts(Channel.WEBPUSH),
                                people=len(tally.people.get(Channel.WEBPUSH, ()))),
            panel=PanelReach(**counts(Channel.PANEL),
                             shown_seconds=round(tally.shown_seconds, 3),
                             signs=sorted(tally.signs)),
        )

    def reach_of_many(self, commune: str, notice_ids: Iterable[str]) -> dict[str, NoticeReach]:
        """For a page of the staff listing: one dictionary look-up per notice."""
        return {notice_id: self.reach_of(commune, notice_id) for notice_id in notice_ids}

    # -- following DELIVERIES ----------------------------------------------------------

    async def start(self) -> None:
        """Follow DELIVERIES in the background (it may not exist yet: the channels create it)."""
        self._task = asyncio.create_task(self._follow(), name="reach-follow")

    async def _follow(self) -> None:
        delay = 1.0
        while self._sub is None and not self._stopping.is_set():
            try:
                info = await self.js.stream_info(DELIVERIES_STREAM)
                if info.state.messages == 0:
                    self.loaded.set()
                self._sub = await self.js.subscribe(
                    subjects.DELIVERIES, stream=DELIVERIES_STREAM, cb=self._on_message,
                    ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                    idle_heartbeat=IDLE_HEARTBEAT_S)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # no stream yet, or NATS away: wait for it
                if self._stopping.is_set():
                    # nats-py turns a cancelled request into its own error: stop all the same.
                    return
                log.info("reach_waiting_for_deliveries", error=repr(error)[:200], retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 30.0)
        if self._sub is not None:
            log.info("reach_following_deliveries")

    async def _on_message(self, msg: Msg) -> None:
        # Runs in nats-py's callback task: everything is handled here, the counter goes on.
        try:
            for report in read_reports(msg.data):
                self.add(report)
        except Exception as error:
            await self._set_aside(msg, error)
        if msg.metadata.num_pending == 0 and not self.loaded.is_set():
            self.loaded.set()
            log.info("reach_loaded", reports=self.reports, notices=len(self._tallies))

    async def _set_aside(self, msg: Msg, error: Exception) -> None:
        self.skipped += 1
        log.error("delivery_report_skipped", subject=msg.subject, error=str(error)[:300])
        try:
            await dead_letter(self.js, service=SERVICE, subject=msg.subject, data=msg.data,
                              reason=str(error)[:500],
                              stream_sequence=msg.metadata.sequence.stream)
        except Exception as failed:  # NATS away: the log line above still says it
            log.warning("dead_letter_failed", error=repr(failed)[:200])

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


def reach_counter(request: Request) -> ReachCounter:
    counter: ReachCounter | None = getattr(request.app.state, "reach", None)
    if counter is None:
        raise ApiError(errors.BUS_UNAVAILABLE)
    return counter


router = APIRouter(prefix="/api/v1")


@router.get("/communes/{insee}/notices/{notice_id}/reach", response_model=NoticeReach,
            summary="How far a notice went, per channel, from the delivery reports (staff)")
async def notice_reach(c: Ctx, member: Staff, insee: str, notice_id: str,
                       request: Request) -> NoticeReach:
    await staff_commune(c, insee, member)
    if not NOTICE_ID_RE.match(notice_id):
        raise ApiError(errors.NOTICE_NOT_FOUND)
    await find(c, insee, notice_id)  # 404 for a notice that does not exist
    return reach_counter(request).reach_of(insee, notice_id)
