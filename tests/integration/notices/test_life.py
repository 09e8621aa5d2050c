"""A notice's life as readers see it: the first version anyone sees is an Alert, every state
has a valid CAP document or a 404, a withdrawal stays visible in the feed, and the feed's time
never goes backwards; scheduled notices that are corrected go out when they should."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_subject
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

CAP_NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
ATOM_NS = {"a": "http://www.w3.org/2005/Atom"}
XSD = Path(__file__).resolve().parents[2] / "unit" / "notices" / "cap12_subset.xsd"
DRAFT = {"category": "evenement", "title": "Loto de l’école", "body": "Salle des fêtes, 20 h."}


async def cap_of(fd: FrontDoor, notice_id: str) -> ET.Element | None:
    """The CAP document as served (None on 404), checked against the CAP 1.2 schema."""
    xmlschema = pytest.importorskip("xmlschema")
    response = await fd.http.get(f"{fd.notices_url()}/{notice_id}/cap.xml")
    assert response.status_code in (200, 404), response.text
    if response.status_code == 404:
        assert response.json()["error"]["code"] in ("notice_not_found", "notice_not_sent")
        return None
    xmlschema.XMLSchema(XSD).validate(response.text)
    return ET.fromstring(response.content)


async def post(fd: FrontDoor, **changes: object) -> tuple[dict[str, Any], str]:
    """A notice made from DRAFT (with `changes`) as staff post it, and its URL."""
    response = await fd.http.post(fd.notices_url(), json=DRAFT | changes, headers=fd.auth)
    assert response.status_code == 201, response.text
    notice: dict[str, Any] = response.json()
    return notice, f"{fd.notices_url()}/{notice['id']}"


def in_(fd: FrontDoor, delay: timedelta) -> str:
    """A publish_at or ends_at `delay` from the front door's clock."""
    return (fd.clock.now + delay).isoformat()


async def wait_published(fd: FrontDoor, notice_id: str) -> dict[str, object]:
    for _ in range(100):
        found = fd.store.get(fd.insee, notice_id)
        if found is not None:
            return found[1].model_dump(mode="json")
        await asyncio.sleep(0.1)
    raise AssertionError("the scheduled notice never went out")


