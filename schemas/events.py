"""Events of a notice's life on the NOTICES stream, like CAP's Alert, Update and Cancel."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.notice import Notice, ParisDatetime

# Bumped on any change a consumer must know about; consumers refuse versions they do not know.
SCHEMA_VERSION = 1


class EventKind(StrEnum):
    PUBLISHED = "published"
    CORRECTED = "corrected"
    WITHDRAWN = "withdrawn"


class _NoticeEventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    occurred_at: ParisDatetime
    notice: Notice = Field(description="The whole notice after this event")

    @property
    def msg_id(self) -> str:
        """`Nats-Msg-Id`: a retried publish is stored once; a withdrawal is never a duplicate."""
        kind: str = getattr(self, "kind")  # noqa: B009 - set by every subclass
        return f"{self.notice.id}:{self.notice.version}:{kind}"


class NoticePublished(_NoticeEventBase):
    """The notice goes out (CAP msgType Alert)."""

    kind: Literal[EventKind.PUBLISHED] = EventKind.PUBLISHED


class NoticeCorrected(_NoticeEventBase):
    """A new version replaces the previous one everywhere (CAP msgType Update)."""

    kind: Literal[EventKind.CORRECTED] = EventKind.CORRECTED


class NoticeWithdrawn(_NoticeEventBase):
    """The notice is withdrawn: every channel drops it (CAP msgType Cancel)."""

    kind: Literal[EventKind.WITHDRAWN] = EventKind.WITHDRAWN


NoticeEvent = Annotated[
    NoticePublished | NoticeCorrected | NoticeWithdrawn, Field(discriminator="kind")
]
_EVENT_ADAPTER: TypeAdapter[NoticeEvent] = TypeAdapter(NoticeEvent)


def parse_notice_event(data: bytes | str) -> NoticeEvent:
    """Parse an event from the bus; raises pydantic.ValidationError on anything else."""
    return _EVENT_ADAPTER.validate_json(data)


EVENT_TYPES: dict[EventKind, type[_NoticeEventBase]] = {
    EventKind.PUBLISHED: NoticePublished,
    EventKind.CORRECTED: NoticeCorrected,
    EventKind.WITHDRAWN: NoticeWithdrawn,
}
