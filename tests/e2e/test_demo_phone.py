"""The demo phone page of `make run`: a notice published in the village reaches the demo phones."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from crieur.nats_server import free_port
from crieur_dev.standins.fcm import FcmStandin, write_service_account
from tests.e2e.helpers import (
    Village,
    chromium_browser,
    eventually,
    launcher_events,
    notices_url,
    publish,
    start_village,
    withdraw,
)


def phone_names(village: Village) -> set[str]:
    try:
        reply = httpx.get(village.phone + "/messages", timeout=5)
    except httpx.HTTPError:
        return set()
    return {p["name"] for p in reply.json()["phones"]} if reply.status_code == 200 else set()


@pytest.mark.e2e
def test_devices_are_registered_through_the_front_door(village: Village) -> None:
    # The demo phones registered themselves the way the app does.
    eventually(lambda: {"Téléphone de Camille", "Téléphone de Lucas",
                        "Téléphone de Mme Perrin"} <= phone_names(village),
               "the demo phones registered")
    bad = httpx.post(village.api + "/api/v1/devices", timeout=30,
                     json={"token": "x", "follows": [{"commune": "70299"}]})
    assert bad.status_code == 422
    assert [f["field"] for f in bad.json()["error"]["fields"]] == ["token"]
    token = "e2e-phone:APA91b" + "x" * 60
    created = httpx.post(village.api + "/api/v1/devices", timeout=30, json={
        "token": token, "platform": "web",
        "follows": [{"commune": "70299", "categories": ["evenement"]}]})
    assert created.status_code == 201, created.text
    assert created.json()["topics"] == ["crieur-70299-evenement"]
    assert httpx.delete(f"{village.api}/api/v1/devices/{token}", timeout=30).status_code == 204


@pytest.mark.e2e
@pytest.mark.browser
def test_the_demo_phone_shows_a_published_notice_arrive_change_and_go(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with chromium_browser(chromium) as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(village.phone + "/")
        assert page.locator("html").get_attribute("lang") == "fr"
        lucas = page.get_by_role("region", name="Téléphone de Lucas")
        camille = page.get_by_role("region", name="Téléphone de Camille")
        expect(lucas).to_be_visible(timeout=30_000)
        expect(camille).to_be_visible(timeout=30_000)

        alert = publish(village, "Tempête : restez chez vous", "alerte")
        card = lucas.locator(f'[data-notice-id="{alert}"]')
        expect(card).to_be_visible(timeout=30_000)
        expect(card).to_contain_text("Lavoncourt · Alerte")
        expect(card).to_contain_text("Tempête : restez chez vous")
        expect(camille.locator(f'[data-notice-id="{alert}"]')).to_be_visible()

        # Works: Camille follows them, Lucas only follows alerts.
        works = publish(village, "Route de Gray fermée jeudi", "travaux")
        expect(camille.locator(f'[data-notice-id="{works}"]')).to_contain_text(
            "Route de Gray fermée jeudi", timeout=30_000)
        expect(lucas.locator(f'[data-notice-id="{works}"]')).to_have_count(0)

        # A correction replaces the notification; a withdrawal takes it away.
        reply = httpx.patch(f"{notices_url(village)}/{works}", headers=village.auth,
                            timeout=30, json={"title": "Route de Gray fermée vendredi"})
        assert reply.status_code == 200, reply.text
        corrected = camille.locator(f'[data-notice-id="{works}"]')
        expect(corrected).to_contain_text("Rectificatif : Route de Gray fermée vendredi",
                                          timeout=30_000)
        expect(corrected).to_have_count(1)
        page.screenshot(path=str(tmp_path / "phones.png"))
        withdraw(village, works)
        expect(camille.locator(f'[data-notice-id="{works}"]')).to_have_count(0,
                                                                            timeout=30_000)
        expect(camille.locator(f'[data-notice-id="{alert}"]')).to_be_visible()


@pytest.mark.e2e
def test_with_fcm_credentials_make_run_starts_no_stand_in_and_uses_that_fcm(
        tmp_path: Path) -> None:
    # "Google", as far as this village knows: a stand-in it did not start itself.
    google = FcmStandin(tmp_path / "google")
    google.start(free_port())
    credentials = write_service_account(tmp_path / "mairie-app.json", f"{google.url}/token",
                                        "mairie-app")
    village = start_village(tmp_path / "village", {"CRIEUR_FCM_CREDENTIALS": str(credentials),
                                                   "CRIEUR_FCM_URL": google.url})
    try:
        started = {e["service"] for e in launcher_events(village, "service_started")}
        assert "push" in started and "fcm-standin" not in started
        assert "Firebase Cloud Messaging (CRIEUR_FCM_CREDENTIALS)" in village.output.read_text()
        assert not (village.data_dir / "standins" / "fcm-service-account.json").exists()
        token = "e2e-real:APA91b" + "y" * 60
        created = httpx.post(village.api + "/api/v1/devices", timeout=30, json={
            "token": token, "follows": [{"commune": "70299", "categories": ["alerte"]}]})
        assert created.status_code == 201, created.text
        alert = publish(village, "Crue de la Saône", "alerte")
        eventually(lambda: any(m["data"]["notice_id"] == alert for m in google.sent()),
                   "the alert at the configured FCM")
        assert google.topics_of(token) == {"crieur-70299-alerte"}
        # No demo phones registered with a real FCM.
        assert all("demo-" not in r["path"] for r in list(google.received))
    finally:
        village.stop()
        google.stop()
