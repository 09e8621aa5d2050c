"""Official alerts in: a MeteoAlarm-format feed, served over real HTTP, becomes proposals."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from crieur.nats_server import free_port
from crieur_dev.standins.capfeed import Feed, create_app
from schemas import subjects
from schemas.streams import DEADLETTERS_STREAM
from services.notices.capfeed import Reader, draft_id
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

LAVONCOURT = "70299"


@dataclass
class Source:
    base: str
    feed: Feed


@pytest.fixture
async def source() -> AsyncIterator[Source]:
    """The MeteoAlarm stand-in, on a free port; it moves on only when told (POST /next)."""
    port = free_port()
    feed = Feed(step_s=0)
    server = uvicorn.Server(uvicorn.Config(create_app(feed), host="127.0.0.1", port=port,
                                           log_config=None))
    serving = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield Source(f"http://127.0.0.1:{port}", feed)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def staff_list(door: FrontDoor, token: str) -> list[dict[str, object]]:
    answer = await door.http.get(f"/api/v1/communes/{LAVONCOURT}/staff/notices",
                                 headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["notices"]
    return items


def from_feed(items: list[dict[str, object]], started: str) -> list[dict[str, object]]:
    """This run's alerts only (another test of the session may have registered 70299)."""
    return [i for i in items if started in str(i["notice"].get("cap_identifier", ""))]  # type: ignore[union-attr]


async def test_an_orange_alert_is_proposed_published_corrected_and_withdrawn(
        front_door: FrontDoor, source: Source) -> None:
    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    await door.store.commune_registry.add("25056", "Besançon")  # Doubs: not in the alert's area
    _, token = await door.store.staff_registry.add("Mairie de Lavoncourt", (LAVONCOURT, "25056"))
    auth = {"Authorization": f"Bearer {token}"}
    started = source.feed.identifier("")
    async with httpx.AsyncClient() as http:
        reader = Reader(door.store, (f"{source.base}/feed.atom",), door.clock, http=http)
        await reader.poll_once()

        items = from_feed(await staff_list(door, token), started)
        proposed = {i["notice"]["cap_identifier"].rsplit(".", 1)[1]: i["notice"]  # type: ignore[index]
                    for i in items}
        assert set(proposed) == {"jaune-orages", "orange-vent"}
        orange = proposed["orange-vent"]
        assert orange["state"] == "proposed"
        assert orange["category"] == "alerte"
        assert proposed["jaune-orages"]["category"] == "information"
        assert orange["title"] == "Vigilance orange vent violent : Haute-Saône"
        assert "Limitez vos déplacements" in orange["body"]
        assert orange["ends_at"] is not None
        assert any("/cap/orange-vent.xml" in link["url"] for link in orange["links"])
        # Not in Doubs; and nothing reached the public before a member of staff.
        besancon = (await door.http.get("/api/v1/communes/25056/staff/notices",
                                        headers=auth)).json()["notices"]
        assert from_feed(besancon, started) == []
        public = (await door.http.get(f"/api/v1/communes/{LAVONCOURT}/notices")).json()
        assert orange["id"] not in {n["id"] for n in public["notices"]}

        # Read again (304, then a full read with the validators forgotten): never twice.
        await reader.poll_once()
        reader.validators.clear()
        await reader.poll_once()
        assert len(from_feed(await staff_list(door, token), started)) == 2

        # One click publishes it, to every channel (the NOTICES stream).
        published = await door.http.post(
            f"/api/v1/communes/{LAVONCOURT}/notices/{orange['id']}/publish", headers=auth)
        assert published.status_code == 200, published.text
        assert published.json()["state"] == "published"
        on_stream = door.store.get(LAVONCOURT, str(orange["id"]))
        assert on_stream is not None and on_stream[1].author == "Mairie de Lavoncourt"

        # The source's Update: a correction proposed, applied with one click.
        assert (await http.post(f"{source.base}/next")).json() == {"step": 1}
        await reader.poll_once()
        mine = next(i for i in from_feed(await staff_list(door, token), started)
                    if i["notice"]["id"] == orange["id"])  # type: ignore[index]
        assert mine["proposal"]["kind"] == "correct"  # type: ignore[index]
        corrected = await door.http.post(
            f"/api/v1/communes/{LAVONCOURT}/notices/{orange['id']}/publish", headers=auth)
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["state"] == "corrected"
        assert corrected.json()["title"] == "Vigilance orange vent violent prolongée : Haute-Saône"

        # The source's Cancel: a withdrawal proposed, applied with one click.
        await http.post(f"{source.base}/next")
        await reader.poll_once()
        mine = next(i for i in from_feed(await staff_list(door, token), started)
                    if i["notice"]["id"] == orange["id"])  # type: ignore[index]
        assert mine["proposal"]["kind"] == "withdraw"  # type: ignore[index]
        withdrawn = await door.http.post(
            f"/api/v1/communes/{LAVONCOURT}/notices/{orange['id']}/publish", headers=auth)
        assert withdrawn.json()["state"] == "withdrawn"
        again = await door.http.post(
            f"/api/v1/communes/{LAVONCOURT}/notices/{orange['id']}/publish", headers=auth)
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_proposed"


