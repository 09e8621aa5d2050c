"""Events of a notice's life on the NOTICES stream, like CAP's Alert, Update and Cancel."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from schemas.notice import Notice, ParisDatetime
from schemas.versions import BUS_MODEL, check_version

# The newest version of the notice events this build writes and reads. Bumped only on a
# breaking change (a new field is not one: readers ignore what they do not know); readers
# skip, with a dead letter, the events of a version above theirs.
SCHEMA_VERSION = 1


class EventKind(StrEnum):
    PUBLISHED = "published"
    CORRECTED = "corrected"
    WITHDRAWN = "withdrawn"


class _NoticeEventBase(BaseModel):
    model_config = BUS_MODEL

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
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
    """Parse an event from the bus, ignoring fields this build does not know.

    Raises schemas.versions.NewerSchemaVersion for an event of a newer contract, and
    pydantic.ValidationError for anything that is not an event.
    """
    check_version(data, SCHEMA_VERSION, "notice event")
    return _EVENT_ADAPTER.validate_json(data, extra="ignore")
