"""What a channel reports on the DELIVERIES stream, so staff can see how far a notice went."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.commune import Insee
from schemas.notice import ParisDatetime
from schemas.versions import BUS_MODEL


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