async def test_a_cancel_before_publication_drops_the_draft(
        front_door: FrontDoor, source: Source) -> None:
    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    _, token = await door.store.staff_registry.add("Mairie", (LAVONCOURT,))
    started = source.feed.identifier("")
    async with httpx.AsyncClient() as http:
        reader = Reader(door.store, (f"{source.base}/feed.atom",), door.clock, http=http)
        await reader.poll_once()
        await http.post(f"{source.base}/next")
        await reader.poll_once()
        titles = {i["notice"]["title"] for i in from_feed(await staff_list(door, token), started)}  # type: ignore[index]
        # The Update replaced the draft itself: still one proposal, with the new text.
        assert "Vigilance orange vent violent prolongée : Haute-Saône" in titles
        assert "Vigilance orange vent violent : Haute-Saône" not in titles
        await http.post(f"{source.base}/next")
        await reader.poll_once()
        names = {i["notice"]["cap_identifier"] for i in from_feed(await staff_list(door, token),  # type: ignore[index]
                                                                  started)}
        assert all("jaune-orages" in str(n) for n in names) and names


async def test_a_malformed_document_is_set_aside_and_the_reader_goes_on(
        front_door: FrontDoor, source: Source) -> None:
    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    _, token = await door.store.staff_registry.add("Mairie", (LAVONCOURT,))
    broken = "http://127.0.0.1:1/unreachable.xml"
    async with httpx.AsyncClient() as http:
        app_port = free_port()
        bad = uvicorn.Server(uvicorn.Config(_bad_app(), host="127.0.0.1", port=app_port,
                                            log_config=None))
        serving = asyncio.create_task(bad.serve())
        for _ in range(100):
            if bad.started:
                break
            await asyncio.sleep(0.05)
        try:
            reader = Reader(door.store, (broken, f"http://127.0.0.1:{app_port}/bad.xml",
                                         f"{source.base}/feed.atom"), door.clock, http=http)
            await reader.poll_once()
        finally:
            bad.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    letter = await door.store.js.get_last_msg(DEADLETTERS_STREAM,
                                              subjects.dead_letter("notices"))
    body = json.loads(letter.data or b"{}")
    assert "not well-formed XML" in body["reason"] and "/bad.xml" in body["reason"]
    assert base64.b64decode(body["payload_b64"]).startswith(b"<alert")
    # The feed after it was still read.
    started = source.feed.identifier("")
    assert len(from_feed(await staff_list(door, token), started)) == 2


def _bad_app() -> object:
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.get("/bad.xml")
    async def bad() -> Response:
        return Response(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>",
                        media_type="application/cap+xml")

    return app


async def test_unsigned_alerts_are_set_aside_when_signatures_are_required(
        front_door: FrontDoor, source: Source) -> None:
    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    _, token = await door.store.staff_registry.add("Mairie", (LAVONCOURT,))
    async with httpx.AsyncClient() as http:
        reader = Reader(door.store, (f"{source.base}/feed.atom",), door.clock,
                        require_signature=True, http=http)
        await reader.poll_once()
    letter = await door.store.js.get_last_msg(DEADLETTERS_STREAM,
                                              subjects.dead_letter("notices"))
    assert "unsigned" in json.loads(letter.data or b"{}")["reason"]
    started = source.feed.identifier("")
    assert from_feed(await staff_list(door, token), started) == []


