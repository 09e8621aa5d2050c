"""A dead letter: a message a service could not handle, kept with the reason, never lost.

A reader that meets a message it cannot read (not JSON, not the schema, a schema_version
it does not know) or a job that failed for good writes one of these on the DEADLETTERS
stream and goes on with the next message. The original bytes are kept exactly, so an
operator can read them and, once the cause is fixed, publish them again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.notice import ParisDatetime


class DeadLetter(BaseModel):
    """One message set aside by one service, with why."""

    # A bus message: read tolerantly, so a newer writer's extra fields do not lose it.
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    service: str = Field(description="The service that gave up, e.g. `panel`, `email`")
    subject: str = Field(description="Where the message was read")
    reason: str = Field(max_length=2000, description="Why, in words an operator understands")
    at: ParisDatetime
    deliveries: int | None = Field(default=None, description="Attempts made before giving up")
    stream_sequence: int | None = Field(default=None, description="Its sequence in its stream")
    headers: dict[str, str] = Field(default_factory=dict)
    payload_b64: str = Field(description="The original message bytes, base64")
