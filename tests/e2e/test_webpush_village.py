"""Web Push in the village `make run` starts: the stand-in's demo browser subscribed through
the front door gets an alert encrypted and signed by the service, and the commune page, in
a real headless Chromium, registers its service worker, links a valid web app manifest and
shows that payload as a French notification that a correction replaces and a withdrawal
closes.

What Chromium cannot do here: subscribe for real (its push service, FCM, is not reachable
offline), and click a notification (no browser API fires a trusted `notificationclick`).
The push events are real ones (CDP ServiceWorker.deliverPushMessage) carrying the payload
the stand-in decrypted; the click is checked as far as the notification's link, which must
be the notice's page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crieur.nats_server import free_port
from tests.e2e.helpers import (
    CHROMIUM_ARGS,
    Village,
    eventually,
    notices_url,
    publish,
    start_village,
    withdraw,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def webpush_village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Village, str]]:
    standin_port = free_port()
    village = start_village(tmp_path_factory.mktemp("webpush-village"), {
        "CRIEUR_WEBPUSH_STANDIN_PORT": str(standin_port),
        "CRIEUR_WEBPUSH_HTTP_PORT": str(free_port())})
    yield village, f"http://127.0.0.1:{standin_port}"
    village.stop()


def received(standin: str) -> list[dict[str, Any]]:
    try:
        answer: list[dict[str, Any]] = httpx.get(standin + "/_standin/received", timeout=10).json()
    except httpx.HTTPError:
        return []
    return answer


def payloads(standin: str, notice_id: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in received(standin) if r["payload"]["notice_id"] == notice_id]


def test_a_demo_browser_gets_alerts_and_the_page_shows_them(
        webpush_village: tuple[Village, str], chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    village, standin = webpush_village
    notice_id = publish(village, "Crue : évacuez les quais", category="alerte")
    # The demo browser subscribed itself through the front door at start-up.
    shown = eventually(lambda: payloads(standin, notice_id), "the alert at the stand-in")[0]
    record = next(r for r in received(standin) if r["payload"]["notice_id"] == notice_id)
    assert record["urgency"] == "high" and record["topic"] == notice_id
    assert shown["title"].endswith(" · Alerte") and shown["body"] == "Crue : évacuez les quais"
    corrected = httpx.patch(f"{notices_url(village)}/{notice_id}", headers=village.auth,
                            json={"title": "Crue : quais fermés"}, timeout=30)
    assert corrected.status_code == 200, corrected.text
    fixed = eventually(lambda: [p for p in payloads(standin, notice_id)
                                if p["kind"] == "corrected"], "the correction")[0]
    withdraw(village, notice_id)
    removal = eventually(lambda: [p for p in payloads(standin, notice_id)
                                  if p["action"] == "remove"], "the withdrawal")[0]
    # The demo phone page shows the browser's notifications beside FCM and SMS.
    if village.phone:
        phones = eventually(lambda: [p for p in httpx.get(village.phone + "/messages",
                                                          timeout=10).json()["messages"]
                                     if p.get("kind") == "webpush"
                                     and p.get("notice_id") == notice_id], "the phone page")
        assert {p["what"] for p in phones} >= {"reçu", "rectifié"}

    page_url = f"{village.api}/communes/70299"
    # A profile of its own: an incognito context (Playwright's default) cannot install apps.
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=CHROMIUM_ARGS)
        context.grant_permissions(["notifications"], origin=village.api)
        page = context.new_page()
        page.goto(page_url)
        # The script registered the worker and showed the offer.
        page.wait_for_selector("#webpush:not([hidden])")
        assert page.get_by_role("heading", name="Recevoir les alertes sur cet appareil")
        scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
        assert scope == f"{village.api}/communes/"
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [], manifest["errors"]
        assert json.loads(manifest["data"])["start_url"] == "/communes/70299"
        installable = cdp.send("Page.getInstallabilityErrors")
        assert installable["installabilityErrors"] == [], installable

        registrations: list[str] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(
            r["registrationId"] for r in e["registrations"] if not r["isDeleted"]))
        cdp.send("ServiceWorker.enable")
        eventually(lambda: registrations or page.wait_for_timeout(100), "the registration")
        worker = context.service_workers[0] if context.service_workers else \
            context.wait_for_event("serviceworker")

        def push(payload: dict[str, Any]) -> None:
            cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": village.api, "registrationId": registrations[0],
                "data": json.dumps(payload)})

        def notifications() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = worker.evaluate(
                "self.registration.getNotifications().then(ns => ns.map(n => ({title: n.title,"
                " body: n.body, tag: n.tag, lang: n.lang, url: n.data.url})))")
            return found

        push(shown)
        first = eventually(notifications, "the notification")
        assert first == [{"title": shown["title"], "body": "Crue : évacuez les quais",
                          "tag": notice_id, "lang": "fr", "url": shown["url"]}]
        push(fixed)
        eventually(lambda: [n for n in notifications()
                            if n["body"] == "Rectificatif : Crue : quais fermés"],
                   "the correction")
        assert len(notifications()) == 1  # replaced, not added
        # A click opens this link: the notice's page, which answers.
        assert shown["url"].endswith(f"/communes/70299/notices/{notice_id}")
        notice_page = httpx.get(f"{village.api}/communes/70299/notices/{notice_id}", timeout=10)
        assert notice_page.status_code == 200
        push(removal)
        eventually(lambda: notifications() == [], "the notification closed")
        context.close()
