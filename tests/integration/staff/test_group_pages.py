"""Group publication from the staff pages, on a real nats-server (the browser test drives
the same pages in Chromium): publish for a group, each commune's list marks its copy,
correct and withdraw the whole broadcast, each commune's approval rule holds its copy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.notices.groups import Group, GroupRegistry
from tests.integration.notices.helpers import random_insee
from tests.integration.staff.helpers import PASSWORD, Office, page_csrf, shown, sign_in

pytestmark = pytest.mark.integration


async def group_member(office: Office, size: int) -> tuple[str, list[str], str]:
    """A group of `size` registered communes (the office's first), its id and a member."""
    communes = [office.insee] + [random_insee() for _ in range(size - 1)]
    await asyncio.gather(*(office.store.commune_registry.add(i, f"Commune {i}") for i in communes[1:]))
    group_id = f"cc-pages-{office.insee}"
    await GroupRegistry(office.store.groups_kv).put(Group(
        id=group_id, name=f"Communauté {office.insee}", kind="list",
        communes=(*communes, "99999"), created_at=datetime.now(UTC)))
    name = f"Présidente {office.insee}"
    await office.store.staff_registry.add(name, tuple(communes), (group_id,))
    account = await office.store.staff_registry.set_password(name, PASSWORD)
    assert account.groups == (group_id,)
    return group_id, communes, name


FORM = {"category": "alerte", "title": "Tempête cette nuit", "when": "now",
        "body": "Vents violents attendus : rentrez ce qui peut s'envoler.", "key": "k1"}


async def test_a_group_member_publishes_corrects_and_withdraws_for_the_group(
        office: Office) -> None:
    group_id, communes, name = await group_member(office, 3)
    await office.store.commune_registry.require_approval(communes[2], ("alerte",))
    async with office.browser() as member, office.browser() as secretary:
        assert (await sign_in(member, name)).status_code == 303
        home = shown(await member.get("/staff"))
        assert f"Communauté {office.insee}" in home
        compose = f"/staff/groups/{group_id}/compose"
        csrf = await page_csrf(member, compose)
        assert "les 3 communes inscrites" in shown(await member.get(compose))

        # A field refused comes back in French, the form kept.
        bad = await member.post(f"/staff/groups/{group_id}/publish",
                                data=FORM | {"csrf": csrf, "title": ""})
        assert bad.status_code == 422
        assert "Ce champ est obligatoire." in shown(bad)

        done = await member.post(f"/staff/groups/{group_id}/publish",
                                 data=FORM | {"csrf": csrf})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=broadcast-published")
        broadcast_url = done.headers["location"].split("?")[0]
        broadcast_id = broadcast_url.rsplit("/", 1)[1]
        page = shown(await member.get(done.headers["location"]))
        assert "L'avis est publié pour le groupe" in page
        # The third commune approves its alerts first: its copy waits.
        assert "Publié</span> : 2 communes" in page
        assert "En attente d'approbation</span> : 1 commune" in page
        assert "pas inscrite à Crieur" in page
        # The same form sent twice (a double click) is one publication.
        again = await member.post(f"/staff/groups/{group_id}/publish",
                                  data=FORM | {"csrf": csrf})
        assert again.headers["location"].split("?")[0] == broadcast_url
        listed = shown(await member.get(f"/staff/groups/{group_id}"))
        assert listed.count(f'data-broadcast-id="{broadcast_id}"') == 1

        # The commune's own staff see it marked, with neither correction nor withdrawal.
        assert (await sign_in(secretary, f"Anne {office.insee}")).status_code == 303
        mine = shown(await secretary.get(f"/staff/communes/{office.insee}"))
        assert f"Publié par Communauté {office.insee}" in mine
        copy = next(n for n in office.store.view.all(office.insee)
                    if n.broadcast_id == broadcast_id)
        copy_url = f"/staff/communes/{office.insee}/notices/{copy.id}"
        copy_page = shown(await secretary.get(copy_url))
        assert f"Publié par Communauté {office.insee}" in copy_page
        assert 'id="corriger"' not in copy_page and 'id="retirer"' not in copy_page
        csrf_secretary = await page_csrf(secretary, copy_url)
        refused = await secretary.post(f"{copy_url}/withdraw", data={"csrf": csrf_secretary})
        assert refused.status_code == 409
        assert "que pour tout le groupe" in shown(refused)
        # Not a member of the group: its pages are refused.
        assert (await secretary.get(f"/staff/groups/{group_id}")).status_code == 403

        csrf = await page_csrf(member, broadcast_url)
        corrected = await member.post(f"{broadcast_url}/correct", data={
            "csrf": csrf, "category": "alerte", "title": "Tempête : vigilance orange",
            "body": FORM["body"]})
        assert corrected.status_code == 303, corrected.text
        for insee in communes[:2]:
            found = next(n for n in office.store.view.all(insee)
                         if n.broadcast_id == broadcast_id)
            assert found.title == "Tempête : vigilance orange"

        withdrawn = await member.post(f"{broadcast_url}/withdraw", data={"csrf": csrf})
        assert withdrawn.status_code == 303
        page = shown(await member.get(withdrawn.headers["location"]))
        assert "L'avis est retiré dans toutes les communes du groupe." in page
        assert "Retiré</span> : 3 communes" in page
        for insee in communes:
            public = (await member.get(f"/api/v1/communes/{insee}/notices")).json()
            assert public["notices"] == []


async def test_group_pages_need_the_group_and_its_token(office: Office) -> None:
    group_id, _, name = await group_member(office, 1)
    async with office.browser() as member:
        assert (await member.get(f"/staff/groups/{group_id}")).status_code == 303
        assert (await sign_in(member, name)).status_code == 303
        assert (await member.get("/staff/groups/pas-le-mien")).status_code == 403
        refused = await member.post(f"/staff/groups/{group_id}/publish",
                                    data=FORM | {"csrf": "faux"})
        assert refused.status_code == 403
        assert office.store.view.all(office.insee) == []
