"""The mairie's back-office in a real headless Chromium against the village `make run` starts.

Sign in, compose with previews, publish, see it on the public page and the web sign, correct,
withdraw; a wrong password, a missing CSRF token, another commune's notice and a locked
account are refused; a second member approves an alert; axe-core passes on every staff page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notices.demo import DEMO_STAFF, PASSWORD_FILE
from services.notices.staff import login_of
from tests.e2e.helpers import Village, chromium_browser, start_village
from tests.e2e.staff.helpers import axe_problems, crieur, keep

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    """The village as `make run` starts it, a locked login waiting a minute rather than a
    second: on a busy machine the sixth sign-in came more than a second after the fifth
    failure, when the lock had run out (a run failed so)."""
    v = start_village(tmp_path_factory.mktemp("village"), {"CRIEUR_SIGNIN_DELAY_S": "60"})
    yield v
    v.stop()

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DESK: dict[str, Any] = {"viewport": {"width": 1100, "height": 900}, "locale": "fr-FR"}


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    """The village as `make run` starts it, but a withdrawal held 3 s, not a minute."""
    v = start_village(tmp_path_factory.mktemp("village"), {"CRIEUR_WITHDRAW_UNDO_S": "3"})
    yield v
    v.stop()


def test_make_run_prints_the_demo_sign_in(village: Village) -> None:
    output = village.output.read_text()
    assert f"{village.api}/staff/login" in output
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    assert re.search(rf"^\s+user\s+{login_of(DEMO_STAFF)}$", output, re.M)
    assert re.search(rf"^\s+password\s+{re.escape(password)}$", output, re.M)


def test_a_secretary_publishes_corrects_and_withdraws_from_the_browser(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    user = login_of(DEMO_STAFF)
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    shots: list[Path] = []

    with chromium_browser(chromium) as browser:
        context = browser.new_context(**DESK)
        page = context.new_page()

        def check(name: str) -> None:
            assert page.locator("html").get_attribute("lang") == "fr", name
            assert axe_problems(page) == [], name
            shot = tmp_path / f"staff-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
            keep(shot)

        page.goto(f"{village.api}/staff")
        assert page.url.startswith(f"{village.api}/staff/login")
        check("connexion")

        # A wrong password: refused, said in French, no session.
        page.get_by_label("Identifiant").fill(user)
        page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
        page.get_by_role("button", name="Se connecter").click()
        expect(page.locator("#erreur")).to_have_text("Identifiant ou mot de passe incorrect.")
        check("connexion-refusee")

        page.get_by_label("Identifiant").fill(user)
        page.get_by_label("Mot de passe").fill(password)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Avis de Lavoncourt")
        check("avis")

        page.get_by_role("link", name="Nouvel avis").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Nouvel avis")
        page.get_by_label("Catégorie").select_option("alerte")
        page.get_by_label("Titre (120 caractères au plus)").fill("Tempête : restez chez vous")
        page.get_by_label("Texte", exact=True).fill(
            "Vents ≥ 120 km/h attendus cette nuit. Rentrez les volets.")
        page.get_by_label("Adresse du lien 1").fill("https://meteofrance.com/")
        page.get_by_label("Texte du lien 1").fill("Météo-France")
        decree = tmp_path / "Arrêté préfectoral.pdf"
        decree.write_bytes(PDF)
        page.get_by_label("Pièce jointe : image ou PDF (facultatif)").set_input_files(decree)
        check("nouvel-avis")

        page.get_by_role("button", name="Prévisualiser").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Aperçu avant publication")
        for _attempt in range(3):
            # A channel slow to answer under load shows as unavailable: ask again.
            if page.locator(".preview", has_text="Aperçu indisponible").count() == 0:
                break
            page.get_by_role("button", name="Modifier").click()
            page.get_by_role("button", name="Prévisualiser").click()
        for heading in ("Notification sur téléphone", "SMS", "Panneau lumineux", "E-mail"):
            expect(page.get_by_role("heading", level=3, name=heading)).to_be_visible()
        expect(page.locator("#apercu-push")).to_contain_text("Lavoncourt · Alerte")
        expect(page.locator("#apercu-push")).to_contain_text("type d'avis suivi : Alerte")
        sms = page.locator("#apercu-sms")
        expect(sms).to_contain_text("Encodage UCS-2")
        expect(sms).to_contain_text("SMS à payer")
        # The character that makes the SMS longer is highlighted in its text.
        expect(sms.locator(".sms-text mark.long")).to_have_text(["≥"])
        sign_image = page.locator("#apercu-panel img")
        expect(sign_image).to_be_visible()
        assert (sign_image.get_attribute("src") or "").startswith("data:image/png;base64,")
        expect(page.locator("#apercu-email")).to_contain_text(
            "Objet : Alerte : Tempête : restez chez vous")
        expect(page.frame_locator("#apercu-email iframe").locator("body")).to_contain_text(
            "Rentrez les volets.")
        expect(page.get_by_role("link", name="Arrêté préfectoral.pdf")).to_be_visible()
        check("apercu")

        page.get_by_role("button", name="Publier").click()
        expect(page.locator("#confirmation")).to_contain_text("L'avis est publié")
        expect(page.locator("#etat")).to_have_text("Publié")
        notice_url = page.url.split("?")[0]
        notice_id = notice_url.rsplit("/", 1)[1]
        expect(page.get_by_role("link", name="Arrêté préfectoral.pdf")).to_be_visible()
        check("avis-publie")
        # Its reach, from DELIVERIES: the demo phones follow the village, so the push
        # channel reports the topic message it sent.
        for _attempt in range(60):
            if "Notifications" in (page.locator("#portee").text_content() or ""):
                break
            page.wait_for_timeout(1000)
            page.reload()
        expect(page.locator("#portee")).to_contain_text("par type d'avis suivi : Alerte 1")

        # On the residents' page and on the web sign.
        public = context.new_page()
        public.goto(f"{village.api}/communes/70299")
        expect(public.locator(f'li[data-notice-id="{notice_id}"]')).to_contain_text(
            "Tempête : restez chez vous")
        public.goto(f"{village.api}/communes/70299/notices/{notice_id}")
        expect(public.get_by_role("link", name="Arrêté préfectoral.pdf")).to_be_visible()
        sign = context.new_page()
        sign.goto(village.panel + "/")
        item = sign.locator(f'#notices li[data-notice-id="{notice_id}"]')
        expect(item).to_contain_text("Tempête : restez chez vous", timeout=30_000)

        # Correct it: a new version, on the public page too.
        page.locator("#c-title").fill("Tempête : restez chez vous jusqu'à demain")
        page.get_by_role("button", name="Enregistrer la correction").click()
        # Nothing goes out before the secretary sees what, to whom, at what cost.
        confirm_on_a_phone(page, "Envoyer la correction ?", "Confirmer et envoyer",
                           "confirmer-correction", check)
        expect(page.locator("#confirmation")).to_have_text(
            "La correction est enregistrée.")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Tempête : restez chez vous jusqu'à demain")
        expect(page.locator("#etat")).to_have_text("Corrigé")
        public.goto(f"{village.api}/communes/70299/notices/{notice_id}")
        expect(public.get_by_role("heading", level=1)).to_have_text(
            "Tempête : restez chez vous jusqu'à demain")
        expect(item).to_contain_text("jusqu'à demain", timeout=30_000)

        # The listing shows it with its state.
        page.goto(f"{village.api}/staff/communes/70299")
        expect(page.locator(f'li[data-notice-id="{notice_id}"]')).to_have_attribute(
            "data-state", "corrected")
        expect(page.locator(f'li[data-notice-id="{notice_id}"] .reach')).to_contain_text(
            "par type d'avis suivi : Alerte")
        check("liste-avis")

        # A form posted without its CSRF token (the session cookie goes with it) is refused.
        refused = context.request.post(f"{notice_url}/withdraw", form={"csrf": ""})
        assert refused.status == 403
        assert "Formulaire refusé" in refused.text()
        refused = context.request.post(f"{notice_url}/withdraw", form={"x": "1"})
        assert refused.status == 403

        # Withdraw it.
        page.goto(notice_url)
        page.get_by_role("button", name="Retirer l'avis").click()
        confirm_on_a_phone(page, "Retirer l'avis ?", "Confirmer le retrait",
                           "confirmer-retrait", check)
        # Held a moment with « Annuler le retrait » (tests/integration/staff/test_staff_comfort.py), then done.
        expect(page.locator("#confirmation")).to_contain_text("Le retrait est enregistré")
        expect(page.get_by_role("button", name="Annuler le retrait")).to_be_visible()
        for _attempt in range(60):
            if page.locator("#etat").text_content() == "Retiré":
                break
            page.wait_for_timeout(500)
            page.goto(notice_url)
        expect(page.locator("#etat")).to_have_text("Retiré")
        check("avis-retire")
        public.goto(f"{village.api}/communes/70299")
        expect(public.locator(f'li[data-notice-id="{notice_id}"]')).to_have_count(0)
        expect(item).to_have_count(0, timeout=30_000)

        # Another commune's notice: refused, whichever way it is asked.
        assert crieur(village, "commune", "add", "21231", "Autreville").returncode == 0
        other = crieur(village, "staff", "add", "--commune", "21231", "--name",
                       "Mairie d'Autreville", "--no-password")
        assert other.returncode == 0, other.stderr
        theirs = httpx.post(f"{village.api}/api/v1/communes/21231/notices",
                            headers={"Authorization": f"Bearer {other.stdout.strip()}"},
                            json={"category": "information", "title": "Chez nous",
                                  "body": "Rien pour Lavoncourt."}, timeout=30)
        assert theirs.status_code == 201, theirs.text
        their_id = theirs.json()["id"]
        reply = page.goto(f"{village.api}/staff/communes/21231/notices/{their_id}")
        assert reply is not None and reply.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
        check("acces-refuse")
        reply = page.goto(f"{village.api}/staff/communes/70299/notices/{their_id}")
        assert reply is not None and reply.status == 404

        page.get_by_role("button", name="Se déconnecter").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Connexion à l'espace mairie")
        reply = page.goto(f"{village.api}/staff/communes/70299")
        assert page.url.startswith(f"{village.api}/staff/login")
    assert all(s.stat().st_size > 0 for s in shots)
    print("screenshots:", *shots, sep="\n  ")


def confirm_on_a_phone(page: Any, heading: str, button: str, name: str,
                       check: Callable[[str], None]) -> None:
    """The confirmation of a correction or a withdrawal of a sent notice: each channel's
    count and the SMS to pay, read at 375 px without scrolling sideways, then confirmed."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    for _attempt in range(3):
        # A channel slow to answer under load shows as unavailable: ask again.
        if page.locator("#envoi", has_text="indisponible").count() == 0:
            break
        page.reload()
    sent = page.locator("#envoi")
    expect(sent).to_contain_text("Notifications : ")
    expect(sent).to_contain_text("E-mails : ")
    # The demo's SMS carries alerts: the count of numbers times the parts, and what it costs.
    expect(page.locator("#envoi-sms")).to_contain_text(
        re.compile(r"SMS\s:\s(au plus )?\d+\sabonnés?\s×\s\d+\sSMS\s=\s(au plus )?\d+\sSMS"
                   r"\sà payer"))
    for heading_3 in ("Notification sur téléphone", "SMS", "Panneau lumineux", "E-mail"):
        expect(page.get_by_role("heading", level=3, name=heading_3)).to_be_visible()
    desk = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 800})
    try:
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name}: {overflow} px wider than the phone"
        check(f"{name}-375")
    finally:
        page.set_viewport_size(desk)
    page.get_by_role("button", name=button).click()


