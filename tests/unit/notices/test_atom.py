"""Atom 1.0 feed of a commune's notices."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest

from schemas.notice import PARIS, Category, Notice, NoticeState
from services.notices.atom import ATOM_NAMESPACE, commune_feed

NS = {"a": ATOM_NAMESPACE}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PUBLIC_URL = "https://crieur.example.fr"
NOW = datetime(2025, 8, 1, 12, 0, tzinfo=PARIS)
RFC3339_PARIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00$")


def make_notice(**overrides: Any) -> Notice:
    """A published version-1 notice of Gray (70279), overridable field by field."""
    moment = datetime(2025, 1, 10, 9, 30, 15, 250000, tzinfo=PARIS)
    fields: dict[str, Any] = {
        "id": "n0tice0001",
        "commune": "70279",
        "category": Category.INFORMATION,
        "title": "Fermeture de la mairie",
        "body": "La mairie sera fermée lundi.",
        "author": "secretariat",
        "version": 1,
        "state": NoticeState.PUBLISHED,
        "created_at": moment,
        "updated_at": moment,
        "published_at": moment,
    }
    fields.update(overrides)
    return Notice(**fields)


def feed_of(notices: list[Notice], now: datetime = NOW) -> ET.Element:
    """Render a Gray feed and parse it back."""
    return ET.fromstring(commune_feed("70279", "Gray", notices, now, PUBLIC_URL))


def entries(root: ET.Element) -> list[ET.Element]:
    """The feed's entries in document order."""
    return root.findall("a:entry", NS)


def test_feed_parses_with_namespace_language_and_declaration() -> None:
    data = commune_feed("70279", "Gray", [make_notice()], NOW, PUBLIC_URL)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(data)
    assert root.tag == f"{{{ATOM_NAMESPACE}}}feed"
    assert root.get(XML_LANG) == "fr"
    assert root.findtext("a:title", namespaces=NS) == "Avis de la mairie de Gray"
    assert root.findtext("a:id", namespaces=NS) == f"{PUBLIC_URL}/communes/70279"


def test_feed_links() -> None:
    root = feed_of([])
    links = {(link.get("rel"), link.get("type")): link.get("href")
             for link in root.findall("a:link", NS)}
    assert links == {
        ("self", "application/atom+xml"): f"{PUBLIC_URL}/api/v1/communes/70279/feed.atom",
        ("alternate", "text/html"): f"{PUBLIC_URL}/communes/70279",
        ("alternate", "application/json"): f"{PUBLIC_URL}/api/v1/communes/70279/notices",
    }
    slashed = ET.fromstring(commune_feed("70279", "Gray", [], NOW, PUBLIC_URL + "/"))
    self_link = slashed.find("a:link[@rel='self']", NS)
    assert self_link is not None
    assert self_link.get("href") == links[("self", "application/atom+xml")]


def test_entries_keep_the_given_order() -> None:
    old = make_notice(id="aaaaaaaa01", updated_at=datetime(2025, 1, 1, tzinfo=PARIS))
    new = make_notice(id="bbbbbbbb02", updated_at=datetime(2025, 6, 1, tzinfo=PARIS))
    mid = make_notice(id="cccccccc03", updated_at=datetime(2025, 3, 1, tzinfo=PARIS))
    hrefs = [
        e.find("a:link[@rel='alternate']", NS).get("href")  # type: ignore[union-attr]
        for e in entries(feed_of([mid, old, new]))
    ]
    assert hrefs == [
        f"{PUBLIC_URL}/communes/70279/notices/cccccccc03",
        f"{PUBLIC_URL}/communes/70279/notices/aaaaaaaa01",
        f"{PUBLIC_URL}/communes/70279/notices/bbbbbbbb02",
    ]


def test_entry_id_is_stable_across_versions_and_unique_per_notice() -> None:
    v1 = make_notice()
    v2 = v1.model_copy(
        update={
            "version": 2,
            "state": NoticeState.CORRECTED,
            "title": "Mairie fermée lundi et mardi",
            "updated_at": datetime(2025, 2, 1, tzinfo=PARIS),
        }
    )
    other = make_notice(id="n0tice0002")
    id_v1 = entries(feed_of([v1]))[0].findtext("a:id", namespaces=NS)
    id_v2 = entries(feed_of([v2]))[0].findtext("a:id", namespaces=NS)
    id_other = entries(feed_of([other]))[0].findtext("a:id", namespaces=NS)
    assert id_v1 == id_v2
    assert id_v1 != id_other
    assert id_v1 is not None and id_v1.startswith("urn:uuid:")
    # Moving Crieur to another address must not make readers see every notice as new.
    moved = ET.fromstring(commune_feed("70279", "Gray", [v1], NOW, "https://autre.example.org"))
    assert entries(moved)[0].findtext("a:id", namespaces=NS) == id_v1


