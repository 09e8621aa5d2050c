"""What a PanneauPocket user expects of the back-office (issue 26): duplicate a notice, undo
a withdrawal within its minute, and a colleague who resets a forgotten password."""

from __future__ import annotations

import asyncio
import html
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from schemas.notice import NoticeState
from tests.helpers import eventually
from tests.integration.staff.helpers import PASSWORD, Office, csrf_of, shown, sign_in

pytestmark = pytest.mark.integration


@asynccontextmanager
async def signed_in(office: Office, who: str = "anne") -> AsyncIterator[httpx.AsyncClient]:
    async with office.browser() as http:
        assert (await sign_in(http, f"{who}-{office.insee}")).status_code == 303
        yield http


def as_multipart(fields: dict[str, Any]) -> dict[str, Any]:
    return {"files": {k: (None, str(v)) for k, v in fields.items()}}


def form_fields(page: str) -> dict[str, str]:
    """The fields a browser would send from the page's first form with a preview button."""
    form = page[page.index('action="/staff/communes/'):]
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        fields.setdefault(name, value)
    for name, value in re.findall(r'<input type="(?:text|url|datetime-local)" id="[^"]*" '
                                  r'name="([^"]+)"[^>]*value="([^"]*)"', form):
        fields[name] = value
    title = re.search(r'name="title"[^>]*value="([^"]*)"', form)
    body = re.search(r'<textarea[^>]*name="body"[^>]*>([^<]*)</textarea>', form)
    category = re.search(r'<option value="([^"]+)" selected>', form)
    assert title and body and category, "the compose form is not filled in"
    fields |= {"title": title[1], "body": body[1], "category": category[1], "when": "now"}
    return {k: html.unescape(v) for k, v in fields.items()}


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 120, 40)).save(out, "PNG")
    return out.getvalue()


async def published_with_a_photo(office: Office, api: httpx.AsyncClient) -> dict[str, Any]:
    upload = await api.post(f"/api/v1/communes/{office.insee}/attachments", headers=office.auth,
                            files={"file": ("Déviation.png", photo(), "image/png")})
    assert upload.status_code == 201, upload.text
    reply = await api.post(f"/api/v1/communes/{office.insee}/notices", headers=office.auth, json={
        "category": "travaux", "title": "Route de Gray fermée",
        "body": "Travaux du pont.\n\nDéviation par Vellexon.",
        "ends_at": (office.clock.now - timedelta(minutes=1) + timedelta(days=3)).isoformat(),
        "links": [{"url": "https://example.org/arrete.pdf", "label": "L'arrêté"}],
        "attachments": [upload.json()["id"],
                        {"name": "Plan sur le site du département",
                         "url": "https://example.org/plan.pdf",
                         "media_type": "application/pdf"}]})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


# -- duplicate ---------------------------------------------------------------------------------