async def test_the_communes_approval_rule_holds_a_published_proposal(
        front_door: FrontDoor, source: Source) -> None:
    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    await door.store.commune_registry.require_approval(LAVONCOURT, ("alerte",))
    _, token = await door.store.staff_registry.add("Mairie", (LAVONCOURT,))
    started = source.feed.identifier("")
    try:
        async with httpx.AsyncClient() as http:
            reader = Reader(door.store, (f"{source.base}/feed.atom",), door.clock, http=http)
            await reader.poll_once()
        orange = next(i["notice"] for i in from_feed(await staff_list(door, token), started)
                      if i["notice"]["category"] == "alerte")  # type: ignore[index]
        held = await door.http.post(
            f"/api/v1/communes/{LAVONCOURT}/notices/{orange['id']}/publish",  # type: ignore[index]
            headers={"Authorization": f"Bearer {token}"})
        assert held.status_code == 202 and held.json()["state"] == "pending_approval"
        assert door.store.get(LAVONCOURT, str(orange["id"])) is None  # type: ignore[index]
    finally:
        await door.store.commune_registry.require_approval(LAVONCOURT, ())


async def test_the_front_door_reads_the_feeds_it_is_given(nats_url: str, source: Source) -> None:
    """CRIEUR_CAP_FEEDS and CRIEUR_CAP_POLL_S, as `make run` sets them for the stand-in."""
    from services.notices.api import Context
    from services.notices.app import create_app
    from services.notices.settings import NoticesSettings
    from services.notices.store import NatsStore
    from tests.integration.notices.helpers import Clock

    settings = NoticesSettings(nats_url=nats_url, cap_feeds=f" {source.base}/feed.atom ,",
                               cap_poll_s=0.2)
    assert settings.cap_feed_urls == (f"{source.base}/feed.atom",)
    store = await NatsStore.connect(nats_url, name="test-capfeed")
    await store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    _, token = await store.staff_registry.add("Mairie", (LAVONCOURT,))
    app = create_app(settings, Context(store=store, settings=settings, clock=Clock()))
    started = source.feed.identifier("")
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                door = FrontDoor(http, store, Clock(), LAVONCOURT, token, app)
                for _ in range(100):
                    if len(from_feed(await staff_list(door, token), started)) == 2:
                        break
                    await asyncio.sleep(0.1)
                items = from_feed(await staff_list(door, token), started)
                assert {i["notice"]["state"] for i in items} == {"proposed"}  # type: ignore[index]
                assert len(items) == 2
    finally:
        await store.close()


