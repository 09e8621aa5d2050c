"""A notice: what a mairie publishes once and every channel carries."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
)

from schemas.commune import Insee
from schemas.versions import BUS_MODEL

# Every date a resident or a member of staff sees is French local time.
PARIS = ZoneInfo("Europe/Paris")


def _fixed(local: datetime) -> datetime:
    """Paris time with its offset fixed: two times in the hour that happens twice compare right.

    (Python compares two datetimes of one ZoneInfo by their wall clock, ignoring the offset.)
    """
    return local.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)), fold=0)


def _as_paris(value: datetime) -> datetime:
    # A naive time typed by a secretary means local time in the village, not UTC.
    if value.tzinfo is None:
        return _fixed(value.replace(tzinfo=PARIS))
    return _fixed(value.astimezone(PARIS))


_serialize_paris = PlainSerializer(
    lambda v: v.astimezone(PARIS).isoformat(), return_type=str, when_used="json"
)

def _offset_in_seconds(value: Any) -> Any:
    # Notices stored before dates were checked may carry Paris's pre-1911 offset (+00:09:21),
    # which pydantic's parser refuses; Python's reads it, so such a notice stays readable.
    if isinstance(value, str) and value.count(":") == 4:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


ParisDatetime = Annotated[
    datetime, BeforeValidator(_offset_in_seconds), AfterValidator(_as_paris), _serialize_paris
]

# The years a date given by staff may fall in. A typo (1026 for 2026) is refused at the door:
# before 1911 Paris time had an offset in seconds that no reader accepts, and near year 1 or
# 9999 the conversion to Paris time overflows.
MIN_YEAR, MAX_YEAR = 2000, 2100


def _staff_time(value: datetime) -> datetime:
    """A date from staff input, in Paris time; the rule for clock changes is in docs/api.md."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    if value.tzinfo is not None:
        return _fixed(value.astimezone(PARIS))
    earlier, later = value.replace(tzinfo=PARIS, fold=0), value.replace(tzinfo=PARIS, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return _fixed(earlier)
    shown = value.isoformat(timespec="minutes")
    if earlier.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != value:
        # The hour skipped when clocks go forward (last Sunday of March, 02:00 -> 03:00).
        raise ValueError(f"{shown} does not exist in Paris time (the clocks go forward that "
                         "night): give a time outside the skipped hour")
    # The hour that happens twice when clocks go back (last Sunday of October).
    raise ValueError(f"{shown} happens twice in Paris time (the clocks go back that night): "
                     "add the offset, +02:00 for the first time or +01:00 for the second")


StaffDatetime = Annotated[datetime, AfterValidator(_staff_time), _serialize_paris]


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
    # Waits for a second staff member's approval (the commune requires it for its category);
    # like a scheduled notice it stays off the NOTICES stream, so no channel sees it.
    PENDING_APPROVAL = "pending_approval"
    PUBLISHED = "published"
    CORRECTED = "corrected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    # A draft made from an official alert (services/notices/capfeed.py); kept off the stream
    # like a scheduled notice until a member of staff publishes it.
    PROPOSED = "proposed"


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# Characters no output can carry: lone surrogates (not even encodable as UTF-8), the C0
# controls that XML 1.0 forbids even escaped, and the two non-characters.
_UNCARRIABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _carriable(value: str) -> str:
    found = _UNCARRIABLE.search(value)
    if found is not None:
        raise ValueError(f"contains a character that cannot be shown (U+{ord(found[0]):04X})")
    return value


def _visible(value: str) -> str:
    # Letters, digits, punctuation or symbols: zero-width spaces and the like alone show nothing.
    if not any(unicodedata.category(ch)[0] in "LNPS" for ch in value):
        raise ValueError("must contain visible text")
    return value


# Stored notices are read as they were written (a bus reader is tolerant); what staff send is
# checked further (Staff* types and *Input models below), so a rule added at the door never
# makes an already stored notice unreadable.
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
StaffTitle = Annotated[Title, AfterValidator(_carriable), AfterValidator(_visible)]
StaffBody = Annotated[Body, AfterValidator(_carriable), AfterValidator(_visible)]

# A media type as RFC 6838 spells it (type/subtype, optional parameters): it goes into Atom,
# CAP and email headers as is.
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
)


def _media_type(value: str) -> str:
    if not _MEDIA_TYPE.fullmatch(value):
        raise ValueError("must be a media type such as application/pdf or image/png")
    return value


# A media type as RFC 6838 spells it (type/subtype, optional parameters): it goes into Atom,
# CAP and email headers as is.
MediaType = Annotated[
    str,
    StringConstraints(max_length=100),
    AfterValidator(_media_type),
    Field(description="Media type, e.g. application/pdf", examples=["application/pdf"]),
]
# Ten gigabytes: anything larger is a typo, not a decree on the mairie's website.
MAX_ATTACHMENT_SIZE = 10_000_000_000
# The images the front door takes (services/notices/attachments.py sniffs them).
HOSTED_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


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
    # Set when the file is hosted by Crieur (uploaded to POST .../attachments): its id there.
    # Left out when unset, so an attachment elsewhere reads exactly as before.
    id: str | None = Field(default=None, pattern=r"^[a-z0-9]{8,32}$",
                           exclude_if=lambda v: v is None)

    @property
    def is_hosted_image(self) -> bool:
        """An image uploaded here: its type was judged from its bytes, not from what staff
        said. An image elsewhere stays a link, as it may be anything at any size."""
        return self.id is not None and self.media_type in HOSTED_IMAGE_TYPES

    def path(self, commune: str) -> str:
        """Where the front door serves a hosted attachment (public, no account)."""
        return f"/communes/{commune}/attachments/{self.id}"


