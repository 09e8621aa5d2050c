"""CAP 1.2 rendering of notices: structure, life cycle, mapping, times and escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.notice import (
    CATEGORY_LABELS,
    PARIS,
    Category,
    Notice,
    NoticeDraft,
    NoticeState,
    SentVersion,
)
from services.notices.cap import CAP_MAPPING, CAP_NAMESPACE, CapProfile, notice_to_cap

NS = {"cap": CAP_NAMESPACE}
PUBLIC_URL = "https://crieur.example.fr"
XSD = Path(__file__).with_name("cap12_subset.xsd")

# The sequences the CAP 1.2 schema imposes (section 3.2 of the spec).
ALERT_ORDER = [
    "identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction",
    "addresses", "code", "note", "references", "incidents", "info",
]  # fmt: skip
INFO_ORDER = [
    "language", "category", "event", "responseType", "urgency", "severity", "certainty",
    "audience", "eventCode", "effective", "onset", "expires", "senderName", "headline",
    "description", "instruction", "web", "contact", "parameter", "resource", "area",
]  # fmt: skip
AREA_ORDER = ["areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling"]
RESOURCE_ORDER = ["resourceDesc", "mimeType", "size", "uri", "derefUri", "digest"]

CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")

WINTER = datetime(2025, 1, 10, 9, 30, 15, 123456, tzinfo=PARIS)
SUMMER = datetime(2025, 7, 14, 18, 0, 0, 999999, tzinfo=PARIS)


def make_notice(**overrides: Any) -> Notice:
    """A published version-1 notice of Gray (70279), overridable field by field."""
    fields: dict[str, Any] = {
        "id": "n0tice0001",
        "commune": "70279",
        "category": Category.TRAVAUX,
        "title": "Route de Gray fermée",
        "body": "Travaux sur la chaussée.\nDéviation par le centre.",
        "author": "secretariat",
        "version": 1,
        "state": NoticeState.PUBLISHED,
        "created_at": WINTER,
        "updated_at": WINTER,
        "published_at": WINTER,
        "sent_versions": [SentVersion(version=1, sent_at=WINTER)],
    }
    fields.update(overrides)
    return Notice(**fields)


def corrected(notice: Notice, at: datetime) -> Notice:
    """The next version of a notice, as the service stores it after a correction."""
    version = notice.version + 1
    return notice.model_copy(update={
        "version": version, "state": NoticeState.CORRECTED, "updated_at": at,
        "sent_versions": (*notice.sent_versions, SentVersion(version=version, sent_at=at)),
    })


def withdrawn(notice: Notice, at: datetime) -> Notice:
    """The notice after withdrawal (same version, withdrawal time recorded)."""
    return notice.model_copy(
        update={"state": NoticeState.WITHDRAWN, "updated_at": at, "withdrawn_at": at}
    )


def render(notice: Notice, name: str = "Gray") -> ET.Element:
    """Render and parse back; parsing is itself the well-formedness check."""
    return ET.fromstring(notice_to_cap(notice, name, PUBLIC_URL))


def local(element: ET.Element) -> str:
    """Tag without its namespace, after checking the namespace is CAP 1.2."""
    assert element.tag.startswith(f"{{{CAP_NAMESPACE}}}"), element.tag
    return element.tag.split("}", 1)[1]


def text(root: ET.Element, path: str) -> str | None:
    """Text of the first element at a cap:-prefixed path."""
    return root.findtext(path, namespaces=NS)


def assert_in_schema_order(element: ET.Element, order: list[str]) -> list[str]:
    """Every child is known and children never go backwards in the schema's sequence."""
    names = [local(child) for child in element]
    assert set(names) <= set(order), set(names) - set(order)
    positions = [order.index(name) for name in names]
    assert positions == sorted(positions), names
    return names


def full_notice() -> Notice:
    """A corrected notice using every optional field we render."""
    return corrected(
        make_notice(
            starts_at=WINTER,
            ends_at=SUMMER,
            attachments=[
                {
                    "name": "Arrêté",
                    "url": "https://crieur.example.fr/files/a.pdf",
                    "media_type": "application/pdf",
                    "size": 2048,
                }
            ],
        ),
        SUMMER,
    )