async def test_a_notice_corrected_while_scheduled_is_first_seen_as_an_alert(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    notice, url = await post(fd, publish_at=in_(fd, timedelta(hours=1)))
    assert await cap_of(fd, notice["id"]) is None, "nothing was sent yet"
    fixed = await fd.http.patch(url, json={"title": "Loto de l’école (salle changée)"},
                                headers=fd.auth)
    assert fixed.json()["version"] == 2 and fixed.json()["state"] == "scheduled"

    fd.clock.now += timedelta(hours=2)
    await wait_published(fd, notice["id"])
    alert = await cap_of(fd, notice["id"])
    assert alert is not None
    assert alert.findtext("cap:msgType", namespaces=CAP_NS) == "Alert"
    assert alert.find("cap:references", CAP_NS) is None
    (event,) = await read_subject(fd.store.js, f"notices.{fd.insee}.{notice['id']}")
    assert event.headers is not None and event.headers["Nats-Msg-Id"].endswith(":2:published")

    await fd.http.patch(url, json={"body": "Salle polyvalente, 20 h."}, headers=fd.auth)
    await fd.http.patch(url, json={"body": "Salle polyvalente, 20 h 30."}, headers=fd.auth)
    update = await cap_of(fd, notice["id"])
    assert update is not None and update.findtext("cap:msgType", namespaces=CAP_NS) == "Update"
    references = (update.findtext("cap:references", namespaces=CAP_NS) or "").split()
    assert [r.split(",")[1].rsplit("-", 1)[1] for r in references] == ["v2", "v3"]

    await fd.http.post(f"{url}/withdraw", headers=fd.auth)
    cancel = await cap_of(fd, notice["id"])
    assert cancel is not None and cancel.findtext("cap:msgType", namespaces=CAP_NS) == "Cancel"
    references = (cancel.findtext("cap:references", namespaces=CAP_NS) or "").split()
    assert [r.split(",")[1].rsplit("-", 1)[1] for r in references] == ["v2", "v3", "v4"]


async def test_a_withdrawn_scheduled_notice_has_no_cap_document_but_a_404(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    _, url = await post(fd, publish_at=in_(fd, timedelta(hours=1)))
    assert (await fd.http.post(f"{url}/withdraw", headers=fd.auth)).status_code == 200
    response = await fd.http.get(f"{url}/cap.xml")
    assert response.status_code == 404, response.text  # was a 500
    assert response.json()["error"]["code"] == "notice_not_sent"


@pytest.mark.parametrize("held", ["scheduled", "pending_approval"])
async def test_a_notice_withdrawn_before_it_went_out_is_a_404_to_anyone(
    front_door: FrontDoor, held: str,
) -> None:
    fd = front_door
    if held == "pending_approval":
        await fd.store.commune_registry.require_approval(fd.insee, ("evenement",))
        notice, url = await post_held(fd)
    else:
        notice, url = await post_held(fd, publish_at=in_(fd, timedelta(hours=1)))
    assert notice["state"] == held
    assert (await fd.http.post(f"{url}/withdraw", headers=fd.auth)).status_code == 200
    assert fd.store.get(fd.insee, notice["id"]) is not None  # its withdrawal is on the stream
    response = await fd.http.get(url)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "notice_not_found"
    assert (await fd.http.get(f"/communes/{fd.insee}/notices/{notice['id']}")).status_code == 404
    # Staff still read back what they withdrew.
    staff = await fd.http.get(url, headers=fd.auth)
    assert (staff.status_code, staff.json()["state"]) == (200, "withdrawn")


async def post_held(fd: FrontDoor, **changes: object) -> tuple[dict[str, Any], str]:
    """A notice held back (scheduled, or waiting for approval): 201 or 202."""
    response = await fd.http.post(fd.notices_url(), json=DRAFT | changes, headers=fd.auth)
    assert response.status_code in (201, 202), response.text
    notice: dict[str, Any] = response.json()
    return notice, f"{fd.notices_url()}/{notice['id']}"


async def test_every_state_has_a_valid_cap_document_or_a_404(front_door: FrontDoor) -> None:
    fd = front_door
    notice, url = await post(fd, ends_at=in_(fd, timedelta(days=1)))
    assert await cap_of(fd, notice["id"]) is not None  # published
    await fd.http.patch(url, json={"title": "Loto"}, headers=fd.auth)
    assert await cap_of(fd, notice["id"]) is not None  # corrected
    fd.clock.now += timedelta(days=2)
    assert (await fd.http.get(url)).json()["state"] == "expired"
    assert await cap_of(fd, notice["id"]) is not None  # expired
    await fd.http.post(f"{url}/withdraw", headers=fd.auth)
    assert await cap_of(fd, notice["id"]) is not None  # withdrawn


async def test_patching_publish_at_to_null_sends_a_scheduled_notice_now(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    notice, url = await post(fd, publish_at=in_(fd, timedelta(days=3)))
    now = await fd.http.patch(url, json={"publish_at": None}, headers=fd.auth)
    assert now.status_code == 200, now.text
    assert now.json()["state"] == "published" and now.json()["publish_at"] is None
    assert [n["id"] for n in (await fd.http.get(fd.notices_url())).json()["notices"]] == [
        notice["id"]]
    assert await fd.store.scheduled(notice["id"]) is None
    (event,) = await read_subject(fd.store.js, f"notices.{fd.insee}.{notice['id']}")
    assert event.headers is not None and event.headers["Nats-Msg-Id"].endswith(":published")


async def test_an_empty_or_unchanged_patch_makes_no_new_version(front_door: FrontDoor) -> None:
    fd = front_door
    notice, url = await post(fd)
    for patch in ({}, {"title": DRAFT["title"]}, {"links": []}):
        response = await fd.http.patch(url, json=patch, headers=fd.auth)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
    events = await read_subject(fd.store.js, f"notices.{fd.insee}.{notice['id']}")
    assert len(events) == 1


async def test_a_withdrawn_notice_stays_in_the_feed_marked_and_the_feed_time_moves_forward(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    feed_url = f"/api/v1/communes/{fd.insee}/feed.atom"

    async def feed() -> ET.Element:
        response = await fd.http.get(feed_url)
        assert response.status_code == 200
        return ET.fromstring(response.content)

    short, _ = await post(fd, ends_at=in_(fd, timedelta(hours=1)))
    fd.clock.now += timedelta(minutes=1)
    _, gone = await post(fd, title="Concert annulé")
    fd.clock.now += timedelta(minutes=1)
    await fd.http.post(f"{gone}/withdraw", headers=fd.auth)

    times = []
    root = await feed()
    times.append(root.findtext("a:updated", namespaces=ATOM_NS))
    titles = [e.findtext("a:title", namespaces=ATOM_NS) for e in root.findall("a:entry", ATOM_NS)]
    assert "Retiré : Concert annulé" in titles, "a withdrawal is shown as such, not dropped"

    fd.clock.now += timedelta(hours=2)  # the short notice expires: its entry leaves the feed
    root = await feed()
    times.append(root.findtext("a:updated", namespaces=ATOM_NS))
    assert short["id"] not in ET.tostring(root).decode()

    fd.clock.now += timedelta(days=8)  # the withdrawal has been shown long enough
    root = await feed()
    times.append(root.findtext("a:updated", namespaces=ATOM_NS))
    assert root.findall("a:entry", ATOM_NS) == []
    assert times == sorted(times) and len(set(times)) == 3, times
