"""The staff pages against a real nats-server: compose, preview, publish, correct, withdraw."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from schemas.notice import PARIS
from tests.helpers import eventually, paris_local
from tests.integration.notices.helpers import random_insee
from tests.integration.staff.helpers import PASSWORD, Office, csrf_of, page_csrf, shown, sign_in

pytestmark = pytest.mark.integration

DRAFT = {"category": "travaux", "title": "Route de Gray fermée",
         "body": "Travaux du 3 au 5 décembre.", "when": "now", "publish_at": "",
         "starts_at": "", "ends_at": "", "link_url_0": "https://example.org/arrete.pdf",
         "link_label_0": "L'arrêté", "link_url_1": "", "link_label_1": "",
         "link_url_2": "", "link_label_2": "", "key": "k-1"}


@asynccontextmanager
async def signed_in(office: Office, who: str = "anne") -> AsyncIterator[httpx.AsyncClient]:
    async with office.browser() as http:
        assert (await sign_in(http, f"{who}-{office.insee}")).status_code == 303
        yield http


def as_multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """Form fields as a multipart body, the way the compose form (enctype) sends them."""
    return {"files": {k: (None, str(v)) for k, v in fields.items()}}


async def publish_through_the_form(office: Office, http: httpx.AsyncClient,
                                   **fields: Any) -> httpx.Response:
    compose = await http.get(f"/staff/communes/{office.insee}/compose")
    assert compose.status_code == 200
    draft = DRAFT | {"csrf": csrf_of(compose.text)} | fields
    preview = await http.post(f"/staff/communes/{office.insee}/preview", **as_multipart(draft))
    assert preview.status_code == 200, preview.text
    assert "Aperçu avant publication" in shown(preview)
    return await http.post(f"/staff/communes/{office.insee}/publish",
                           **as_multipart(draft | {"action": "publish"}))


async def test_compose_preview_publish_correct_and_withdraw(office: Office) -> None:
    async with signed_in(office) as http:
        published = await publish_through_the_form(office, http)
        assert published.status_code == 303, published.text
        url = published.headers["location"].split("?")[0]
        notice_id = url.rsplit("/", 1)[1]
        found = office.store.get(office.insee, notice_id)
        assert found is not None
        notice = found[1]
        assert notice.title == "Route de Gray fermée"
        assert notice.author == f"Anne {office.insee}"
        assert [str(x.url) for x in notice.links] == ["https://example.org/arrete.pdf"]
        page = await http.get(published.headers["location"])
        assert "L'avis est publié" in shown(page) and "Publié" in shown(page)

        listing = await http.get(f"/staff/communes/{office.insee}")
        assert f'data-notice-id="{notice_id}"' in shown(listing)

        # Correct: a new version, sent again, once what goes out is shown and confirmed.
        token = csrf_of(page.text)
        correction = DRAFT | {"csrf": token, "version": "1",
                              "title": "Route de Gray fermée jusqu'au 6"}
        asked = await http.post(f"{url}/correct", data=correction)
        assert asked.status_code == 200, asked.text
        assert "Envoyer la correction ?" in shown(asked)
        assert "Confirmer et envoyer" in shown(asked)
        found = office.store.get(office.insee, notice_id)
        assert found is not None and found[1].version == 1
        corrected = await http.post(f"{url}/correct", data=correction | {"confirm": "1"})
        assert corrected.status_code == 303, corrected.text
        found = office.store.get(office.insee, notice_id)
        assert found is not None and found[1].version == 2
        assert found[1].state.value == "corrected"
        assert found[1].title == "Route de Gray fermée jusqu'au 6"

        # A correction made from version 1 again is refused: someone moved it on.
        stale = await http.post(f"{url}/correct", data=DRAFT | {
            "csrf": token, "version": "1", "title": "Autre titre"})
        assert stale.status_code == 412
        assert "modifié entre-temps" in shown(stale)

        asked = await http.post(f"{url}/withdraw", data={"csrf": token})
        assert asked.status_code == 200
        assert "Retirer l'avis ?" in shown(asked) and "Confirmer le retrait" in shown(asked)
        found = office.store.get(office.insee, notice_id)
        assert found is not None and found[1].state.value == "corrected"
        withdrawn = await http.post(f"{url}/withdraw",
                                    data={"csrf": token, "confirm": "1", "version": "2"})
        assert withdrawn.status_code == 303
        # Held a minute, with a button to undo it (tests/integration/staff/test_staff_comfort.py), then done.
        office.clock.now += timedelta(seconds=61)
        await eventually(lambda: office.store.get(office.insee, notice_id)[1].state.value  # type: ignore[index]
                         == "withdrawn", what="the withdrawal once its minute is over")
        page = await http.get(url)
        assert "Retiré" in shown(page) and "Enregistrer la correction" not in shown(page)


async def test_the_form_says_in_french_what_is_wrong_and_keeps_what_was_typed(
    office: Office,
) -> None:
    async with signed_in(office) as http:
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        reply = await http.post(f"/staff/communes/{office.insee}/preview", **as_multipart(
            DRAFT | {"csrf": token, "title": "", "body": "Texte gardé",
                     "when": "later", "publish_at": "",
                     "starts_at": paris_local(5, now=office.clock.now),
                     "ends_at": paris_local(4, now=office.clock.now)}))
        assert reply.status_code == 422
        assert "Titre : Ce champ est obligatoire." in shown(reply)
        assert "Choisissez la date et l'heure de publication." in shown(reply)
        assert "Texte gardé" in shown(reply)
        assert office.store.view.all(office.insee) == []


async def test_a_scheduled_notice_waits_and_shows_as_scheduled(office: Office) -> None:
    later = (office.clock.now + timedelta(days=2)).astimezone(PARIS)
    async with signed_in(office) as http:
        reply = await publish_through_the_form(
            office, http, when="later", publish_at=later.strftime("%Y-%m-%dT%H:%M"))
        assert reply.status_code == 303
        assert reply.headers["location"].endswith("?ok=scheduled")
        listing = await http.get(f"/staff/communes/{office.insee}")
        assert 'data-state="scheduled"' in shown(listing)
        assert office.store.view.all(office.insee) == []


async def test_a_form_without_or_with_a_wrong_csrf_token_changes_nothing(office: Office) -> None:
    async with signed_in(office) as http:
        for token in (None, "forged-token"):
            fields = DRAFT | ({"csrf": token} if token else {}) | {"action": "publish"}
            reply = await http.post(f"/staff/communes/{office.insee}/publish",
                                    **as_multipart(fields))
            assert reply.status_code == 403
            assert "Formulaire refusé" in shown(reply)
        assert office.store.view.all(office.insee) == []
        assert [n for n in office.store.all_scheduled() if n.commune == office.insee] == []


async def test_another_communes_pages_and_notices_are_refused(office: Office) -> None:
    other = random_insee()
    await office.store.commune_registry.add(other, "Autreville")
    _, token = await office.store.staff_registry.add(f"Claire {other}", (other,))
    reply = httpx.AsyncClient(transport=office.transport, base_url="https://test")
    async with reply as api:
        made = await api.post(f"/api/v1/communes/{other}/notices",
                              headers={"Authorization": f"Bearer {token}"},
                              json={"category": "information", "title": "Chez nous",
                                    "body": "Rien à voir."})
        assert made.status_code == 201
    their_id = made.json()["id"]
    async with signed_in(office) as http:
        own = await page_csrf(http, f"/staff/communes/{office.insee}")
        assert (await http.get(f"/staff/communes/{other}")).status_code == 403
        assert (await http.get(f"/staff/communes/{other}/notices/{their_id}")).status_code == 403
        # Through one's own commune, the other's notice does not exist.
        assert (await http.get(f"/staff/communes/{office.insee}/notices/{their_id}")
                ).status_code == 404
        refused = await http.post(f"/staff/communes/{other}/notices/{their_id}/withdraw",
                                  data={"csrf": own})
        assert refused.status_code == 403
        refused = await http.post(f"/staff/communes/{office.insee}/notices/{their_id}/withdraw",
                                  data={"csrf": own})
        assert refused.status_code == 404
    found = office.store.get(other, their_id)
    assert found is not None and found[1].state.value == "published"


async def test_staff_listing_as_json_every_state_paged(office: Office) -> None:
    async with office.browser() as api:
        url = f"/api/v1/communes/{office.insee}/notices"
        ids = []
        for title in ("Un", "Deux", "Trois"):
            made = await api.post(url, headers=office.auth, json={
                "category": "information", "title": title, "body": "Texte."})
            ids.append(made.json()["id"])
        later = (office.clock.now + timedelta(days=1)).isoformat()
        scheduled = await api.post(url, headers=office.auth, json={
            "category": "information", "title": "Plus tard", "body": "Texte.",
            "publish_at": later})
        await api.post(f"{url}/{ids[0]}/withdraw", headers=office.auth)

        listing = await api.get(f"/api/v1/communes/{office.insee}/staff/notices?limit=2",
                                headers=office.auth)
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["total"] == 4
        assert body["notices"][0]["notice"]["id"] == scheduled.json()["id"]
        assert body["notices"][0]["notice"]["state"] == "scheduled"
        assert "reach" in body["notices"][0]
        assert body["next"].endswith("limit=2&offset=2")
        rest = await api.get(f"/api/v1/communes/{office.insee}/staff/notices?limit=2&offset=2",
                             headers=office.auth)
        states = {n["notice"]["id"]: n["notice"]["state"] for n in rest.json()["notices"]}
        states |= {n["notice"]["id"]: n["notice"]["state"] for n in body["notices"]}
        assert states[ids[0]] == "withdrawn" and states[ids[1]] == "published"
        only = await api.get(f"/api/v1/communes/{office.insee}/staff/notices?state=withdrawn",
                             headers=office.auth)
        assert [n["notice"]["id"] for n in only.json()["notices"]] == [ids[0]]
        published = await api.get(
            f"/api/v1/communes/{office.insee}/staff/notices?state=published&limit=1",
            headers=office.auth)
        assert published.json()["total"] == 2
        assert published.json()["next"].endswith("limit=1&offset=1&state=published")
        assert (await api.get(f"/api/v1/communes/{office.insee}/staff/notices")
                ).status_code == 401


async def test_the_password_is_never_stored_in_clear(office: Office) -> None:
    account = await office.store.staff_registry.account(f"anne-{office.insee}")
    assert account is not None
    assert PASSWORD not in account.model_dump_json()
    assert account.password_hash.startswith("$argon2id$")


async def test_a_file_is_attached_by_its_content_and_goes_with_the_notice(
    office: Office,
) -> None:
    pdf = b"%PDF-1.4\n" + b"0" * 2_000_000 + b"\n%%EOF\n"  # over the JSON body limit
    async with signed_in(office) as http:
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        fields = {k: (None, str(v)) for k, v in (DRAFT | {"csrf": token}).items()}
        refused = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("arrete.pdf", b"not a pdf at all", "application/pdf")})
        assert refused.status_code == 422
        assert "ni une image (PNG, JPEG, WebP) ni un PDF" in shown(refused)

        preview = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("Arrêté n°12.pdf", pdf, "application/octet-stream")})
        assert preview.status_code == 200, preview.text
        assert "Arrêté n°12.pdf" in shown(preview)
        # No channel runs in this test: each preview says so, the page still shows.
        assert shown(preview).count("Aperçu indisponible") == 5
        ids = re.findall(r'name="attachment_ids" value="([a-z0-9]+)"', preview.text)
        assert len(ids) == 1
        published = await http.post(f"/staff/communes/{office.insee}/publish", **as_multipart(
            DRAFT | {"csrf": token, "attachment_ids": ids[0], "action": "publish",
                     "key": "with-file"}))
        assert published.status_code == 303, published.text
        notice_id = published.headers["location"].split("?")[0].rsplit("/", 1)[1]
    found = office.store.get(office.insee, notice_id)
    assert found is not None
    (attachment,) = found[1].attachments
    assert attachment.id == ids[0] and attachment.media_type == "application/pdf"
    assert attachment.size == len(pdf) and attachment.name == "Arrêté n°12.pdf"
    async with office.browser() as anyone:
        download = await anyone.get(str(attachment.url).replace("https://crieur.example", ""))
        assert download.status_code == 200 and download.content == pdf


async def test_a_member_of_several_communes_chooses_one(office: Office) -> None:
    other = random_insee()
    await office.store.commune_registry.add(other, "Autreville")
    name = f"Denise {office.insee}"
    await office.store.staff_registry.add(name, (office.insee, other))
    await office.store.staff_registry.set_password(name, PASSWORD)
    async with office.browser() as http:
        assert (await sign_in(http, name)).status_code == 303
        home = await http.get("/staff")
        assert home.status_code == 200
        assert f'href="/staff/communes/{other}"' in home.text
        assert f'href="/staff/communes/{office.insee}"' in home.text
        assert (await http.get(f"/staff/communes/{other}")).status_code == 200


async def test_the_listing_pages_by_twenty(office: Office) -> None:
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        for i in range(21):
            made = await api.post(url, headers=office.auth, json={
                "category": "information", "title": f"Avis {i}", "body": "Texte."})
            assert made.status_code == 201
    async with signed_in(office) as http:
        first = await http.get(f"/staff/communes/{office.insee}")
        assert first.text.count("data-notice-id=") == 20
        assert "Tous les avis (21)" in shown(first) and 'href="?page=2"' in first.text
        second = await http.get(f"/staff/communes/{office.insee}?page=2")
        assert second.text.count("data-notice-id=") == 1
        assert 'href="?page=1"' in second.text and "?page=3" not in second.text
        assert (await http.get(f"/staff/communes/{office.insee}?page=0")).status_code == 404
