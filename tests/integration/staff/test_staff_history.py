"""The staff list as a history (issue #26): filters by state, category, month and words,
kept from page to page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx

from services.notices import archive
from tests.integration.staff.helpers import Office, shown, sign_in


async def publish(http: httpx.AsyncClient, office: Office, **fields: Any) -> str:
    answer = await http.post(f"/api/v1/communes/{office.insee}/notices", headers=office.auth,
                             json={"category": "information", "body": "Texte."} | fields)
    assert answer.status_code == 201, answer.text
    notice_id: str = answer.json()["id"]
    return notice_id


def listed(page: str) -> list[str]:
    return re.findall(r'data-notice-id="([a-z0-9]+)"', page)


async def test_the_staff_list_filters_by_state_category_month_and_words(office: Office) -> None:
    base = f"/staff/communes/{office.insee}"
    async with office.browser() as http:
        soon = (office.clock() + timedelta(days=1)).isoformat()
        water = await publish(http, office, category="travaux", title="Coupure d'eau",
                              body="Rue de l'Église.", ends_at=soon)
        fete = await publish(http, office, category="evenement", title="Fête du village")
        gone = await publish(http, office, title="Réunion annulée")
        withdrawn = await http.post(f"/api/v1/communes/{office.insee}/notices/{gone}/withdraw",
                                    headers=office.auth)
        assert withdrawn.status_code == 200
        office.clock.now += timedelta(days=2)

        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        everything = shown(await http.get(base))
        assert {water, fete, gone} <= set(listed(everything))
        assert '<select id="etat" name="etat">' in everything

        expired = shown(await http.get(base + "?etat=expired"))
        assert listed(expired) == [water]
        assert '<option value="expired" selected>Expiré</option>' in expired
        assert listed(shown(await http.get(base + "?etat=withdrawn"))) == [gone]
        assert listed(shown(await http.get(base + "?categorie=evenement"))) == [fete]
        assert listed(shown(await http.get(base + "?q=eglise"))) == [water]
        nothing = shown(await http.get(base + "?q=eglise&etat=published"))
        assert listed(nothing) == []
        assert "Aucun avis ne correspond à ces critères." in nothing

        month = archive.month_of_moment(office.clock() - timedelta(days=2))
        this_month = set(listed(shown(await http.get(base + f"?mois={month}"))))
        assert {water, fete, gone} <= this_month
        other = f"{int(month[:4]) - 1}{month[4:]}"
        assert listed(shown(await http.get(base + f"?mois={other}"))) == []

        for odd in ("?etat=nope", "?mois=12-2026", "?categorie=%00", "?q=" + "x" * 500):
            assert (await http.get(base + odd)).status_code == 200, odd


async def test_the_staff_list_pages_keep_the_filters(office: Office) -> None:
    base = f"/staff/communes/{office.insee}"
    async with office.browser() as http:
        for i in range(22):
            await publish(http, office, category="travaux", title=f"Chantier {i}")
        await publish(http, office, title="Autre chose")
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        first = shown(await http.get(base + "?categorie=travaux"))
        assert "Avis trouvés (22)" in first
        assert 'href="?categorie=travaux&page=2">Page suivante' in first
        second = shown(await http.get(base + "?categorie=travaux&page=2"))
        assert "Autre chose" not in first + second
        assert len(listed(first)) + len(listed(second)) == 22
