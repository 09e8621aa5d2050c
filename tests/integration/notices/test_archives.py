"""A way in and a history (issue #26): the site's root finds a commune by name or postal
code, and a commune's past notices stay readable, searched, on its public pages."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from crieur import french
from services.notices import archive
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration


@dataclass
class Page:
    """What a resident reads: the text (spaces folded), the links."""

    all_text: str
    links: list[str]


async def get_page(door: FrontDoor, path: str, status: int = 200) -> Page:
    reply = await door.http.get(path)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="fr">' in reply.text
    # Only the commune page's offer of notifications in this browser needs a script.
    scripts = re.findall(r"<script[^>]*>", reply.text)
    assert scripts in ([], ['<script src="/api/v1/webpush/page.js" defer>']), scripts
    body = re.sub(r"<style.*?</style>", " ", reply.text, flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    links = [html.unescape(x) for x in re.findall(r'<a [^>]*href="([^"]*)"', body)]
    return Page(text, links)


async def publish(door: FrontDoor, **fields: Any) -> dict[str, Any]:
    draft = {"category": "information", "title": "Avis", "body": "Texte."} | fields
    reply = await door.http.post(door.notices_url(), json=draft, headers=door.auth)
    assert reply.status_code == 201, reply.text
    notice: dict[str, Any] = reply.json()
    return notice

# A commune of the official list with an accent and a hyphen, outside random_insee's range.
BELVEDERE = "2A035"


async def test_the_root_finds_a_commune_by_postal_code_or_name_without_javascript(
        front_door: FrontDoor) -> None:
    door = front_door
    await door.store.commune_registry.add(BELVEDERE, "Belvédère-Campomoro")
    root = await get_page(door, "/")
    assert "Nom de la commune ou code postal" in root.all_text
    assert 'action="/"' in (await door.http.get("/")).text, "a plain GET form, no script"

    by_code = await get_page(door, "/?q=20110")
    assert f"/communes/{BELVEDERE}" in by_code.links
    assert f"/communes/{door.insee}" not in by_code.links
    assert "Belvédère-Campomoro (20110)" in by_code.all_text
    # Propriano shares the postal code and does not publish here: said so, not linked.
    assert "Pas encore sur Crieur" in by_code.all_text
    assert "Propriano" in by_code.all_text

    # As a resident types it: no accent, no hyphen, lower case, part of the name.
    by_name = await get_page(door, "/communes?q=" + quote("belvedere campo"))
    assert f"/communes/{BELVEDERE}" in by_name.links
    assert "1 commune trouvée pour « belvedere campo »." in by_name.all_text

    # The commune named exactly first, then those whose name starts so, then the others.
    gray = (await get_page(door, "/?q=gray")).all_text.split("Pas encore sur Crieur")[1]
    assert gray.index("Gray (70100)") < gray.index("Gray-la-Ville") < gray.index("Arc-lès-Gray")

    nothing = await get_page(door, "/?q=zzzqqq")
    assert "Aucune commune de Crieur ne correspond à « zzzqqq »." in nothing.all_text
    assert f"/communes/{BELVEDERE}" not in nothing.links

    # Any text is a query, not an error.
    for odd in ("%00", "<script>", "a" * 500, "2A", "---"):
        reply = await door.http.get("/?q=" + quote(odd))
        assert reply.status_code == 200, odd
        assert "<script>" not in reply.text.split("<main", 1)[1]


async def test_the_commune_page_leads_to_its_archive_and_to_other_communes(
        front_door: FrontDoor) -> None:
    page = await get_page(front_door, f"/communes/{front_door.insee}")
    assert f"/communes/{front_door.insee}/archives" in page.links
    assert "Suivre aussi une autre commune" in page.all_text
    assert "/" in page.links


async def past(door: FrontDoor, days: int, **fields: Any) -> dict[str, Any]:
    """A notice that ends `days` from now (the test then moves the clock past it)."""
    return await publish(door, ends_at=(door.clock.now + timedelta(days=days)).isoformat(),
                         **fields)


async def test_past_notices_stay_readable_and_searchable_but_withdrawn_ones_do_not(
        front_door: FrontDoor) -> None:
    door = front_door
    base = f"/communes/{door.insee}/archives"
    water = await past(door, 1, category="travaux", title="Coupure d'eau rue de l'Église",
                       body="Réparation du réseau, rue de l'Église et place de la Mairie.")
    fete = await past(door, 2, category="evenement", title="Fête de la Saint-Rémy",
                      body="Défilé, bal et buvette.")
    withdrawn = await past(door, 1, category="information", title="Réunion publique annulée",
                           body="Réunion sur l'eau.")
    current = await publish(door, category="information", title="Mairie ouverte le samedi")
    answer = await door.http.post(f"{door.notices_url()}/{withdrawn['id']}/withdraw",
                                  headers=door.auth)
    assert answer.status_code == 200

    before = await get_page(door, base)
    assert "Aucun avis passé pour l'instant." in before.all_text

    door.clock.now += timedelta(days=3)
    page = await get_page(door, base)
    assert "Avis passés de Lavoncourt" in page.all_text
    assert "2 avis passés." in page.all_text
    links = [link for link in page.links if "/notices/" in link]
    # Most recently ended first; the withdrawn one and the current one are not there.
    assert links == [f"/communes/{door.insee}/notices/{fete['id']}",
                     f"/communes/{door.insee}/notices/{water['id']}"]
    assert "Réunion publique annulée" not in page.all_text
    assert "Mairie ouverte le samedi" not in page.all_text
    assert f"/communes/{door.insee}/notices/{current['id']}" not in page.links
    # Each stays readable at its own address.
    assert "terminé le" in page.all_text, "a past notice says when it ended"
    notice = await get_page(door, f"/communes/{door.insee}/notices/{water['id']}")
    assert "Cet avis est terminé depuis le" in notice.all_text

    # Words as a resident types them: no accents, any case, in any order.
    found = await get_page(door, base + "?q=" + quote("EGLISE coupure"))
    assert "1 avis trouvé." in found.all_text
    assert f"/communes/{door.insee}/notices/{water['id']}" in found.links
    assert f"/communes/{door.insee}/notices/{fete['id']}" not in found.links
    assert 'value="EGLISE coupure"' in (await door.http.get(base + "?q=EGLISE+coupure")).text
    # The withdrawn notice's words find nothing.
    gone = await get_page(door, base + "?q=reunion")
    assert "Aucun avis passé ne correspond à cette recherche." in gone.all_text

    by_category = await get_page(door, base + "?categorie=evenement")
    assert [x for x in by_category.links if "/notices/" in x] == [
        f"/communes/{door.insee}/notices/{fete['id']}"]

    month = archive.month_of_moment(door.clock.now - timedelta(days=3))
    label = archive.month_label(month)
    by_month = await get_page(door, base + f"?mois={month}")
    assert "2 avis trouvés." in by_month.all_text
    assert f'<option value="{month}" selected>{label}</option>' in (
        await door.http.get(base + f"?mois={month}")).text
    year = int(month[:4]) - 1
    earlier = await get_page(door, base + f"?mois={year}-{month[5:]}")
    assert "0 avis trouvé." in earlier.all_text

    # Odd input is a query that finds nothing or everything, never an error.
    for odd in ("?mois=2026-13", "?categorie=nope", "?q=%00", "?q=" + "x" * 1000,
                "?page=0", "?page=abc", "?page=99999"):
        reply = await door.http.get(base + odd)
        assert reply.status_code in (200, 404), odd
        assert reply.headers["content-type"] == "text/html; charset=utf-8", odd


async def test_the_archive_pages_keep_the_search(front_door: FrontDoor) -> None:
    door = front_door
    base = f"/communes/{door.insee}/archives"
    for i in range(32):
        await past(door, 1, category="travaux", title=f"Travaux numéro {i}",
                   body="Chaussée refaite.")
    await past(door, 1, category="information", title="Autre chose", body="Chaussée.")
    door.clock.now += timedelta(days=2)
    first = await get_page(door, base + "?q=chaussee&categorie=travaux")
    assert f"{french.number(32)} avis trouvés." in first.all_text
    assert base + "?q=chaussee&categorie=travaux&page=2" in first.links
    second = await get_page(door, base + "?q=chaussee&categorie=travaux&page=2")
    assert len([x for x in second.links if "/notices/" in x]) == 2
    assert base + "?q=chaussee&categorie=travaux" in second.links
    assert "Autre chose" not in first.all_text + second.all_text


async def test_an_archive_of_an_unknown_commune_is_a_french_404(front_door: FrontDoor) -> None:
    page = await get_page(front_door, "/communes/99999/archives", status=404)
    assert "Page introuvable" in page.all_text