async def test_dupliquer_opens_a_new_draft_filled_in_that_publishes_as_a_new_notice(
        office: Office) -> None:
    async with office.browser() as api, signed_in(office) as http:
        original = await published_with_a_photo(office, api)
        page = await http.get(f"/staff/communes/{office.insee}/notices/{original['id']}")
        assert 'id="dupliquer"' in page.text and "Dupliquer" in page.text

        copy = await http.get(
            f"/staff/communes/{office.insee}/notices/{original['id']}/duplicate")
        assert copy.status_code == 200
        text = shown(copy)
        assert "Nouvel avis" in text and "Copie de l’avis « Route de Gray fermée »" in text
        # What the form cannot carry is named, not silently dropped.
        assert "la pièce jointe Plan sur le site du département" in text
        assert "Déviation.png" in text  # the photo is attached again
        fields = form_fields(copy.text)
        assert fields["title"] == "Route de Gray fermée"
        assert fields["body"] == "Travaux du pont.\n\nDéviation par Vellexon."
        assert fields["category"] == "travaux"
        assert fields["link_url_0"] == "https://example.org/arrete.pdf"
        assert fields["link_label_0"] == "L'arrêté"
        assert fields["attachment_ids"] == original["attachments"][0]["id"]
        assert fields["ends_at"], "a future end date is kept"
        # Nothing is stored by opening the copy.
        assert len(office.store.view.all(office.insee)) == 1

        fields["title"] = "Route de Gray fermée la semaine prochaine"
        preview = await http.post(f"/staff/communes/{office.insee}/preview",
                                  **as_multipart(fields))
        assert preview.status_code == 200, shown(preview)
        done = await http.post(f"/staff/communes/{office.insee}/publish",
                               **as_multipart(fields | {"action": "publish"}))
        assert done.status_code == 303, shown(done)
        new_id = done.headers["location"].split("?")[0].rsplit("/", 1)[1]
        assert new_id != original["id"]
        found = office.store.get(office.insee, new_id)
        assert found is not None
        new = found[1]
        assert new.title == "Route de Gray fermée la semaine prochaine"
        assert new.body == original["body"] and new.category.value == "travaux"
        assert [a.id for a in new.images] == [original["attachments"][0]["id"]]
        assert new.author == f"Anne {office.insee}"
        first = office.store.get(office.insee, original["id"])
        assert first is not None and first[1].version == 1
        assert first[1].title == "Route de Gray fermée"


async def test_a_copy_leaves_out_the_dates_already_past(office: Office) -> None:
    async with office.browser() as api, signed_in(office) as http:
        reply = await api.post(f"/api/v1/communes/{office.insee}/notices", headers=office.auth,
                               json={"category": "evenement", "title": "Marché de Noël",
                                     "body": "Place de la mairie.",
                                     "ends_at": (office.clock.now + timedelta(hours=2))
                                     .isoformat()})
        assert reply.status_code == 201
        office.clock.now += timedelta(hours=3)  # the market is over
        copy = await http.get(
            f"/staff/communes/{office.insee}/notices/{reply.json()['id']}/duplicate")
        assert copy.status_code == 200
        assert "la date de fin, passée" in shown(copy)
        assert form_fields(copy.text).get("ends_at", "") == ""
        unknown = await http.get(f"/staff/communes/{office.insee}/notices/"
                                 "0123456789abcdef/duplicate")
        assert unknown.status_code == 404 and "Avis introuvable" in shown(unknown)


# -- undo a withdrawal -------------------------------------------------------------------------

async def confirm_withdrawal(http: httpx.AsyncClient, url: str) -> httpx.Response:
    page = await http.get(url)
    asked = await http.post(f"{url}/withdraw", data={"csrf": csrf_of(page.text)})
    assert asked.status_code == 200
    assert "Vous aurez 1 minute pour annuler le retrait" in shown(asked)
    return await http.post(f"{url}/withdraw", data={"csrf": csrf_of(page.text), "confirm": "1",
                                                     "version": "1"})


async def test_a_withdrawal_waits_a_minute_and_annuler_le_retrait_keeps_the_notice(
        office: Office) -> None:
    async with office.browser() as api, signed_in(office) as http:
        notice = await published_with_a_photo(office, api)
        url = f"/staff/communes/{office.insee}/notices/{notice['id']}"
        held = await confirm_withdrawal(http, url)
        assert held.status_code == 303
        assert held.headers["location"].endswith("?ok=withdrawal-held")
        page = await http.get(held.headers["location"])
        text = shown(page)
        assert "Le retrait est enregistré" in text and "Retrait en attente" in text
        assert "Cet avis sera retiré dans 1 minute" in text
        assert "Annuler le retrait" in text and "Retirer l'avis" not in text
        # Nothing went out: the notice is still published, on the public page too.
        found = office.store.get(office.insee, notice["id"])
        assert found is not None and found[1].state is NoticeState.PUBLISHED
        public = await api.get(f"/communes/{office.insee}/notices/{notice['id']}")
        assert 'data-state="published"' in public.text

        undone = await http.post(f"{url}/undo-withdraw", data={"csrf": csrf_of(page.text)})
        assert undone.status_code == 303
        assert undone.headers["location"].endswith("?ok=withdrawal-undone")
        after = shown(await http.get(undone.headers["location"]))
        assert "Le retrait est annulé : rien n'a été envoyé" in after
        assert "Retirer l'avis" in after and "Retrait en attente" not in after

        # The minute passes: nothing happens, however long the loop runs.
        office.clock.now += timedelta(seconds=90)
        await asyncio.sleep(1.0)  # five rounds of the 0.2 s loop
        found = office.store.get(office.insee, notice["id"])
        assert found is not None and found[1].state is NoticeState.PUBLISHED
        assert found[1].version == 1


