"""Staff previews: the front door asks each running channel what a draft would look like.

Request-reply on `channels.<channel>.preview.<commune>` (schemas.subjects.channel_preview):
the front door sends a `PreviewRequest` (the draft made into the notice it would become)
and each channel answers from its own format code, so the code that sends is the code that
previews. Replies are read tolerantly (a reader ignores fields it does not know); a channel
that does not answer in time, or answers something unreadable, is shown as
`ChannelUnavailable` with the reason.

The HTTP answer of `POST /api/v1/communes/{insee}/previews` is `Previews`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.commune import Insee
from schemas.events import EventKind
from schemas.notice import Notice
from schemas.versions import BUS_MODEL


class PreviewRequest(BaseModel):
    """What the front door asks a channel: the notice a draft would become, not yet stored."""

    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    commune: Insee
    # The commune's name from the registry (channels send in its name).
    commune_name: str
    notice: Notice
    kind: EventKind = EventKind.PUBLISHED


class ChannelUnavailable(BaseModel):
    """A channel that is not running, did not answer in time, or answered something unreadable."""

    model_config = BUS_MODEL

    available: Literal[False] = False
    reason: str = Field(description="Why there is no preview, in French, for staff")


class PushReach(BaseModel):
    model_config = BUS_MODEL

    # Phones following the notice's commune and category (registered with the push channel).
    devices: int = Field(default=0, ge=0)
    # The FCM topics the notice goes to (one per commune and category).
    topics: list[str] = Field(default_factory=list)


class PushPreview(BaseModel):
    """The phone notification, as services/push/format.py builds it."""

    model_config = BUS_MODEL

    available: Literal[True] = True
    title: str
    body: str
    # Android's high priority and iOS's time-sensitive interruption level (alerts).
    high_priority: bool = False
    # Seconds FCM keeps the message for a phone that is off (until the notice ends).
    ttl_s: int = Field(default=0, ge=0)
    reach: PushReach = Field(default_factory=PushReach)


class SmsPreview(BaseModel):
    """The SMS, as services/sms/format.py builds it, and what it costs."""

    model_config = BUS_MODEL

    available: Literal[True] = True
    text: str
    encoding: Literal["GSM-7", "UCS-2"]
    parts: int = Field(ge=0)
    # The characters that force UCS-2 (each once, in order): highlight them for staff.
    long_characters: list[str] = Field(default_factory=list)
    # The text was cut to CRIEUR_SMS_MAX_PARTS and ends with a link to the notice.
    cut: bool = False
    # Confirmed numbers following the commune and category (0 if SMS does not carry it).
    reach: int = Field(default=0, ge=0)
    parts_to_pay: int = Field(default=0, ge=0, description="reach × parts")
    # False when the commune does not send this category by SMS (alerts only by default).
    category_carried: bool = True


class WebpushPreview(BaseModel):
    """The browser notification, as services/webpush/handlers.py builds it."""

    model_config = BUS_MODEL

    available: Literal[True] = True
    title: str
    body: str
    # The notification's tag (the notice id): a correction replaces the one shown.
    tag: str
    urgency: Literal["high", "normal"]
    # Seconds the push service keeps it for a browser that is off (until the notice ends).
    ttl_s: int = Field(default=0, ge=0)
    # Browsers subscribed to the commune and category (one encrypted request each).
    reach: int = Field(default=0, ge=0)


class PanelPreview(BaseModel):
    """The LED sign, drawn by services/panel/render.py."""

    model_config = BUS_MODEL

    available: Literal[True] = True
    # The whole slide on one PNG (the sign's height, as wide as the text), each LED
    # drawn `scale` pixels square.
    image_png_base64: str
    frames: int = Field(ge=1, description="Frames the sign shows (1 when the text fits)")
    width: int = Field(default=0, ge=0, description="The sign's width in LEDs")
    height: int = Field(default=0, ge=0, description="The sign's height in LEDs")
    scale: int = Field(default=1, ge=1)
    # Seconds the notice takes to scroll through once (0 when it fits and stays still).
    scroll_seconds: float = Field(default=0.0, ge=0)


class EmailPreview(BaseModel):
    """The email, as services/email/format.py builds it (the personal links left as '#')."""

    model_config = BUS_MODEL

    available: Literal[True] = True
    subject: str
    text: str
    html: str
    # Confirmed, not suspended addresses following the commune and category.
    reach: int = Field(default=0, ge=0)


class PreviewChannels(BaseModel):
    model_config = ConfigDict(frozen=True)

    push: PushPreview | ChannelUnavailable
    sms: SmsPreview | ChannelUnavailable
    webpush: WebpushPreview | ChannelUnavailable
    panel: PanelPreview | ChannelUnavailable
    email: EmailPreview | ChannelUnavailable


class Previews(BaseModel):
    """The answer of POST /api/v1/communes/{insee}/previews."""

    model_config = ConfigDict(frozen=True)

    commune: Insee
    channels: PreviewChannels


# Which model a channel's reply is read as.
PREVIEW_MODELS: dict[str, type[BaseModel]] = {
    "push": PushPreview,
    "sms": SmsPreview,
    "webpush": WebpushPreview,
    "panel": PanelPreview,
    "email": EmailPreview,
}