def test_document_is_utf8_with_declaration() -> None:
    data = notice_to_cap(make_notice(category=Category.EVENEMENT), "Gray", PUBLIC_URL)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "Événement".encode() in data
    assert ET.fromstring(data).tag == f"{{{CAP_NAMESPACE}}}alert"


def test_alert_info_area_follow_schema_order() -> None:
    root = render(full_notice())
    assert assert_in_schema_order(root, ALERT_ORDER) == [
        "identifier", "sender", "sent", "status", "msgType", "scope", "references", "info",
    ]  # fmt: skip
    info = root.find("cap:info", NS)
    assert info is not None
    assert assert_in_schema_order(info, INFO_ORDER) == [
        "language", "category", "event", "urgency", "severity", "certainty", "effective",
        "expires", "senderName", "headline", "description", "web", "resource", "area",
    ]  # fmt: skip
    area = info.find("cap:area", NS)
    assert area is not None
    assert assert_in_schema_order(area, AREA_ORDER) == ["areaDesc", "geocode"]
    resource = info.find("cap:resource", NS)
    assert resource is not None
    assert assert_in_schema_order(resource, RESOURCE_ORDER) == [
        "resourceDesc", "mimeType", "size", "uri",
    ]  # fmt: skip


def test_minimal_alert_fields() -> None:
    root = render(make_notice())
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:scope") == "Public"
    assert text(root, "cap:sender") == "mairie-70279@crieur"
    assert root.find("cap:references", NS) is None
    assert text(root, "cap:info/cap:language") == "fr-FR"
    assert text(root, "cap:info/cap:senderName") == "Mairie de Gray"
    assert text(root, "cap:info/cap:headline") == "Route de Gray fermée"
    assert text(root, "cap:info/cap:description") == (
        "Travaux sur la chaussée.\nDéviation par le centre."
    )
    assert text(root, "cap:info/cap:web") == f"{PUBLIC_URL}/communes/70279/notices/n0tice0001"
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "Gray (70279)"
    # Without a validity window: effective from publication, no expiry, no attachments.
    assert text(root, "cap:info/cap:effective") == "2025-01-10T09:30:15+01:00"
    assert root.find("cap:info/cap:expires", NS) is None
    assert root.find("cap:info/cap:resource", NS) is None


def test_trailing_slash_in_public_url_is_not_doubled() -> None:
    root = ET.fromstring(notice_to_cap(make_notice(), "Gray", PUBLIC_URL + "/"))
    assert text(root, "cap:info/cap:web") == f"{PUBLIC_URL}/communes/70279/notices/n0tice0001"


def test_life_cycle_alert_update_cancel() -> None:
    v1 = make_notice()
    v2 = corrected(v1, datetime(2025, 3, 1, 8, 0, tzinfo=PARIS))
    v3 = corrected(v2, datetime(2025, 4, 1, 8, 0, tzinfo=PARIS))
    gone = withdrawn(v3, datetime(2025, 5, 1, 8, 0, tzinfo=PARIS))
    original = "mairie-70279@crieur,crieur-70279-n0tice0001-v1,2025-01-10T09:30:15+01:00"
    second = "mairie-70279@crieur,crieur-70279-n0tice0001-v2,2025-03-01T08:00:00+01:00"
    third = "mairie-70279@crieur,crieur-70279-n0tice0001-v3,2025-04-01T08:00:00+02:00"

    alert = render(v1)
    assert text(alert, "cap:msgType") == "Alert"
    assert text(alert, "cap:identifier") == "crieur-70279-n0tice0001-v1"
    assert text(alert, "cap:sent") == "2025-01-10T09:30:15+01:00"
    assert alert.find("cap:references", NS) is None

    update = render(v2)
    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:identifier") == "crieur-70279-n0tice0001-v2"
    assert text(update, "cap:sent") == "2025-03-01T08:00:00+01:00"
    assert text(update, "cap:references") == original

    second_update = render(v3)
    assert text(second_update, "cap:msgType") == "Update"
    assert text(second_update, "cap:identifier") == "crieur-70279-n0tice0001-v3"
    assert text(second_update, "cap:sent") == "2025-04-01T08:00:00+02:00"
    # Every earlier message is referenced, not only the Alert.
    assert text(second_update, "cap:references") == f"{original} {second}"

    cancel = render(gone)
    assert text(cancel, "cap:msgType") == "Cancel"
    assert text(cancel, "cap:identifier") == "crieur-70279-n0tice0001-v3-cancel"
    assert text(cancel, "cap:sent") == "2025-05-01T08:00:00+02:00"
    assert text(cancel, "cap:references") == f"{original} {second} {third}"

    identifiers = [text(r, "cap:identifier") for r in (alert, update, second_update, cancel)]
    assert len(set(identifiers)) == len(identifiers)


