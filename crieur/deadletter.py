"""Writing a dead letter: the one way every service sets a message aside (DEADLETTERS)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import structlog
from nats.js import JetStreamContext

from crieur import metrics
from schemas import subjects
from schemas.deadletters import DeadLetter
from schemas.streams import DEADLETTERS_STREAM

log = structlog.get_logger("crieur.deadletter")


async def dead_letter(
    js: JetStreamContext,
    *,
    service: str,
    subject: str,
    data: bytes,
    reason: str,
    headers: dict[str, str] | None = None,
    deliveries: int | None = None,
    stream_sequence: int | None = None,
) -> DeadLetter:
    """Record `data` as a dead letter of `service`; raises if NATS did not store it.

    With a stream sequence the record is idempotent (Nats-Msg-Id), so a redelivered
    poison message is set aside once, however often it is seen.
    """
    letter = DeadLetter(
        service=service, subject=subject, reason=reason[:2000], at=datetime.now(UTC),
        deliveries=deliveries, stream_sequence=stream_sequence,
        headers=dict(headers or {}), payload_b64=base64.b64encode(data).decode("ascii"),
    )
    msg_id = {"Nats-Msg-Id": f"{service}:{subject}:{stream_sequence}"} if stream_sequence else {}
    await js.publish(subjects.dead_letter(service), letter.model_dump_json().encode(),
                     stream=DEADLETTERS_STREAM, headers=msg_id or None)
    metrics.DEAD_LETTERS.labels(service).inc()
    log.error("dead_letter", service=service, subject=subject, reason=reason[:300],
              deliveries=deliveries, stream_sequence=stream_sequence)
    return letter
