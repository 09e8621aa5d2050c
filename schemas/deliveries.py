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
    PANEL = "panel"


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    DELIVERED = "delivered"
    SHOWN = "shown"
    # Not sent on purpose: the notice was withdrawn, expired or superseded before its turn.
    DROPPED = "dropped"


class DeliveryReport(BaseModel):
    """One thing a channel did with one notice version."""

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


def read_reports(data: bytes | str) -> list[DeliveryReport]:
    """The reports one DELIVERIES message carries: the one place that knows how they are packed.

    Today one report per message; a batch (a JSON list, or {"reports": [...]}) is read too,
    so readers (the front door's reach) need not change if channels batch their reports.
    Raises ValueError (pydantic.ValidationError, NewerSchemaVersion) if it cannot be read.
    """
    parsed = json.loads(data)
    if isinstance(parsed, dict) and isinstance(parsed.get("reports"), list):
        parsed = parsed["reports"]
    if isinstance(parsed, list):
        return [read_message(DeliveryReport, json.dumps(item)) for item in parsed]
    return [read_message(DeliveryReport, data)]
