"""Every date a notice accepts is read back, shown and rendered everywhere, after a restart too;
anything else is a 422 at the door that names the field."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from schemas import parse_notice_event
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.conftest import read_subject
from tests.helpers import next_clock_changes
from tests.integration.notices.helpers import Clock, FrontDoor

pytestmark = pytest.mark.integration

GOOD = {"category": "information", "title": "Mairie fermée", "body": "Fermée lundi."}
# The next clock changes in Europe/Paris, so each DST case tests a date still to come.
SPRING, AUTUMN = next_clock_changes()
XSD = Path(__file__).resolve().parents[2] / "unit" / "notices" / "cap12_subset.xsd"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"starts_at": "1026-12-01T10:00"}, "starts_at", "year"),  # a typo for 2026
        ({"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at", "year"),  # overflowed: 500
        ({"ends_at": "9999-12-31T23:59:59-14:00"}, "ends_at", "year"),
        ({"publish_at": "2101-01-01T00:00"}, "publish_at", "year"),
        ({"starts_at": "1899-12-31T23:59:59Z"}, "starts_at", "year"),
        # Clock changes in Europe/Paris: 02:30 does not exist on the last Sunday of March ...
        ({"starts_at": f"{SPRING}T02:30"}, "starts_at", "does not exist"),
        # ... and happens twice on the last Sunday of October.
        ({"ends_at": f"{AUTUMN}T02:30"}, "ends_at", "happens twice"),
        ({"ends_at": "2020-01-01T10:00"}, "ends_at", "past"),
        ({"publish_at": "2030-06-02T10:00", "ends_at": "2030-06-01T10:00"}, "ends_at",
         "publish_at"),
    ],
)
async def test_a_date_that_cannot_be_kept_is_422_naming_the_field(
    front_door: FrontDoor, change: dict[str, str], field: str, words: str
) -> None:
    fd = front_door
    response = await fd.http.post(fd.notices_url(), json=GOOD | change, headers=fd.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert words in error["fields"][0]["message"]


async def test_a_correction_into_the_past_or_a_skipped_hour_is_422(front_door: FrontDoor) -> None:
    fd = front_door
    notice = (await fd.http.post(fd.notices_url(), json=GOOD, headers=fd.auth)).json()
    url = f"{fd.notices_url()}/{notice['id']}"
    for change, field in [({"ends_at": "2020-01-01T10:00"}, "ends_at"),
                          ({"starts_at": f"{SPRING}T02:15"}, "starts_at"),
                          ({"ends_at": "1026-12-01T10:00"}, "ends_at")]:
        response = await fd.http.patch(url, json=change, headers=fd.auth)
        assert response.status_code == 422, response.text
        assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    assert (await fd.http.get(url)).json()["version"] == 1


async def test_an_ambiguous_hour_with_its_offset_is_kept_as_given(front_door: FrontDoor) -> None:
    fd = front_door
    # The second 02:30 is an hour after the first: a window of one hour, not an empty one.
    window = {"starts_at": f"{AUTUMN}T02:30+02:00", "ends_at": f"{AUTUMN}T02:30+01:00"}
    response = await fd.http.post(fd.notices_url(), json=GOOD | window, headers=fd.auth)
    assert response.status_code == 201, response.text
    assert response.json()["starts_at"] == f"{AUTUMN}T02:30:00+02:00"
    assert response.json()["ends_at"] == f"{AUTUMN}T02:30:00+01:00"


EDGES = [
    # The first and last instants of the accepted range, and both sides of each clock change.
    {"starts_at": "2000-01-01T00:00", "ends_at": "2100-12-31T23:59:59"},
    {"starts_at": f"{SPRING}T01:59:59", "ends_at": f"{SPRING}T03:00"},
    {"starts_at": f"{AUTUMN}T01:59", "ends_at": f"{AUTUMN}T03:00"},
    {"starts_at": "2027-01-01T00:00:00.999999+14:00", "ends_at": "2099-12-31T23:00-12:00"},
]


@pytest.mark.parametrize("window", EDGES)
async def test_every_accepted_date_reads_back_and_renders_after_a_restart(
    front_door: FrontDoor, nats_url: str, window: dict[str, str]
) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    fd = front_door
    fd.clock.now = fd.clock.now.replace(year=1999)  # so that every window is still to come
    created = await fd.http.post(fd.notices_url(), json=GOOD | window, headers=fd.auth)
    assert created.status_code == 201, created.text
    notice = created.json()

    # The event on the stream honours its own contract (the sign reads it this way).
    (msg,) = await read_subject(fd.store.js, f"notices.{fd.insee}.{notice['id']}")
    assert parse_notice_event(msg.data).notice.starts_at is not None

    # A restarted front door reads it back and renders it in every format.
    settings = NoticesSettings(nats_url=nats_url, public_url="https://crieur.example")
    store = await NatsStore.connect(nats_url, name="test-dates-restarted")
    clock = Clock()
    clock.now = fd.clock.now
    app = create_app(settings, Context(store=store, settings=settings, clock=clock))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                url = f"{fd.notices_url()}/{notice['id']}"
                again = (await http.get(url)).json()
                for key in ("starts_at", "ends_at", "created_at"):
                    assert again[key] == notice[key]
                cap = await http.get(f"{url}/cap.xml")
                assert cap.status_code == 200, cap.text
                xmlschema.XMLSchema(XSD).validate(cap.text)
                clock.now = clock.now.replace(year=2050)
                feed = await http.get(f"/api/v1/communes/{fd.insee}/feed.atom")
                assert feed.status_code == 200
                ET.fromstring(feed.content)
                withdrawn = await http.post(f"{url}/withdraw", headers=fd.auth)
                assert withdrawn.status_code == 200, withdrawn.text
    finally:
        await store.close()


async def test_a_notice_ending_in_the_past_is_refused_but_one_ending_soon_is_kept(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    soon = (fd.clock.now + timedelta(minutes=5)).isoformat()
    response = await fd.http.post(fd.notices_url(), json=GOOD | {"ends_at": soon},
                                  headers=fd.auth)
    assert response.status_code == 201, response.text
