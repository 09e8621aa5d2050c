"""A notice: what a mairie publishes once and every channel carries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from schemas.commune import Insee
from schemas.versions import BUS_MODEL

# Every date a resident or a member of staff sees is French local time.
PARIS = ZoneInfo("Europe/Paris")


def _as_paris(value: datetime) -> datetime:
    # A naive time typed by a secretary means local time in the village, not UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=PARIS)
    return value.astimezone(PARIS)


ParisDatetime = Annotated[
    datetime,
    AfterValidator(_as_paris),
    PlainSerializer(lambda v: v.astimezone(PARIS).isoformat(), return_type=str, when_used="json"),
]


class Category(StrEnum):
    """ASCII slugs: used in subjects, topics and URLs; `CATEGORY_LABELS` is for display."""

    INFORMATION = "information"
    EVENEMENT = "evenement"
    TRAVAUX = "travaux"
    ALERTE = "alerte"


CATEGORY_LABELS: dict[Category, str] = {
    Category.INFORMATION: "Information",
    Category.EVENEMENT: "Événement",
    Category.TRAVAUX: "Travaux",
    Category.ALERTE: "Alerte",
}


class NoticeState(StrEnum):
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    CORRECTED = "corrected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


Title = Annotated[
    str,
    BeforeValidator(_strip),
    StringConstraints(min_length=1, max_length=120),
    Field(description="Short title, at most 120 characters", examples=["Route de Gray fermée"]),
]
Body = Annotated[
    str,
    BeforeValidator(_strip),
    StringConstraints(min_length=1, max_length=5000),
    Field(description="Full text, at most 5,000 characters"),
]


class Link(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl
    label: str = Field(default="", max_length=120)


class Attachment(BaseModel):
    """A file that goes with a notice (a PDF decree, a map); stored elsewhere, referenced here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: HttpUrl
    media_type: str = Field(default="application/octet-stream", max_length=100)
    size: int | None = Field(default=None, ge=0)


class _Window(BaseModel):
    """Checks shared by a draft and a stored notice: the window must be a window."""

    @field_validator("ends_at", check_fields=False)
    @classmethod
    def _ends_after_start(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        # A field validator (not a model one) so the error names `ends_at` for the caller.
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return ends_at


class NoticeDraft(_Window):
    """What staff send to publish a notice (POST body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category
    title: Title
    body: Body
    publish_at: ParisDatetime | None = Field(
        default=None, description="When the channels send it; at once if absent"
    )
    starts_at: ParisDatetime | None = Field(
        default=None, description="Start of validity (shown on the sign, listed as current)"
    )
    ends_at: ParisDatetime | None = Field(default=None, description="End of validity")
    links: tuple[Link, ...] = Field(default=(), max_length=10)
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=10)


class NoticePatch(BaseModel):
    """A correction (PATCH body): only the fields given change; the notice gets a new version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category | None = None
    title: Title | None = None
    body: Body | None = None
    publish_at: ParisDatetime | None = None
    starts_at: ParisDatetime | None = None
    ends_at: ParisDatetime | None = None
    links: tuple[Link, ...] | None = Field(default=None, max_length=10)
    attachments: tuple[Attachment, ...] | None = Field(default=None, max_length=10)


class Notice(_Window):
    """A notice as stored and carried by every event (a full snapshot, never a diff).

    Read tolerantly (fields a newer writer added are ignored); its links and attachments
    are strict models shared with staff input, so bus readers validate with extra="ignore"
    (`schemas.versions.read_message`, `parse_notice_event`), which reaches them too.
    """

    model_config = BUS_MODEL

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{8,32}$")]
    commune: Insee
    category: Category
    title: Title
    body: Body
    publish_at: ParisDatetime | None = None
    starts_at: ParisDatetime | None = None
    ends_at: ParisDatetime | None = None
    links: tuple[Link, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    author: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    state: NoticeState
    created_at: ParisDatetime
    updated_at: ParisDatetime
    published_at: ParisDatetime | None = None
    withdrawn_at: ParisDatetime | None = None

    def is_current(self, now: datetime) -> bool:
        """Within its validity window and not withdrawn: shown on the sign, listed as current."""
        if self.state in (NoticeState.WITHDRAWN, NoticeState.SCHEDULED):
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at

    def state_at(self, now: datetime) -> NoticeState:
        """The state a reader sees: expiry is derived from `ends_at`, never stored."""
        if self.state in (NoticeState.PUBLISHED, NoticeState.CORRECTED) and (
            self.ends_at is not None and now >= self.ends_at
        ):
            return NoticeState.EXPIRED
        return self.state

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self.category]
