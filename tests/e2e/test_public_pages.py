"""A resident's pages in a real headless Chromium, JavaScript off, checked by axe-core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from crieur.village import SERVICES
from tests.e2e.helpers import Village, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# An old, small phone: what many residents of a village hold.
PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 2}


def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page (axe ships in the wheel)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def publish(village: Village, **fields: Any) -> dict[str, Any]:
    draft = {"category": "information", "title": "Avis", "body": "Texte."} | fields
    reply = httpx.post(f"{village.api}/api/v1/communes/70299/notices", json=draft,
                       headers=village.auth, timeout=30)
    assert reply.status_code == 201, reply.text
    notice: dict[str, Any] = reply.json()
    return notice


def test_a_resident_reads_a_notice_sees_it_withdrawn_and_every_page_passes_axe(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    alert = publish(village, category="alerte", title="Tempête : restez chez vous",
                    body="Vents à 120 km/h attendus cette nuit.\nRentrez les volets et le linge.",
                    links=[{"url": "https://meteofrance.com/", "label": "Météo-France"}])
    fete = publish(village, category="evenement", title="Fête du village samedi",
                   body="Bal sur la place de la mairie à 21 h. Buvette tenue par le comité.")
    commune_url = f"{village.api}/communes/70299"
    shots: list[Path] = []

    with chromium_browser(chromium) as browser:
        # The story with JavaScript off, as on a phone that runs none.
        resident = browser.new_context(java_script_enabled=False, **PHONE).new_page()
        # axe needs JavaScript: the same pages, checked in a context that runs it.
        checker = browser.new_context(**PHONE).new_page()

        def check(url: str, name: str, status: int = 200) -> None:
            reply = checker.goto(url)
            assert reply is not None and reply.status == status, url
            assert checker.locator("html").get_attribute("lang") == "fr"
            assert axe_problems(checker) == [], name
            shot = tmp_path / f"{name}.png"
            checker.screenshot(path=str(shot), full_page=True)
            shots.append(shot)

        resident.goto(commune_url)
        assert resident.locator("html").get_attribute("lang") == "fr"
        cards = resident.locator("#avis > li")
        expect(cards.first).to_contain_text("Tempête : restez chez vous")
        expect(cards.first).to_contain_text("Alerte")
        expect(resident.locator(f'li[data-notice-id="{fete["id"]}"]')).to_be_visible()
        check(commune_url, "commune")

        resident.get_by_role("link", name="Tempête : restez chez vous").click()
        notice_url = f"{commune_url}/notices/{alert['id']}"
        assert resident.url == notice_url
        expect(resident.get_by_role("heading", level=1)).to_have_text(
            "Tempête : restez chez vous")
        expect(resident.locator("main")).to_contain_text("Rentrez les volets et le linge.")
        expect(resident.get_by_role("link", name="Météo-France")).to_be_visible()
        expect(resident.locator("#etat")).to_have_count(0)
        check(notice_url, "avis")

        reply = httpx.post(f"{village.api}/api/v1/communes/70299/notices/{alert['id']}"
                           "/withdraw", headers=village.auth, timeout=30)
        assert reply.status_code == 200, reply.text
        resident.reload()
        expect(resident.locator("#etat")).to_contain_text(
            "Cet avis a été retiré par la mairie le")
        check(notice_url, "avis-retire")
        resident.goto(commune_url)
        expect(resident.locator(f'li[data-notice-id="{alert["id"]}"]')).to_have_count(0)
        expect(resident.locator(f'li[data-notice-id="{fete["id"]}"]')).to_be_visible()

        # « Désabonner à tout moment » leads to where the SMS are changed or stopped
        # (issue 26): a phone cannot reply STOP to an alphanumeric sender.
        resident.get_by_role("link", name="pour les SMS, sur cette page").click()
        expect(resident.get_by_role("heading", level=1)).to_have_text(
            "Mes SMS : changer ou arrêter")
        expect(resident.get_by_role("button", name="Ne plus recevoir de SMS de Lavoncourt")
               ).to_be_visible()
        check(resident.url, "sms-gerer")
        assert checker.evaluate("document.documentElement.scrollWidth"
                                " - document.documentElement.clientWidth") <= 0
        resident.goto(commune_url)

        check(f"{commune_url}/notices/inconnu0000", "introuvable", status=404)
        expect(checker.get_by_role("heading", level=1)).to_have_text("Page introuvable")

        # The email form, posted without JavaScript; the village answers as its channels
        # allow: a confirmation if the email channel runs, else a page saying it does not.
        resident.get_by_label("Votre adresse e-mail").fill("jeanne@example.org")
        resident.get_by_role("button", name="M'abonner par e-mail").click()
        if any(s.name == "email" for s in SERVICES):
            expected = "Vérifiez vos e-mails"
        else:
            expected = "Service momentanément indisponible"
        expect(resident.get_by_role("heading", level=1)).to_have_text(expected)
        # axe cannot run where JavaScript is off (it hangs): the same answer, checked.
        checker.goto(commune_url)
        checker.get_by_label("Votre adresse e-mail").fill("jeanne@example.org")
        checker.get_by_role("button", name="M'abonner par e-mail").click()
        expect(checker.get_by_role("heading", level=1)).to_have_text(expected)
        assert axe_problems(checker) == [], "the subscription's answer"
        shot = tmp_path / "abonnement-email.png"
        checker.screenshot(path=str(shot), full_page=True)
        shots.append(shot)

        poster_url = f"{commune_url}/affiche"
        check(poster_url, "affiche")
        expect(checker.locator(".qr svg")).to_be_visible()
        # The poster prints on one A4 sheet.
        pdf = browser.new_context().new_page()
        pdf.goto(poster_url)
        document = pdf.pdf(format="A4", print_background=True)
        pages = document.count(b"/Type /Page") - document.count(b"/Type /Pages")
        assert pages == 1, f"the poster takes {pages} A4 pages"
        (tmp_path / "affiche.pdf").write_bytes(document)
    assert all(s.stat().st_size > 0 for s in shots)
    print("screenshots:", *shots, sep="\n  ")