async def test_a_withdrawal_not_undone_goes_after_its_minute_and_then_cannot_be_undone(
        office: Office) -> None:
    async with office.browser() as api, signed_in(office) as http:
        notice = await published_with_a_photo(office, api)
        url = f"/staff/communes/{office.insee}/notices/{notice['id']}"
        assert (await confirm_withdrawal(http, url)).status_code == 303
        page = await http.get(url)
        office.clock.now += timedelta(seconds=30)
        found = office.store.get(office.insee, notice["id"])
        assert found is not None and found[1].state is NoticeState.PUBLISHED
        office.clock.now += timedelta(seconds=31)

        def withdrawn() -> bool:
            now = office.store.get(office.insee, notice["id"])
            return now is not None and now[1].state is NoticeState.WITHDRAWN

        await eventually(withdrawn, what="the withdrawal once its minute is over")
        done = office.store.get(office.insee, notice["id"])
        assert done is not None and done[1].author == f"Anne {office.insee}"
        late = await http.post(f"{url}/undo-withdraw", data={"csrf": csrf_of(page.text)})
        assert late.status_code == 409
        assert "Trop tard pour annuler" in shown(late)
        assert "Retiré" in shown(late) and "Annuler le retrait" not in shown(late)


async def test_an_undo_needs_the_form_token_and_the_commune(office: Office) -> None:
    async with office.browser() as api, signed_in(office) as http:
        notice = await published_with_a_photo(office, api)
        url = f"/staff/communes/{office.insee}/notices/{notice['id']}"
        assert (await confirm_withdrawal(http, url)).status_code == 303
        forged = await http.post(f"{url}/undo-withdraw", data={"csrf": "x"})
        assert forged.status_code == 403
        assert "Retrait en attente" in shown(await http.get(url))


# -- a colleague's forgotten password ----------------------------------------------------------

TEMPORARY = "provisoire du lundi 42"
CHOSEN = "ma phrase secrète à moi"