async def test_staff_pages_show_the_proposal_first_and_publish_it_in_one_click(
        front_door: FrontDoor, source: Source) -> None:
    from tests.integration.staff.helpers import page_csrf, shown, sign_in

    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    name = f"Secrétariat {door.insee}"
    await door.store.staff_registry.set_password(name, "un mot de passe solide", (LAVONCOURT,))
    async with httpx.AsyncClient() as http:
        await Reader(door.store, (f"{source.base}/feed.atom",), door.clock,
                     http=http).poll_once()
    orange = draft_id(source.feed.identifier("orange-vent"), LAVONCOURT)
    transport = httpx.ASGITransport(app=door.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as browser:
        assert (await sign_in(browser, name, "un mot de passe solide")).status_code == 303
        listing = await browser.get(f"/staff/communes/{LAVONCOURT}")
        assert listing.status_code == 200
        assert "Alerte officielle proposée" in shown(listing)
        # At the top of the list, whatever else the commune has.
        first_state = listing.text.split('<span class="state ', 1)[1].split('"', 1)[0]
        assert first_state == "proposed"
        page = f"/staff/communes/{LAVONCOURT}/notices/{orange}"
        csrf = await page_csrf(browser, page)
        assert "Publier l'alerte" in shown(await browser.get(page))
        done = await browser.post(f"{page}/publish", data={"csrf": csrf})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=proposal-published")
        after = shown(await browser.get(done.headers["location"]))
        assert "L'alerte officielle est publiée" in after
    found = door.store.get(LAVONCOURT, orange)
    assert found is not None and found[1].state.value == "published"
    assert found[1].author == name


async def test_staff_pages_apply_the_sources_correction_and_withdrawal_in_one_click(
        front_door: FrontDoor, source: Source) -> None:
    from tests.integration.staff.helpers import page_csrf, shown, sign_in

    door = front_door
    await door.store.commune_registry.add(LAVONCOURT, "Lavoncourt")
    name = f"Secrétariat {door.insee}"
    await door.store.staff_registry.set_password(name, "un mot de passe solide", (LAVONCOURT,))
    orange = draft_id(source.feed.identifier("orange-vent"), LAVONCOURT)
    page = f"/staff/communes/{LAVONCOURT}/notices/{orange}"
    transport = httpx.ASGITransport(app=door.app)
    async with httpx.AsyncClient() as http, httpx.AsyncClient(
            transport=transport, base_url="https://test") as browser:
        reader = Reader(door.store, (f"{source.base}/feed.atom",), door.clock, http=http)
        await reader.poll_once()
        assert (await sign_in(browser, name, "un mot de passe solide")).status_code == 303
        csrf = await page_csrf(browser, page)
        assert (await browser.post(f"{page}/publish", data={"csrf": csrf})).status_code == 303
        # A notice of the commune's own, newer: the proposal still comes first.
        mine = await door.http.post(f"/api/v1/communes/{LAVONCOURT}/notices", headers={
            "Authorization": f"Bearer {(await door.store.staff_registry.add('Mairie', (LAVONCOURT,)))[1]}"},
            json={"category": "information", "title": "Marché", "body": "Samedi matin."})
        assert mine.status_code == 201, mine.text

        await http.post(f"{source.base}/next")  # the source's Update
        await reader.poll_once()
        listing = await browser.get(f"/staff/communes/{LAVONCOURT}")
        first = listing.text.split('<li class="notice', 1)[1].split("</li>", 1)[0]
        assert f'data-notice-id="{orange}"' in first
        assert "Alerte officielle proposée : correction" in shown(listing)
        shown_page = shown(await browser.get(page))
        assert "Vigilance orange vent violent prolongée" in shown_page
        # Proposed, not applied: the channels still have the first text.
        found = door.store.get(LAVONCOURT, orange)
        assert found is not None and found[1].title == "Vigilance orange vent violent : Haute-Saône"
        assert "Appliquer la correction proposée" in shown_page
        done = await browser.post(f"{page}/publish", data={"csrf": csrf})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=proposal-corrected")
        assert "La correction proposée par la source officielle est enregistrée" in shown(
            await browser.get(done.headers["location"]))
        found = door.store.get(LAVONCOURT, orange)
        assert found is not None and found[1].state.value == "corrected"
        assert found[1].title == "Vigilance orange vent violent prolongée : Haute-Saône"
        assert "Alerte officielle proposée : correction" not in shown(
            await browser.get(f"/staff/communes/{LAVONCOURT}"))

        await http.post(f"{source.base}/next")  # the source's Cancel
        await reader.poll_once()
        assert "Alerte officielle proposée : retrait" in shown(
            await browser.get(f"/staff/communes/{LAVONCOURT}"))
        found = door.store.get(LAVONCOURT, orange)
        assert found is not None and found[1].state.value == "corrected"
        assert "Retirer l'avis comme proposé" in shown(await browser.get(page))
        done = await browser.post(f"{page}/publish", data={"csrf": csrf})
        assert done.headers["location"].endswith("?ok=proposal-withdrawn")
        found = door.store.get(LAVONCOURT, orange)
        assert found is not None and found[1].state.value == "withdrawn"
        # Applied once: a second click is told, in French, that nothing is proposed.
        again = await browser.post(f"{page}/publish", data={"csrf": csrf})
        assert again.status_code == 409
        assert "ne propose plus rien" in shown(again)
