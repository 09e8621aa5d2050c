"""Property: whatever text a stored notice carries, every output is well formed.

Arbitrary text goes into every text a notice can carry (title, body, author, link labels,
attachment names and media types, URL paths, the commune's name) and each output is read
back with a real parser: JSON, Atom and CAP (XML parser, CAP also against its schema),
the sign's /playlist document and page (json, html.parser) and its frames (PNG).
Lone surrogates are left out: the bus's JSON parser refuses them, so no stored notice
carries one (staff input refuses them at the door).
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from schemas import Category, Notice, NoticeState
from services.notices.atom import commune_feed
from services.notices.cap import CAP_NAMESPACE, notice_to_cap
from services.notices.xmltext import xml_text
from services.panel import render, web
from services.panel.playlist import Playlist
from services.panel.showing import slide_for

XSD = Path(__file__).parent / "notices" / "cap12_subset.xsd"
ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

# Every code point but lone surrogates (category Cs): controls, U+FFFE, U+FFFF, RTL marks,
# combining marks, emoji, private use...
ANY_CHAR = st.characters(exclude_categories=["Cs"])
TEXT = st.text(ANY_CHAR, max_size=150)


def url(path: str) -> str:
    return "https://mairie.example/" + path


@st.composite
def notices(draw: st.DrawFn) -> Notice:
    state = draw(st.sampled_from([NoticeState.PUBLISHED, NoticeState.CORRECTED,
                                  NoticeState.WITHDRAWN]))
    version = 1 if state is NoticeState.PUBLISHED else 2
    data: dict[str, Any] = {
        "id": "n0tice0001", "commune": "70299",
        "category": draw(st.sampled_from(list(Category))),
        "title": draw(TEXT), "body": draw(st.text(ANY_CHAR, max_size=600)),
        "author": draw(TEXT), "version": version, "state": state,
        "created_at": NOW - timedelta(hours=1), "updated_at": NOW,
        "published_at": NOW - timedelta(hours=1),
        "ends_at": NOW + timedelta(days=1),
        "links": [{"url": url(draw(TEXT)), "label": draw(TEXT)}
                  for _ in range(draw(st.integers(0, 2)))],
        "attachments": [{"url": url(draw(TEXT)), "name": draw(TEXT),
                         "media_type": draw(TEXT)}
                        for _ in range(draw(st.integers(0, 2)))],
    }
    try:
        return Notice.model_validate(data)
    except ValidationError:
        reject()  # refused by the model: it never becomes a stored notice


common = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@common
@given(notices(), TEXT.filter(lambda t: t.strip() != ""))
def test_json_atom_and_cap_parse_whatever_the_text(notice: Notice, commune: str) -> None:
    assert json.loads(notice.model_dump_json())["title"] == notice.title

    feed = ET.fromstring(commune_feed("70299", commune, [notice], NOW, "https://crieur.example"))
    entry_title = feed.find(f"{ATOM}entry/{ATOM}title")
    assert entry_title is not None and (entry_title.text or "").endswith(xml_text(notice.title))
    content = feed.find(f"{ATOM}entry/{ATOM}content")
    assert content is not None
    # A withdrawn notice's entry says so before its text.
    # Both sides stripped alike: str.rstrip() also takes Unicode spaces such as U+0085.
    assert (content.text or "").rstrip().endswith(xml_text(notice.body).rstrip())

    cap = ET.fromstring(notice_to_cap(notice, commune, "https://crieur.example"))
    headline = cap.find(f".//{{{CAP_NAMESPACE}}}headline")
    assert headline is not None and xml_text(notice.title).startswith(headline.text or "")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(notices(), TEXT.filter(lambda t: t.strip() != ""))
def test_cap_stays_valid_against_its_schema(notice: Notice, commune: str) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    schema = _schema(xmlschema)
    schema.validate(notice_to_cap(notice, commune, "https://crieur.example").decode())


_SCHEMAS: dict[str, Any] = {}


def _schema(xmlschema: Any) -> Any:
    if "cap" not in _SCHEMAS:
        _SCHEMAS["cap"] = xmlschema.XMLSchema(XSD)
    return _SCHEMAS["cap"]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.script = ""
        self._in_script = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script += data
        else:
            self.text.append(data)


@common
@given(notices())
def test_the_sign_shows_any_text_and_its_page_and_playlist_parse(notice: Notice) -> None:
    live = notice.model_copy(update={"state": NoticeState.PUBLISHED, "version": 1})
    playlist = Playlist("70299")
    from schemas import NoticePublished

    playlist.apply(NoticePublished(occurred_at=NOW, notice=live))
    doc = web.snapshot(playlist, NOW, name="panneau", size="128x32", synced=True,
                       connected=True, commune_name="Lavoncourt")
    # What /playlist and the server-sent events carry.
    assert json.loads(json.dumps(doc, ensure_ascii=False))["notices"][0]["title"] == live.title

    page = _Page()
    page.feed(web._list_items(doc) + "<script>" + web._script_json(doc) + "</script>")
    page.close()
    assert json.loads(page.script)["notices"][0]["title"] == live.title
    assert not re.search(r"<\s*/?\s*script", "".join(page.text), re.I)

    spec = render.PanelSpec()
    frames = render.frames(slide_for(live), spec)
    for frame in (next(frames), next(frames, None)):
        if frame is None:
            break
        assert frame.size == spec.size
        assert Image.open(io.BytesIO(web.png_bytes(frame))).size == spec.size
