"""A commune's current notices as an Atom 1.0 feed (RFC 4287), for feed readers and aggregators."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from crieur import french
from schemas.notice import CATEGORY_LABELS, PARIS, Category, Notice, NoticeState
from services.notices.xmltext import xml_text

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

def atom_time(value: datetime) -> str:
    """An RFC 3339 date-time in Paris local time, whole seconds."""
    local = value.replace(tzinfo=PARIS) if value.tzinfo is None else value.astimezone(PARIS)
    return local.isoformat(timespec="seconds")


def entry_id(notice: Notice) -> str:
    """A notice's Atom id: the same for every version, and independent of where Crieur is hosted."""
    # A name-based UUID needs no domain we own (unlike tag:) and no registered URN namespace.
    name = f"crieur:notice:{notice.commune}:{notice.id}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _entry_title(notice: Notice) -> str:
    """Alerts carry their label in the title so they stand out in a reader's list."""
    if notice.category is Category.ALERTE:
        return f"{CATEGORY_LABELS[notice.category]} : {notice.title}"
    return notice.title


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """Append an Atom element with optional text and attributes."""
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = xml_text(text)
    return element


@dataclass(frozen=True)
class Paging:
    """Where this page sits in the whole feed (RFC 5005 paged feed); hrefs are complete URLs."""

    current: str
    first: str
    last: str
    previous: str | None = None
    next: str | None = None


def _withdrawal_note(notice: Notice) -> str:
    when = notice.withdrawn_at or notice.updated_at
    return (f"Cet avis a été retiré par la mairie le {french.date_time(when)}."
            f"\n\n{notice.body}")


def commune_feed(
    commune_insee: str,
    commune_name: str,
    notices: Sequence[Notice],
    now: datetime,
    public_url: str,
    *,
    updated: datetime | None = None,
    paging: Paging | None = None,
) -> bytes:
    """The commune's notices, in the order given, as an Atom feed (UTF-8, with XML declaration).

    A withdrawn notice is an entry marked as withdrawn. `updated` is the feed's time (the
    caller keeps it from going backwards when an entry leaves); by default the latest entry's.
    """
    # Choosing which notices are in the feed, and their order, is the caller's job; a notice
    # from another commune here is a bug upstream that must not leak into this commune's feed.
    strays = [n.id for n in notices if n.commune != commune_insee]
    if strays:
        raise ValueError(f"notices {strays} do not belong to commune {commune_insee}")

    site = public_url.rstrip("/")
    api = f"{site}/api/v1/communes/{commune_insee}"
    author = f"Mairie de {commune_name}"
    if updated is None:
        updated = max((n.updated_at for n in notices), default=now)

    # xmlns is written as a plain attribute: ElementTree's default_namespace option refuses
    # the unprefixed attributes (rel, href) that Atom uses.
    feed = ET.Element("feed", {"xmlns": ATOM_NAMESPACE, _XML_LANG: "fr"})
    # The public page's address is the feed's id (an id, not a link: it never changes, so
    # readers keep their subscription when the public pages are served there).
    _sub(feed, "id", f"{site}/communes/{commune_insee}")
    _sub(feed, "title", f"Avis de la mairie de {commune_name}")
    _sub(feed, "updated", atom_time(updated))
    self_href = paging.current if paging is not None else f"{api}/feed.atom"
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_href)
    # The commune's public page first (what a reader opens), then the same list as JSON.
    _sub(feed, "link", rel="alternate", type="text/html", href=f"{site}/communes/{commune_insee}")
    _sub(feed, "link", rel="alternate", type="application/json", href=f"{api}/notices")
    if paging is not None:
        _sub(feed, "link", rel="first", type="application/atom+xml", href=paging.first)
        _sub(feed, "link", rel="last", type="application/atom+xml", href=paging.last)
        if paging.previous is not None:
            _sub(feed, "link", rel="previous", type="application/atom+xml", href=paging.previous)
        if paging.next is not None:
            _sub(feed, "link", rel="next", type="application/atom+xml", href=paging.next)

    for notice in notices:
        withdrawn = notice.state is NoticeState.WITHDRAWN
        entry = _sub(feed, "entry")
        _sub(entry, "id", entry_id(notice))
        title = _entry_title(notice)
        _sub(entry, "title", f"Retiré : {title}" if withdrawn else title)
        _sub(entry, "updated", atom_time(notice.updated_at))
        if notice.published_at is not None:
            _sub(entry, "published", atom_time(notice.published_at))
        _sub(_sub(entry, "author"), "name", author)
        _sub(entry, "category", term=notice.category.value, label=CATEGORY_LABELS[notice.category])
        notice_url = f"{api}/notices/{notice.id}"
        # The notice's public page, the link emails and SMS carry too; then its JSON.
        _sub(entry, "link", rel="alternate", type="text/html",
             href=f"{site}/communes/{commune_insee}/notices/{notice.id}")
        _sub(entry, "link", rel="alternate", type="application/json", href=notice_url)
        if notice.published_at is not None:
            _sub(entry, "link", rel="related", type="application/cap+xml",
                 href=f"{notice_url}/cap.xml", title="CAP 1.2")
        for link in notice.links:
            attrs = {"title": xml_text(link.label)} if link.label else {}
            _sub(entry, "link", rel="related", href=str(link.url), **attrs)
        for attachment in notice.attachments:
            attrs = {"title": xml_text(attachment.name),
                     "type": xml_text(attachment.media_type)}
            if attachment.size is not None:
                attrs["length"] = str(attachment.size)
            _sub(entry, "link", rel="enclosure", href=str(attachment.url), **attrs)
        _sub(entry, "content", _withdrawal_note(notice) if withdrawn else notice.body,
             type="text")

    body: bytes = ET.tostring(feed, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
