"""A job on the JOBS work queue: one notice event for one recipient of one channel."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.commune import Insee
from schemas.deliveries import Channel
from schemas.events import EventKind


class Job(BaseModel):
    """What a channel's worker sends; the address is read at send time, never carried here.

    `recipient` is the channel's opaque subscriber id (a keyed hash, a topic...), so an
    unsubscribe wins over a job already queued, and no address sits in a stream.
    """

    # A bus message: read tolerantly (a newer planner may add fields).
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    channel: Channel
    commune: Insee
    notice_id: str
    version: int = Field(ge=1)
    kind: EventKind
    recipient: str = Field(min_length=1, max_length=200)

    @property
    def key(self) -> str:
        """Idempotency key and `Nats-Msg-Id`: a crash while planning never makes two jobs."""
        return f"{self.notice_id}:{self.version}:{self.kind}:{self.channel}:{self.recipient}"