def test_cancel_of_an_uncorrected_notice() -> None:
    root = render(withdrawn(make_notice(), datetime(2025, 1, 11, 7, 0, tzinfo=PARIS)))
    assert text(root, "cap:msgType") == "Cancel"
    assert text(root, "cap:identifier") == "crieur-70279-n0tice0001-v1-cancel"
    assert text(root, "cap:references") == (
        "mairie-70279@crieur,crieur-70279-n0tice0001-v1,2025-01-10T09:30:15+01:00"
    )


def test_identifier_and_sender_have_no_space_or_comma() -> None:
    root = render(withdrawn(full_notice(), SUMMER), name="Saint-Loup, sur Semouse")
    for tag in ("identifier", "sender"):
        value = text(root, f"cap:{tag}")
        assert value and not re.search(r"[\s,<&]", value)
    references = text(root, "cap:references")
    assert references is not None and len(references.split()) == 2
    assert all(len(r.split(",")) == 3 for r in references.split())


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        (Category.INFORMATION, ("Other", "Expected", "Minor", "Observed")),
        (Category.EVENEMENT, ("Other", "Future", "Minor", "Likely")),
        (Category.TRAVAUX, ("Infra", "Expected", "Minor", "Observed")),
        (Category.ALERTE, ("Safety", "Immediate", "Severe", "Likely")),
    ],
)
def test_category_mapping(category: Category, expected: tuple[str, str, str, str]) -> None:
    assert CAP_MAPPING[category] == CapProfile(*expected)
    root = render(make_notice(category=category))
    info = [
        text(root, f"cap:info/cap:{tag}")
        for tag in ("category", "urgency", "severity", "certainty")
    ]
    assert tuple(info) == expected
    assert text(root, "cap:info/cap:event") == CATEGORY_LABELS[category]


def test_mapping_covers_every_category() -> None:
    assert set(CAP_MAPPING) == set(Category)


def test_times_use_paris_offsets_without_fractions() -> None:
    notice = make_notice(
        published_at=WINTER,
        created_at=WINTER,
        updated_at=WINTER,
        starts_at=SUMMER,
        ends_at=datetime(2025, 12, 24, 23, 59, 59, 500000, tzinfo=PARIS),
    )
    root = render(notice)
    assert text(root, "cap:sent") == "2025-01-10T09:30:15+01:00"
    assert text(root, "cap:info/cap:effective") == "2025-07-14T18:00:00+02:00"
    assert text(root, "cap:info/cap:expires") == "2025-12-24T23:59:59+01:00"
    for element in root.iter():
        if local(element) in {"sent", "effective", "onset", "expires"}:
            assert element.text is not None and CAP_TIME.match(element.text), element.text
    assert "Z<" not in notice_to_cap(notice, "Gray", PUBLIC_URL).decode()


def test_utc_input_is_shown_in_paris_time() -> None:
    moment = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)
    root = render(make_notice(published_at=moment, created_at=moment, updated_at=moment,
                              sent_versions=[SentVersion(version=1, sent_at=moment)]))
    assert text(root, "cap:sent") == "2025-07-01T12:00:00+02:00"


def test_hostile_title_round_trips() -> None:
    hostile = '<b>Fête & "bal"</b>'
    data = notice_to_cap(make_notice(title=hostile, body=f"{hostile} ]]> 'x'"), "Gray", PUBLIC_URL)
    assert b"<b>" not in data
    root = ET.fromstring(data)
    assert text(root, "cap:info/cap:headline") == hostile
    assert text(root, "cap:info/cap:description") == f"{hostile} ]]> 'x'"


