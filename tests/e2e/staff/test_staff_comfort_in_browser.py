"""Issue 26 in a real Chromium at 375 px against the village `make run` starts: a photo on the
public notice page, « Dupliquer », « Annuler le retrait », and a colleague's temporary
password; axe-core passes on each page, and none scrolls sideways."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from services.notices.demo import DEMO_STAFF, PASSWORD_FILE
from services.notices.staff import login_of
from tests.e2e.helpers import Village, chromium_browser, start_village
from tests.e2e.staff.helpers import axe_problems, crieur, keep

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE: dict[str, Any] = {"viewport": {"width": 375, "height": 800}, "locale": "fr-FR"}
LAVONCOURT = "70299"
SHOTS = Path("/tmp/crieur-comfort-shots")


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    """The village as `make run` starts it, but a withdrawal held 4 s, not a minute."""
    v = start_village(tmp_path_factory.mktemp("village"), {"CRIEUR_WITHDRAW_UNDO_S": "4"})
    yield v
    v.stop()


def checked(page: Any, name: str) -> None:
    """French, axe-clean, no sideways scrolling at 375 px; a screenshot kept to look at."""
    assert page.locator("html").get_attribute("lang") == "fr", name
    assert axe_problems(page) == [], name
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: {overflow} px wider than the phone"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}-375.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)


def sign_in(page: Any, api: str, user: str, password: str) -> None:
    page.goto(f"{api}/staff/login")
    page.get_by_label("Identifiant").fill(user)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def a_photo() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (1200, 800), (40, 110, 60))
    image.paste((230, 200, 40), (300, 250, 900, 550))
    image.save(out, "JPEG")
    return out.getvalue()


def published_with_a_photo(village: Village) -> str:
    api = f"{village.api}/api/v1/communes/{LAVONCOURT}"
    upload = httpx.post(f"{api}/attachments", headers=village.auth, timeout=30,
                        files={"file": ("Déviation.jpg", a_photo(), "image/jpeg")})
    assert upload.status_code == 201, upload.text
    reply = httpx.post(f"{api}/notices", headers=village.auth, timeout=30, json={
        "category": "travaux", "title": "Pont de la Saône fermé",
        "body": "Le pont est fermé pour travaux. Déviation par Vellexon (voir la photo).",
        "attachments": [upload.json()["id"]]})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def test_a_photo_dupliquer_and_annuler_le_retrait_on_a_phone(
        village: Village, chromium: str) -> None:
    from playwright.sync_api import expect

    notice_id = published_with_a_photo(village)
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    with chromium_browser(chromium) as browser:
        public = browser.new_context(**PHONE).new_page()
        public.goto(f"{village.api}/communes/{LAVONCOURT}/notices/{notice_id}")
        photo = public.get_by_role("img", name="Photo jointe à l’avis : Pont de la Saône fermé")
        expect(photo).to_be_visible()
        # Loaded (the page's CSP lets its own images in), and within the phone's width.
        assert photo.evaluate("img => img.complete && img.naturalWidth") > 0
        assert photo.evaluate("img => img.getBoundingClientRect().width") <= 375
        checked(public, "avis-public-photo")

        page = browser.new_context(**PHONE).new_page()
        sign_in(page, village.api, login_of(DEMO_STAFF), password)
        notice_url = f"{village.api}/staff/communes/{LAVONCOURT}/notices/{notice_id}"
        page.goto(notice_url)
        expect(page.get_by_role("button", name="Dupliquer")).to_be_visible()
        checked(page, "avis-staff")

        page.get_by_role("button", name="Dupliquer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Nouvel avis")
        expect(page.locator("#copie")).to_contain_text("Copie de l’avis « Pont de la Saône fermé »")
        expect(page.get_by_label("Titre (120 caractères au plus)")).to_have_value(
            "Pont de la Saône fermé")
        expect(page.get_by_label("Catégorie")).to_have_value("travaux")
        expect(page.locator("#pieces-jointes")).to_contain_text("Déviation.jpg")
        checked(page, "dupliquer")

        page.goto(notice_url)
        page.get_by_role("button", name="Retirer l'avis").click()
        expect(page.locator("#delai-annulation")).to_contain_text("pour annuler le retrait")
        page.get_by_role("button", name="Confirmer le retrait").click()
        expect(page.locator("#confirmation")).to_contain_text("Le retrait est enregistré")
        expect(page.locator("#retrait-en-attente")).to_contain_text("Retrait en attente")
        checked(page, "retrait-en-attente")
        page.get_by_role("button", name="Annuler le retrait").click()
        expect(page.locator("#confirmation")).to_contain_text("Le retrait est annulé")
        expect(page.locator("#etat")).to_have_text("Publié")
        checked(page, "retrait-annule")
        # Well after the delay it is still there, for residents too.
        page.wait_for_timeout(6000)
        page.reload()
        expect(page.locator("#etat")).to_have_text("Publié")
        public.reload()
        expect(public.locator("article")).to_have_attribute("data-state", "published")


def test_a_colleague_gives_a_temporary_password_on_a_phone(
        village: Village, chromium: str) -> None:
    from playwright.sync_api import expect

    added = crieur(village, "staff", "add", "--commune", LAVONCOURT, "--name",
                   "Bruno Agent", "--password-stdin", stdin="mot de passe oublié de Bruno\n")
    assert added.returncode == 0, added.stderr
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    with chromium_browser(chromium) as browser:
        page = browser.new_context(**PHONE).new_page()
        sign_in(page, village.api, login_of(DEMO_STAFF), password)
        page.goto(f"{village.api}/staff/communes/{LAVONCOURT}")
        page.get_by_role("link", name="Équipe de la mairie et mots de passe").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Équipe de Lavoncourt")
        checked(page, "equipe")
        page.get_by_label("Mot de passe provisoire pour Bruno Agent").fill("provisoire 2024 !")
        page.get_by_role("button", name="Donner ce mot de passe provisoire").click()
        expect(page.locator("#confirmation")).to_contain_text(
            "Mot de passe provisoire enregistré pour Bruno Agent")
        checked(page, "equipe-provisoire")

        bruno = browser.new_context(**PHONE).new_page()
        sign_in(bruno, village.api, "bruno-agent", "provisoire 2024 !")
        expect(bruno.get_by_role("heading", level=1)).to_have_text(
            "Choisissez votre mot de passe")
        checked(bruno, "mot-de-passe-provisoire")
        bruno.get_by_label("Nouveau mot de passe").fill("le chant du coq à Lavoncourt")
        bruno.get_by_label("Le même, une deuxième fois").fill("le chant du coq à Lavoncourt")
        bruno.get_by_role("button", name="Enregistrer mon mot de passe").click()
        expect(bruno.locator("#confirmation")).to_contain_text(
            "Votre nouveau mot de passe est enregistré")
        checked(bruno, "mot-de-passe-choisi")
        bruno.goto(f"{village.api}/staff/communes/{LAVONCOURT}")
        expect(bruno.get_by_role("heading", level=1)).to_have_text("Avis de Lavoncourt")
