"""Delivery reports on DELIVERIES: every outcome of every job (sent, dropped, failed, bounced).

The worker reports a batch's outcomes together: the jobs of one notice version with the same
outcome and detail make one message (`count`, `targets`), so a batch of 256 sent emails is
one JetStream write, not 256 (schemas.deliveries.DeliveryReport says how to read them).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

import structlog
from nats.js import JetStreamContext
from nats.js.api import Header

from crieur import metrics, trace
from crieur.channel.sent import publish_patiently
from schemas import subjects
from schemas.deliveries import MAX_TARGETS, Channel, DeliveryOutcome, DeliveryReport
from schemas.jobs import Job

# (job, outcome, target, detail): one job's outcome, waiting to be reported.
Outcome = tuple[Job, DeliveryOutcome, str, str]


class Reports:
    def __init__(self, js: JetStreamContext, channel: Channel) -> None:
        self._js = js
        self._channel = channel

    async def report(self, job: Job, outcome: DeliveryOutcome, now: datetime,
                     target: str = "", detail: str = "") -> None:
        """Publish one report and wait for JetStream to store it (raises if it did not)."""
        await self.report_many([(job, outcome, target, detail)], now)

    async def report_many(self, outcomes: Iterable[Outcome], now: datetime,
                          traces: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Publish the outcomes of many jobs, grouped; returns once JetStream stored them all.

        `traces` gives each notice id the trace headers its jobs carried (crieur.trace);
        without it the trace bound in the log context is used.
        """
        groups: dict[tuple[str, str, int, DeliveryOutcome, str], list[tuple[Job, str]]] = {}
        for job, outcome, target, detail in outcomes:
            key = (job.commune, job.notice_id, job.version, outcome, detail[:500])
            groups.setdefault(key, []).append((job, target[:200]))
        publishes = []
        for (commune, notice_id, version, outcome, detail), members in groups.items():
            carried = trace_headers(notice_id, (traces or {}).get(notice_id))
            for start in range(0, len(members), MAX_TARGETS):
                chunk = members[start:start + MAX_TARGETS]
                base = DeliveryReport(
                    channel=self._channel, commune=commune, notice_id=notice_id,
                    version=version, outcome=outcome, at=now, detail=detail)
                if len(chunk) == 1:
                    job, target = chunk[0]
                    report = base.model_copy(update={"target": target})
                    # One report per job and outcome, however often the job is redelivered.
                    msg_id = f"{job.key}:{outcome}"
                else:
                    report = base.model_copy(update={
                        "count": len(chunk), "targets": tuple(t for _, t in chunk)})
                    # The same batch reported again (a retried publish) is stored once.
                    digest = hashlib.sha256("\n".join(sorted(j.key for j, _ in chunk)).encode())
                    msg_id = f"batch:{outcome}:{digest.hexdigest()[:40]}"
                publishes.append(publish_patiently(
                    self._js, subjects.delivery(self._channel, commune),
                    report.model_dump_json().encode(), {Header.MSG_ID: msg_id, **carried}))
        # Concurrent: the writes leave in one flush, the acks come back together.
        await asyncio.gather(*publishes)
        # Counted here, once stored: the one place every channel's outcome goes through.
        for (_, _, _, outcome, _), members in groups.items():
            metrics.DELIVERIES.labels(str(self._channel), str(outcome)).inc(len(members))


def trace_headers(notice_id: str, carried: Mapping[str, str] | None = None) -> dict[str, str]:
    """The notice's id, and its trace id: from the job's headers, else the log context."""
    headers = {trace.NOTICE_ID: notice_id}
    trace_id = (carried or {}).get(trace.TRACE_ID) or \
        structlog.contextvars.get_contextvars().get("trace_id")
    if trace_id:
        headers[trace.TRACE_ID] = str(trace_id)
    return headers