def sign_in(page: Any, api: str, user: str, password: str) -> Any:
    page.goto(f"{api}/staff/login")
    page.get_by_label("Identifiant").fill(user)
    page.get_by_label("Mot de passe").fill(password)
    with page.expect_response(lambda r: r.url.endswith("/staff/login")
                              and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Se connecter").click()
    return answer.value


def test_five_wrong_passwords_lock_the_account(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    added = crieur(village, "staff", "add", "--commune", "70299", "--name", "Verrou Test",
                   "--password-stdin", stdin="un mot de passe solide\n")
    assert added.returncode == 0, added.stderr
    with chromium_browser(chromium) as browser:
        page = browser.new_context(**DESK).new_page()
        for _ in range(5):
            assert sign_in(page, village.api, "verrou-test", "mauvais").status == 401
        locked = sign_in(page, village.api, "verrou-test", "un mot de passe solide")
        assert locked.status == 429
        expect(page.locator("#erreur")).to_contain_text("Trop de tentatives")
        assert axe_problems(page) == []
        shot = tmp_path / "staff-compte-verrouille.png"
        page.screenshot(path=str(shot), full_page=True)
        keep(shot)


def test_an_alert_goes_out_once_a_second_member_approves_it(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    assert crieur(village, "commune", "approval", "70299", "--require", "alerte"
                  ).returncode == 0
    added = crieur(village, "staff", "add", "--commune", "70299", "--name", "Adjoint au maire",
                   "--password-stdin", stdin="le mot de passe de l'adjoint\n")
    assert added.returncode == 0, added.stderr
    password = (village.data_dir / PASSWORD_FILE).read_text().strip()
    try:
        with chromium_browser(chromium) as browser:
            secretary = browser.new_context(**DESK).new_page()
            assert sign_in(secretary, village.api, login_of(DEMO_STAFF), password
                           ).status == 303
            secretary.goto(f"{village.api}/staff/communes/70299/compose")
            secretary.get_by_label("Catégorie").select_option("alerte")
            secretary.get_by_label("Titre (120 caractères au plus)").fill(
                "Coupure d'eau cet après-midi")
            secretary.get_by_label("Texte", exact=True).fill("De 14 h à 17 h, rue Haute.")
            secretary.get_by_role("button", name="Prévisualiser").click()
            expect(secretary.locator("#approbation")).to_be_visible()
            secretary.get_by_role("button", name="Envoyer pour approbation").click()
            expect(secretary.locator("#etat")).to_have_text("En attente d'approbation")
            expect(secretary.get_by_role("button", name="Approuver et publier")
                   ).to_have_count(0)
            notice_id = secretary.url.split("?")[0].rsplit("/", 1)[1]
            assert axe_problems(secretary) == []
            shot = tmp_path / "staff-en-attente.png"
            secretary.screenshot(path=str(shot), full_page=True)
            keep(shot)
            # Nothing went out.
            public = httpx.get(f"{village.api}/api/v1/communes/70299/notices/{notice_id}")
            assert public.status_code == 404

            deputy = browser.new_context(**DESK).new_page()
            assert sign_in(deputy, village.api, "adjoint-au-maire",
                           "le mot de passe de l'adjoint").status == 303
            deputy.goto(f"{village.api}/staff/communes/70299")
            expect(deputy.locator(f'li[data-notice-id="{notice_id}"]')).to_have_attribute(
                "data-state", "pending_approval")
            deputy.get_by_role("link", name="Coupure d'eau cet après-midi").click()
            deputy.get_by_role("button", name="Approuver et publier").click()
            expect(deputy.locator("#confirmation")).to_have_text(
                "L'avis est approuvé et publié.")
            expect(deputy.locator("main")).to_contain_text("approuvée par Adjoint au maire")
            public = httpx.get(f"{village.api}/api/v1/communes/70299/notices/{notice_id}")
            assert public.status_code == 200
            assert public.json()["approved_by"] == "Adjoint au maire"
    finally:
        crieur(village, "commune", "approval", "70299", "--none")
