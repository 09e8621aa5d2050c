"""What a channel reports on the DELIVERIES stream, so staff can see how far a notice went."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.commune import Insee
from schemas.notice import ParisDatetime
from schemas.versions import BUS_MODEL, read_message


class Channel(StrEnum):
    PUSH = "push"
    EMAIL = "email"
    SMS = "sms"
    WEBPUSH = "webpush"
    PANEL = "panel"


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    DELIVERED = "delivered"
    SHOWN = "shown"
    # Not sent on purpose: the notice was withdrawn, expired or superseded before its turn.
    DROPPED = "dropped"


# The detail of a report made again for a job redelivered after its send was recorded (a
# crash or a lost ack before the ack): the trail stays complete, but it is no second delivery.
ALREADY_SENT = "already sent"

# Targets one batch report names at most (a NATS message stays far below 1 MB).
MAX_TARGETS = 500


class DeliveryReport(BaseModel):
    """What a channel did with one notice version, for one recipient or for `count` of them.

    A channel worker reports a batch of jobs with the same outcome and detail in one message
    (one JetStream write instead of hundreds): then `count` > 1, `targets` names each of
    them and `target` is empty. A reader that counts deliveries adds up `count` and leaves
    out the `repeated` reports (a job sent before a crash is reported again, detail
    `ALREADY_SENT`); `DeliveryReport.each()` gives one report per target.
    """

    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    channel: Channel
    commune: Insee
    notice_id: str
    version: int = Field(ge=1)
    outcome: DeliveryOutcome
    at: ParisDatetime
    # Who or what received it, never in clear: a topic, a hashed recipient, a sign's name.
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="", max_length=500)
    # Time on screen for the sign, in seconds.
    duration_s: float | None = Field(default=None, ge=0)
    # How many deliveries this report stands for; a batch names them in `targets`.
    count: int = Field(default=1, ge=1)
    targets: tuple[str, ...] = Field(default=(), max_length=MAX_TARGETS)

    @property
    def repeated(self) -> bool:
        """Reported again for a job already sent: not a second delivery."""
        return self.detail == ALREADY_SENT

    def each(self) -> list[DeliveryReport]:
        """One report per delivery: a batch report split by target, a single one as it is."""
        if not self.targets:
            return [self]
        return [self.model_copy(update={"target": target, "targets": (), "count": 1})
                for target in self.targets]


def read_reports(data: bytes | str) -> list[DeliveryReport]:
    """One report per delivery from one DELIVERIES message: the one place that knows the packing.

    A channel reports a batch as one message (`count`, `targets`), split here by target; a
    JSON list, or {"reports": [...]}, is read too. Raises ValueError (pydantic's
    ValidationError, NewerSchemaVersion) if it cannot be read.
    """
    parsed = json.loads(data)
    if isinstance(parsed, dict) and isinstance(parsed.get("reports"), list):
        parsed = parsed["reports"]
    if isinstance(parsed, list):
        found = [read_message(DeliveryReport, json.dumps(item)) for item in parsed]
    else:
        found = [read_message(DeliveryReport, data)]
    return [each for report in found for each in report.each()]
