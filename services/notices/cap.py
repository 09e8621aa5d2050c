"""A notice as an OASIS CAP 1.2 alert (Common Alerting Protocol), for aggregators and FR-Alert."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas.notice import CATEGORY_LABELS, PARIS, Category, Notice, NoticeState, SentVersion
from services.notices.xmltext import xml_text

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"

CapCategory = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
CapUrgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
CapCertainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
MsgType = Literal["Alert", "Update", "Cancel"]


@dataclass(frozen=True)
class CapProfile:
    """The CAP <info> fields that CAP requires and a notice does not carry itself."""

    cap_category: CapCategory
    urgency: CapUrgency
    severity: CapSeverity
    certainty: CapCertainty


# A mairie states facts it knows (Observed) except for what is announced or feared (Likely);
# only an alert calls for action now, so only an alert is Immediate and Severe.
CAP_MAPPING: dict[Category, CapProfile] = {
    Category.INFORMATION: CapProfile("Other", "Expected", "Minor", "Observed"),
    Category.EVENEMENT: CapProfile("Other", "Future", "Minor", "Likely"),
    Category.TRAVAUX: CapProfile("Infra", "Expected", "Minor", "Observed"),
    Category.ALERTE: CapProfile("Safety", "Immediate", "Severe", "Likely"),
}

def cap_time(value: datetime) -> str:
    """A CAP 1.2 dateTime: Paris local time, whole seconds, numeric offset, never "Z"."""
    local = (value.replace(tzinfo=PARIS) if value.tzinfo is None else value).astimezone(PARIS)
    text = local.isoformat(timespec="seconds")
    # CAP spells UTC "-00:00"; Paris is never at offset zero today, but the rule costs nothing.
    if local.utcoffset() == timedelta(0):
        text = text[: -len("+00:00")] + "-00:00"
    return text


class NotSent(ValueError):
    """The notice never went out (scheduled, or withdrawn before its time): no CAP message."""


def sent_versions(notice: Notice) -> tuple[SentVersion, ...]:
    """Every version that went out, oldest first."""
    if notice.sent_versions:
        return notice.sent_versions
    if notice.published_at is None:
        return ()
    # A notice stored before versions sent were recorded: its first version was the Alert.
    first = SentVersion(version=1, sent_at=notice.published_at)
    if notice.version == 1:
        return (first,)
    return (first, SentVersion(version=notice.version, sent_at=notice.updated_at))


def _msg_type(notice: Notice, sent: tuple[SentVersion, ...]) -> MsgType:
    """CAP msgType for the notice's current life stage; refuses what is not a CAP message."""
    if notice.state is NoticeState.SCHEDULED:
        raise NotSent(f"notice {notice.id} is scheduled: not sent yet, so not a CAP message")
    if not sent:
        raise NotSent(f"notice {notice.id} was never sent")
    if notice.state is NoticeState.WITHDRAWN:
        return "Cancel"
    if sent[-1].version != notice.version:
        raise ValueError(f"notice {notice.id} is at version {notice.version}, "
                         f"but version {sent[-1].version} is the last sent")
    # A stored "expired" state is treated like the version it expired at: expiry is in <expires>.
    # The first version anyone saw is the Alert, whatever its number (corrected while scheduled).
    return "Alert" if len(sent) == 1 else "Update"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    """Append a CAP element (namespaced) with optional text."""
    element = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
    if text is not None:
        element.text = xml_text(text)
    return element


def notice_to_cap(notice: Notice, commune_name: str, public_url: str) -> bytes:
    """The notice's current stage as a CAP 1.2 <alert> document (UTF-8, with XML declaration)."""
    versions = sent_versions(notice)
    msg_type = _msg_type(notice, versions)
    assert notice.published_at is not None  # a sent notice has one
    profile = CAP_MAPPING[notice.category]
    base = f"crieur-{notice.commune}-{notice.id}"
    sender = f"mairie-{notice.commune}@crieur"

    if msg_type == "Cancel":
        identifier = f"{base}-v{notice.version}-cancel"
        sent = notice.withdrawn_at or notice.updated_at
        earlier = versions
    else:
        identifier, sent = f"{base}-v{notice.version}", versions[-1].sent_at
        earlier = versions[:-1]

    # Children are appended in the exact sequence the CAP 1.2 schema requires.
    alert = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    _sub(alert, "identifier", identifier)
    _sub(alert, "sender", sender)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", "Public")
    if earlier:
        # Every message sent before this one, oldest first (CAP: sender,identifier,sent).
        _sub(alert, "references", " ".join(
            f"{sender},{base}-v{v.version},{cap_time(v.sent_at)}" for v in earlier))

    info = _sub(alert, "info")
    _sub(info, "language", "fr-FR")
    _sub(info, "category", profile.cap_category)
    _sub(info, "event", CATEGORY_LABELS[notice.category])
    _sub(info, "urgency", profile.urgency)
    _sub(info, "severity", profile.severity)
    _sub(info, "certainty", profile.certainty)
    _sub(info, "effective", cap_time(notice.starts_at or notice.published_at))
    if notice.ends_at is not None:
        _sub(info, "expires", cap_time(notice.ends_at))
    _sub(info, "senderName", f"Mairie de {commune_name}")
    _sub(info, "headline", notice.title)
    _sub(info, "description", notice.body)
    site = public_url.rstrip("/")
    # The notice's public page: what a resident (or an aggregator's reader) opens.
    _sub(info, "web", f"{site}/communes/{notice.commune}/notices/{notice.id}")
    for attachment in notice.attachments:
        resource = _sub(info, "resource")
        _sub(resource, "resourceDesc", attachment.name)
        _sub(resource, "mimeType", attachment.media_type)
        if attachment.size is not None:
            _sub(resource, "size", str(attachment.size))
        _sub(resource, "uri", str(attachment.url))

    area = _sub(info, "area")
    _sub(area, "areaDesc", f"{commune_name} ({notice.commune})")
    geocode = _sub(area, "geocode")
    _sub(geocode, "valueName", "INSEE")
    _sub(geocode, "value", notice.commune)

    body: bytes = ET.tostring(alert, encoding="utf-8", default_namespace=CAP_NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