def test_hostile_commune_name_round_trips() -> None:
    root = render(make_notice(), name="Bains & <Fontaines>")
    assert text(root, "cap:info/cap:senderName") == "Mairie de Bains & <Fontaines>"
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "Bains & <Fontaines> (70279)"


def test_control_characters_are_dropped() -> None:
    # Staff input refuses them at the door; a notice stored before that rule still renders.
    with pytest.raises(ValidationError, match="cannot be shown"):
        NoticeDraft(category=Category.TRAVAUX, title="Coupure", body="Coupure\x07 d'eau")
    root = render(make_notice(body="Coupure\x07 d'eau\x0b demain\r\nà 8h"))
    assert text(root, "cap:info/cap:description") == "Coupure d'eau demain\nà 8h"


@pytest.mark.parametrize("insee", ["70279", "2A004", "2B033"])
def test_geocode_is_insee(insee: str) -> None:
    root = render(make_notice(commune=insee), name="Ajaccio")
    geocode = root.find("cap:info/cap:area/cap:geocode", NS)
    assert geocode is not None
    assert [local(child) for child in geocode] == ["valueName", "value"]
    assert text(geocode, "cap:valueName") == "INSEE"
    assert text(geocode, "cap:value") == insee
    assert text(root, "cap:info/cap:area/cap:areaDesc") == f"Ajaccio ({insee})"
    assert text(root, "cap:sender") == f"mairie-{insee}@crieur"
    assert text(root, "cap:identifier") == f"crieur-{insee}-n0tice0001-v1"


def test_scheduled_notice_is_not_a_cap_message() -> None:
    scheduled = make_notice(
        state=NoticeState.SCHEDULED,
        published_at=None,
        publish_at=datetime(2025, 2, 1, 8, 0, tzinfo=PARIS),
    )
    with pytest.raises(ValueError, match="scheduled"):
        notice_to_cap(scheduled, "Gray", PUBLIC_URL)


def test_withdrawn_before_publication_is_not_a_cap_message() -> None:
    never_sent = make_notice(state=NoticeState.WITHDRAWN, published_at=None, withdrawn_at=SUMMER,
                             sent_versions=[])
    with pytest.raises(ValueError, match="never sent"):
        notice_to_cap(never_sent, "Gray", PUBLIC_URL)


def test_a_version_never_sent_is_refused() -> None:
    unsent = make_notice().model_copy(update={"version": 2, "state": NoticeState.CORRECTED})
    with pytest.raises(ValueError, match="version 1 is the last sent"):
        notice_to_cap(unsent, "Gray", PUBLIC_URL)


def test_a_notice_corrected_while_scheduled_is_first_sent_as_an_alert() -> None:
    # Scheduled at v1, corrected to v2 before its time, then sent: nobody saw v1.
    first_seen = make_notice(version=2, sent_versions=[SentVersion(version=2, sent_at=WINTER)])
    root = render(first_seen)
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:identifier") == "crieur-70279-n0tice0001-v2"
    assert root.find("cap:references", NS) is None
    update = render(corrected(first_seen, SUMMER))
    assert text(update, "cap:references") == (
        "mairie-70279@crieur,crieur-70279-n0tice0001-v2,2025-01-10T09:30:15+01:00")


def test_a_notice_stored_before_sent_versions_existed_still_renders() -> None:
    legacy = corrected(make_notice(sent_versions=[]), SUMMER).model_copy(
        update={"sent_versions": ()})
    root = render(legacy)
    assert text(root, "cap:msgType") == "Update"
    assert text(root, "cap:references") == (
        "mairie-70279@crieur,crieur-70279-n0tice0001-v1,2025-01-10T09:30:15+01:00")


@pytest.mark.parametrize(
    "notice",
    [
        make_notice(),
        make_notice(category=Category.ALERTE, commune="2A004"),
        full_notice(),
        withdrawn(full_notice(), SUMMER),
    ],
    ids=["alert", "corsica", "update", "cancel"],
)
def test_valid_against_cap12_schema(notice: Notice) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(notice_to_cap(notice, "Gray", PUBLIC_URL).decode())