class LinkInput(Link):
    """A link as staff give it."""

    label: Annotated[str, AfterValidator(_carriable)] = Field(default="", max_length=120)


class AttachmentInput(Attachment):
    """An attachment as staff give it: a name that shows, a real media type, a sane size."""

    name: Annotated[
        str, BeforeValidator(_strip), AfterValidator(_carriable), AfterValidator(_visible)
    ] = Field(min_length=1, max_length=200)
    media_type: MediaType = "application/octet-stream"
    size: int | None = Field(default=None, ge=0, le=MAX_ATTACHMENT_SIZE,
                             description="Size in bytes")


# An attachment uploaded beforehand (POST /api/v1/communes/{insee}/attachments), named by
# its id in a draft; the front door replaces it with the attachment itself.
AttachmentId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]{8,32}$"),
    Field(description="The id of an uploaded attachment", examples=["3f9c2a7b1d0e4f68"]),
]
# The two kinds are told apart by shape, so an error names the field as written
# (`attachments.0.name`), not both branches of the union; the tags below are dropped from
# error locations (services/notices/errors.py).
UPLOADED, ELSEWHERE = "uploaded_attachment", "attachment_elsewhere"
UNION_TAGS = frozenset({UPLOADED, ELSEWHERE})
DraftAttachment = Annotated[
    Annotated[AttachmentInput, Tag(ELSEWHERE)] | Annotated[AttachmentId, Tag(UPLOADED)],
    Discriminator(lambda v: UPLOADED if isinstance(v, str) else ELSEWHERE),
]
DraftAttachments = tuple[DraftAttachment, ...]


class SentVersion(BaseModel):
    """A version of a notice that went out to the channels (CAP references each one)."""

    model_config = BUS_MODEL

    version: int = Field(ge=1)
    sent_at: ParisDatetime


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
    title: StaffTitle
    body: StaffBody
    publish_at: StaffDatetime | None = Field(
        default=None, description="When the channels send it; at once if absent"
    )
    starts_at: StaffDatetime | None = Field(
        default=None, description="Start of validity (shown on the sign, listed as current)"
    )
    ends_at: StaffDatetime | None = Field(default=None, description="End of validity")
    links: tuple[LinkInput, ...] = Field(default=(), max_length=10)
    attachments: DraftAttachments = Field(
        default=(), max_length=10,
        description="Files: an uploaded attachment's id, or a file elsewhere (name, url...)")

    @field_validator("ends_at")
    @classmethod
    def _ends_after_publication(
        cls, ends_at: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        publish_at = info.data.get("publish_at")
        if publish_at is not None and ends_at is not None and ends_at <= publish_at:
            raise ValueError("ends_at must be after publish_at: the notice would end unseen")
        return ends_at


class NoticePatch(BaseModel):
    """A correction (PATCH body): only the fields given change; the notice gets a new version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category | None = None
    title: StaffTitle | None = None
    body: StaffBody | None = None
    publish_at: StaffDatetime | None = None
    starts_at: StaffDatetime | None = None
    ends_at: StaffDatetime | None = None
    links: tuple[LinkInput, ...] | None = Field(default=None, max_length=10)
    attachments: DraftAttachments | None = Field(default=None, max_length=10)


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
    approved_by: str | None = Field(
        default=None, max_length=100,
        description="The staff member who approved it, when the commune requires approval")
    approved_version: int | None = Field(
        default=None, ge=1,
        description="The version whose text `approved_by` approved (a later version that only "
        "moved dates keeps it; one whose text changed waits for a new approval)")
    content_authors: tuple[str, ...] = Field(
        default=(),
        description="While it waits for approval: every staff member who wrote any of the "
        "text waiting (none of them may approve it); empty once approved, or never needed")
    sent_versions: tuple[SentVersion, ...] = Field(
        default=(),
        description="Every version that went out, oldest first: the first is what CAP calls "
        "the Alert, the others its Updates (empty while scheduled, or for a notice stored "
        "before this field existed)",
    )
    # Left out when unset (exclude_if), so a notice of one commune reads exactly as before.
    broadcast_id: str | None = Field(
        default=None, pattern=r"^[a-z0-9]{8,32}$", exclude_if=lambda v: v is None,
        description="Set on each commune's copy of a group publication (POST /api/v1/groups/"
        "{group}/notices): the broadcast, corrected and withdrawn only as a whole")
    group: str | None = Field(
        default=None, max_length=64, exclude_if=lambda v: v is None,
        description="The group a broadcast copy was published for")
    cap_identifier: str | None = Field(
        default=None, max_length=500, exclude_if=lambda v: v is None,
        description="The CAP `identifier` of the official alert this notice was proposed from")

    def is_current(self, now: datetime) -> bool:
        """Within its validity window and not withdrawn: shown on the sign, listed as current."""
        if self.state in (NoticeState.WITHDRAWN, NoticeState.SCHEDULED,
                          NoticeState.PENDING_APPROVAL, NoticeState.PROPOSED):
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

    @property
    def images(self) -> tuple[Attachment, ...]:
        """Its photos hosted here (uploaded, so reduced and stripped of EXIF), in order."""
        return tuple(a for a in self.attachments if a.is_hosted_image)

    def image_url(self, public_url: str) -> str | None:
        """The address of its first photo under `public_url`, which channels show with it."""
        if not self.images:
            return None
        return f"{public_url.rstrip('/')}{self.images[0].path(self.commune)}"
