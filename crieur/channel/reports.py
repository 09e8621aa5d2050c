"""Delivery reports on DELIVERIES: one per outcome of each job (sent, dropped, failed, bounced)."""

from __future__ import annotations

from datetime import datetime

import structlog
from nats.js import JetStreamContext
from nats.js.api import Header

from crieur import metrics, trace
from crieur.channel.sent import publish_patiently
from schemas import subjects
from schemas.deliveries import Channel, DeliveryOutcome, DeliveryReport
from schemas.jobs import Job


class Reports:
    def __init__(self, js: JetStreamContext, channel: Channel) -> None:
        self._js = js
        self._channel = channel

    async def report(self, job: Job, outcome: DeliveryOutcome, now: datetime,
                     target: str = "", detail: str = "") -> None:
        """Publish one report and wait for JetStream to store it (raises if it did not)."""
        report = DeliveryReport(
            channel=self._channel, commune=job.commune, notice_id=job.notice_id,
            version=job.version, outcome=outcome, at=now, target=target[:200],
            detail=detail[:500])
        # One report per job and outcome, however often the job is redelivered; it carries
        # the notice's trace (crieur.trace) bound by the worker for this job.
        headers = {Header.MSG_ID: f"{job.key}:{outcome}", **trace_headers(job.notice_id)}
        await publish_patiently(
            self._js, subjects.delivery(self._channel, job.commune),
            report.model_dump_json().encode(), headers)
        # Counted here, the one place every channel's outcome goes through.
        metrics.DELIVERIES.labels(str(self._channel), str(outcome)).inc()


def trace_headers(notice_id: str) -> dict[str, str]:
    """The notice's id, and the trace id the worker bound for the job (crieur.trace)."""
    headers = {trace.NOTICE_ID: notice_id}
    trace_id = structlog.contextvars.get_contextvars().get("trace_id")
    if trace_id:
        headers[trace.TRACE_ID] = str(trace_id)
    return headers
