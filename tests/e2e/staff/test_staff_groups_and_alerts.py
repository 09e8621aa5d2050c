"""Above the commune, in a real headless Chromium against the village `make run` starts.

A member of staff scoped to the EPCI publishes one notice for its communes, corrects and
withdraws it for all of them; Lavoncourt's secretary sees the copy marked as the group's,
without a correction or withdrawal of their own. The MeteoAlarm stand-in's orange alert is
proposed, published in one click, its Update applied in one click, its Cancel too. axe-core
passes on every page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crieur.geo import geography
from crieur.nats_server import free_port
from services.notices.demo import DEMO_STAFF, PASSWORD_FILE
from services.notices.staff import login_of
from tests.e2e.helpers import Village, chromium_browser, start_village
from tests.e2e.staff.helpers import axe_problems, crieur, keep

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DESK: dict[str, Any] = {"viewport": {"width": 1100, "height": 900}, "locale": "fr-FR"}
LAVONCOURT = "70299"
STANDIN_PORT = free_port()


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    """The village, its CAP feed read every second; the stand-in moves on when told."""
    v = start_village(tmp_path_factory.mktemp("village"), {
        "CRIEUR_CAP_STANDIN_PORT": str(STANDIN_PORT), "CRIEUR_CAP_POLL_S": "1",
        "CRIEUR_CAP_STANDIN_STEP_S": "36000"})
    yield v
    v.stop()


def sign_in(page: Any, api: str, user: str, password: str) -> None:
    page.goto(f"{api}/staff/login")
    page.get_by_label("Identifiant").fill(user)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def checked(page: Any, tmp_path: Path, name: str) -> None:
    assert page.locator("html").get_attribute("lang") == "fr", name
    assert axe_problems(page) == [], name
    shot = tmp_path / f"staff-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)


def test_a_group_member_publishes_corrects_and_withdraws_for_every_commune(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    geo = geography()
    epci = geo.communes[LAVONCOURT].epci
    assert epci is not None
    neighbour = next(c for c in geo.in_epci(epci) if c.insee != LAVONCOURT)
    for args in (("commune", "add", neighbour.insee, neighbour.name),
                 ("commune", "approval", neighbour.insee, "--require", "alerte"),
                 ("group", "add", "--epci", epci)):
        done = crieur(village, *args)
        assert done.returncode == 0, done.stderr
    group_id = f"epci-{epci}"
    added = crieur(village, "staff", "add", "--group", group_id, "--name",
                   "Président de la CC", "--password-stdin",
                   stdin="le mot de passe du président\n")
    assert added.returncode == 0, added.stderr
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()

    with chromium_browser(chromium) as browser:
        member = browser.new_context(**DESK).new_page()
        sign_in(member, village.api, "president-de-la-cc", "le mot de passe du président")
        expect(member.get_by_role("heading", level=1)).to_have_text("Vos communes")
        checked(member, tmp_path, "groupes")
        member.get_by_role("link", name=geo.epcis[epci]).click()
        expect(member.get_by_role("heading", level=1)).to_have_text(geo.epcis[epci])
        checked(member, tmp_path, "groupe")
        member.get_by_role("link", name="Nouvel avis pour le groupe").click()
        expect(member.locator("main")).to_contain_text("les 2 communes inscrites")
        member.get_by_label("Catégorie").select_option("alerte")
        member.get_by_label("Titre (120 caractères au plus)").fill("Tempête : restez chez vous")
        member.get_by_label("Texte", exact=True).fill("Vents violents attendus cette nuit.")
        checked(member, tmp_path, "groupe-nouvel-avis")
        member.get_by_role("button", name="Publier pour le groupe").click()
        expect(member.locator("#confirmation")).to_contain_text(
            "L'avis est publié pour le groupe")
        # The neighbour approves its alerts first: its copy waits for its own staff.
        expect(member.locator("#etats")).to_contain_text("Publié : 1 commune")
        expect(member.locator("#etats")).to_contain_text("En attente d'approbation : 1 commune")
        checked(member, tmp_path, "groupe-avis")
        broadcast_url = member.url.split("?")[0]

        secretary = browser.new_context(**DESK).new_page()
        sign_in(secretary, village.api, login_of(DEMO_STAFF), password)
        expect(secretary.get_by_role("heading", level=1)).to_have_text("Avis de Lavoncourt")
        copy = secretary.locator("li.notice", has_text="Tempête : restez chez vous")
        expect(copy).to_contain_text(f"Publié par {geo.epcis[epci]}")
        checked(secretary, tmp_path, "avis-du-groupe-liste")
        copy.get_by_role("link", name="Tempête : restez chez vous").click()
        expect(secretary.locator("#publication-groupe")).to_contain_text(
            f"Publié par {geo.epcis[epci]}")
        expect(secretary.get_by_role("button", name="Enregistrer la correction")).to_have_count(0)
        expect(secretary.get_by_role("button", name="Retirer l'avis")).to_have_count(0)
        checked(secretary, tmp_path, "avis-du-groupe")

        member.goto(broadcast_url)
        member.get_by_label("Titre (120 caractères au plus)").fill("Tempête : vigilance orange")
        member.get_by_role("button", name="Enregistrer la correction").click()
        expect(member.locator("#confirmation")).to_have_text(
            "La correction est enregistrée pour toutes les communes du groupe.")
        secretary.reload()
        expect(secretary.get_by_role("heading", level=1)).to_have_text(
            "Tempête : vigilance orange")

        member.get_by_role("button", name="Retirer l'avis partout").click()
        expect(member.locator("#confirmation")).to_have_text(
            "L'avis est retiré dans toutes les communes du groupe.")
        expect(member.locator("#etats")).to_contain_text("Retiré : 2 communes")
        checked(member, tmp_path, "groupe-avis-retire")
        for insee in (LAVONCOURT, neighbour.insee):
            public = httpx.get(f"{village.api}/api/v1/communes/{insee}/notices").json()
            assert "Tempête : vigilance orange" not in {n["title"] for n in public["notices"]}


def test_an_official_alert_is_published_corrected_and_withdrawn_in_one_click_each(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    standin = f"http://127.0.0.1:{STANDIN_PORT}"
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    orange = "Vigilance orange vent violent : Haute-Saône"
    with chromium_browser(chromium) as browser:
        page = browser.new_context(**DESK).new_page()
        sign_in(page, village.api, login_of(DEMO_STAFF), password)
        first = page.locator("li.notice").first
        # The feed is read every second: the proposal arrives, at the top of the list.
        expect_after_reloads(page, lambda: first.filter(has_text="Vigilance").count() == 1)
        expect(page.locator("li.notice", has_text=orange)).to_contain_text(
            "Alerte officielle proposée")
        checked(page, tmp_path, "alerte-proposee-liste")
        # Nothing reached residents before a member of staff.
        public = httpx.get(f"{village.api}/api/v1/communes/{LAVONCOURT}/notices").json()
        assert orange not in {n["title"] for n in public["notices"]}

        page.get_by_role("link", name=orange).click()
        checked(page, tmp_path, "alerte-proposee")
        page.get_by_role("button", name="Publier l'alerte").click()
        expect(page.locator("#confirmation")).to_contain_text("L'alerte officielle est publiée")
        expect(page.locator("#etat")).to_have_text("Publié")
        notice_url = page.url.split("?")[0]

        assert httpx.post(f"{standin}/next").json() == {"step": 1}  # the source's Update
        page.goto(f"{village.api}/staff/communes/{LAVONCOURT}")
        expect_after_reloads(page, lambda: "Alerte officielle proposée : correction"
                             in (first.text_content() or ""))
        checked(page, tmp_path, "correction-proposee-liste")
        page.goto(notice_url)
        expect(page.locator("#proposition")).to_contain_text("prolongée")
        checked(page, tmp_path, "correction-proposee")
        page.get_by_role("button", name="Appliquer la correction proposée").click()
        expect(page.locator("#confirmation")).to_contain_text(
            "La correction proposée par la source officielle est enregistrée")
        expect(page.get_by_role("heading", level=1)).to_contain_text("prolongée")
        expect(page.locator("#proposition")).to_have_count(0)

        assert httpx.post(f"{standin}/next").json() == {"step": 2}  # the source's Cancel
        page.goto(f"{village.api}/staff/communes/{LAVONCOURT}")
        expect_after_reloads(page, lambda: "Alerte officielle proposée : retrait"
                             in (first.text_content() or ""))
        page.goto(notice_url)
        # Proposed only: the notice stays published until someone decides.
        expect(page.locator("#etat")).to_have_text("Corrigé")
        checked(page, tmp_path, "retrait-propose")
        page.get_by_role("button", name="Retirer l'avis comme proposé").click()
        expect(page.locator("#confirmation")).to_have_text(
            "L'avis est retiré, comme la source officielle le proposait.")
        expect(page.locator("#etat")).to_have_text("Retiré")
        public = httpx.get(f"{village.api}/api/v1/communes/{LAVONCOURT}/notices").json()
        assert not any("vent violent" in n["title"] for n in public["notices"])


def expect_after_reloads(page: Any, check: Any, tries: int = 60) -> None:
    """Reload the page (a staff page has no script to refresh itself) until `check` holds;
    bounded: about thirty seconds."""
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError("the page never showed what was expected")
