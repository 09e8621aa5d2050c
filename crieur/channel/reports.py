"""Delivery reports on DELIVERIES: one per outcome of each job (sent, dropped, failed, bounced)."""

from __future__ import annotations

from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import Header

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
        # One report per job and outcome, however often the job is redelivered.
        await publish_patiently(
            self._js, subjects.delivery(self._channel, job.commune),
            report.model_dump_json().encode(), {Header.MSG_ID: f"{job.key}:{outcome}"})