async def test_a_colleague_gives_a_temporary_password_that_must_be_changed_first(
        office: Office) -> None:
    bruno = f"bruno-{office.insee}"
    async with office.browser() as brunos_desk, signed_in(office) as anne:
        assert (await sign_in(brunos_desk, bruno)).status_code == 303
        assert (await brunos_desk.get(f"/staff/communes/{office.insee}")).status_code == 200

        team = await anne.get(f"/staff/communes/{office.insee}/team")
        assert team.status_code == 200
        text = shown(team)
        assert f"Bruno {office.insee}" in text and f"Anne {office.insee} (vous)" in text
        assert "Mot de passe provisoire pour Bruno" in text
        # Too short: said in French, nothing changed.
        short = await anne.post(f"/staff/communes/{office.insee}/team/{bruno}/password",
                                data={"csrf": csrf_of(team.text), "password": "court"})
        assert short.status_code == 422
        assert "au moins 10 caractères" in shown(short)
        done = await anne.post(f"/staff/communes/{office.insee}/team/{bruno}/password",
                               data={"csrf": csrf_of(team.text), "password": TEMPORARY})
        assert done.status_code == 303
        told = shown(await anne.get(done.headers["location"]))
        assert f"Mot de passe provisoire enregistré pour Bruno {office.insee}" in told
        assert "doit choisir un nouveau mot de passe" in told
        # Anne stays signed in; every session Bruno had open is over.
        assert (await anne.get(f"/staff/communes/{office.insee}")).status_code == 200
        ended = await brunos_desk.get(f"/staff/communes/{office.insee}")
        assert ended.status_code == 303 and "/staff/login" in ended.headers["location"]

    async with office.browser() as http:
        assert (await sign_in(http, bruno)).status_code == 401  # the old one no longer
        arrived = await sign_in(http, bruno, TEMPORARY)
        assert arrived.status_code == 303 and arrived.headers["location"] == "/staff/password"
        # Nothing else opens before a password of their own.
        for path in (f"/staff/communes/{office.insee}", "/staff",
                     f"/staff/communes/{office.insee}/compose"):
            held = await http.get(path)
            assert held.status_code == 303 and held.headers["location"] == "/staff/password"
        form = await http.get("/staff/password")
        assert "Choisissez votre mot de passe" in shown(form)
        assert "mot de passe provisoire" in shown(form)
        mismatch = await http.post("/staff/password", data={
            "csrf": csrf_of(form.text), "new_password": CHOSEN, "new_password_again": "autre"})
        assert mismatch.status_code == 422 and "ne sont pas les mêmes" in shown(mismatch)
        same_again = await http.post("/staff/password", data={
            "csrf": csrf_of(form.text), "new_password": TEMPORARY,
            "new_password_again": TEMPORARY})
        assert same_again.status_code == 422 and "différent de l'actuel" in shown(same_again)
        chosen = await http.post("/staff/password", data={
            "csrf": csrf_of(form.text), "new_password": CHOSEN, "new_password_again": CHOSEN})
        assert chosen.status_code == 303
        assert "Votre nouveau mot de passe est enregistré" in shown(
            await http.get(chosen.headers["location"]))
        # Still signed in, and free to work.
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 200

    async with office.browser() as http:
        assert (await sign_in(http, bruno, TEMPORARY)).status_code == 401
        assert (await sign_in(http, bruno, CHOSEN)).status_code == 303
    account = await office.store.staff_registry.account(bruno)
    assert account is not None and not account.must_change_password


async def test_no_temporary_password_for_someone_with_other_communes_or_of_another_commune(
        office: Office) -> None:
    other = f"{(int(office.insee) + 1) % 100000:05d}"
    await office.store.commune_registry.add(other, "Autreville")
    await office.store.staff_registry.add(f"Chloé {office.insee}", (office.insee, other))
    await office.store.staff_registry.set_password(f"Chloé {office.insee}", "mot de passe de Chloé")
    chloe = f"chloe-{office.insee}"
    async with signed_in(office) as anne:
        team = await anne.get(f"/staff/communes/{office.insee}/team")
        assert "seul l'exploitant peut changer son mot de passe" in shown(team)
        refused = await anne.post(f"/staff/communes/{office.insee}/team/{chloe}/password",
                                  data={"csrf": csrf_of(team.text), "password": TEMPORARY})
        assert refused.status_code == 403
        assert "des communes ou des groupes que vous n'avez pas" in shown(refused)
        unknown = await anne.post(f"/staff/communes/{office.insee}/team/personne/password",
                                  data={"csrf": csrf_of(team.text), "password": TEMPORARY})
        assert unknown.status_code == 404 and "Personne introuvable" in shown(unknown)
        # Another commune's team is not Anne's to see.
        assert (await anne.get(f"/staff/communes/{other}/team")).status_code == 403
        forged = await anne.post(f"/staff/communes/{office.insee}/team/bruno-{office.insee}"
                                 "/password", data={"csrf": "x", "password": TEMPORARY})
        assert forged.status_code == 403
    # Nothing was changed for anyone.
    for user, password in ((chloe, "mot de passe de Chloé"), (f"bruno-{office.insee}", PASSWORD)):
        async with office.browser() as http:
            assert (await sign_in(http, user, password)).status_code == 303