def test_feed_updated_is_latest_entry_update() -> None:
    latest = datetime(2025, 7, 14, 18, 0, 0, 999999, tzinfo=PARIS)
    notices = [
        make_notice(id="aaaaaaaa01", updated_at=datetime(2025, 1, 1, tzinfo=PARIS)),
        make_notice(id="bbbbbbbb02", updated_at=latest),
        make_notice(id="cccccccc03", updated_at=datetime(2025, 3, 1, tzinfo=PARIS)),
    ]
    root = feed_of(notices)
    assert root.findtext("a:updated", namespaces=NS) == "2025-07-14T18:00:00+02:00"


def test_empty_feed_is_updated_now() -> None:
    root = feed_of([], now=datetime(2025, 2, 3, 4, 5, 6, 7, tzinfo=PARIS))
    assert root.findtext("a:updated", namespaces=NS) == "2025-02-03T04:05:06+01:00"
    assert entries(root) == []


def test_entry_fields() -> None:
    notice = make_notice(
        category=Category.EVENEMENT,
        title="Bal du 14 juillet",
        body="Place de la mairie, à 21h.\nBuvette.",
        updated_at=datetime(2025, 7, 1, 10, 0, tzinfo=PARIS),
        links=[{"url": "https://example.fr/plan?a=1&b=2", "label": "Plan"}],
        attachments=[
            {
                "name": "Affiche",
                "url": "https://example.fr/affiche.pdf",
                "media_type": "application/pdf",
                "size": 1000,
            }
        ],
    )
    (entry,) = entries(feed_of([notice]))
    assert entry.findtext("a:title", namespaces=NS) == "Bal du 14 juillet"
    assert entry.findtext("a:updated", namespaces=NS) == "2025-07-01T10:00:00+02:00"
    assert entry.findtext("a:published", namespaces=NS) == "2025-01-10T09:30:15+01:00"
    assert entry.findtext("a:author/a:name", namespaces=NS) == "Mairie de Gray"
    category = entry.find("a:category", NS)
    assert category is not None
    assert (category.get("term"), category.get("label")) == ("evenement", "Événement")
    content = entry.find("a:content", NS)
    assert content is not None
    assert content.get("type") == "text"
    assert content.text == "Place de la mairie, à 21h.\nBuvette."
    links = {link.get("rel"): link for link in entry.findall("a:link", NS)}
    alternates = {link.get("type"): link.get("href")
                  for link in entry.findall("a:link[@rel='alternate']", NS)}
    assert alternates == {
        "text/html": f"{PUBLIC_URL}/communes/70279/notices/n0tice0001",
        "application/json": f"{PUBLIC_URL}/api/v1/communes/70279/notices/n0tice0001",
    }
    assert links["related"].get("href") == "https://example.fr/plan?a=1&b=2"
    assert links["enclosure"].get("length") == "1000"
    assert links["enclosure"].get("type") == "application/pdf"


@pytest.mark.parametrize(
    ("category", "title"),
    [
        (Category.ALERTE, "Alerte : Crue de la Saône"),
        (Category.INFORMATION, "Crue de la Saône"),
        (Category.EVENEMENT, "Crue de la Saône"),
        (Category.TRAVAUX, "Crue de la Saône"),
    ],
)
def test_only_alerts_are_prefixed(category: Category, title: str) -> None:
    (entry,) = entries(feed_of([make_notice(category=category, title="Crue de la Saône")]))
    assert entry.findtext("a:title", namespaces=NS) == title


def test_times_are_rfc3339_paris_without_fractions() -> None:
    notices = [
        make_notice(id="aaaaaaaa01"),
        make_notice(id="bbbbbbbb02", updated_at=datetime(2025, 7, 1, 8, 0, 0, 1, tzinfo=PARIS)),
    ]
    root = feed_of(notices)
    stamps = [e.text for e in root.iter() if e.tag.split("}")[1] in {"updated", "published"}]
    assert len(stamps) == 5
    assert all(s is not None and RFC3339_PARIS.match(s) for s in stamps), stamps


def test_hostile_title_round_trips() -> None:
    hostile = '<b>Fête & "bal"</b>'
    data = commune_feed("70279", "Gray & <co>", [make_notice(title=hostile)], NOW, PUBLIC_URL)
    root = ET.fromstring(data)
    assert entries(root)[0].findtext("a:title", namespaces=NS) == hostile
    assert root.findtext("a:title", namespaces=NS) == "Avis de la mairie de Gray & <co>"


def test_notice_of_another_commune_is_refused() -> None:
    with pytest.raises(ValueError, match="2A004"):
        commune_feed("2A004", "Ajaccio", [make_notice()], NOW, PUBLIC_URL)


def test_corsican_commune_feed() -> None:
    root = ET.fromstring(
        commune_feed("2A004", "Ajaccio", [make_notice(commune="2A004")], NOW, PUBLIC_URL)
    )
    assert root.findtext("a:id", namespaces=NS) == f"{PUBLIC_URL}/communes/2A004"
    assert len(entries(root)) == 1
