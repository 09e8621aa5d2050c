"""What a secretary met on the staff pages (issue #26): English inside French errors, a
« Programmer » button that publishes at once, a title cut unseen; and the site's root."""

from __future__ import annotations

import re

from tests.helpers import paris_local
from tests.integration.staff.helpers import Office, page_csrf, shown, sign_in

DRAFT = {"category": "travaux", "title": "Route de Gray fermée",
         "body": "Travaux du 3 au 5 décembre.", "when": "now", "publish_at": "",
         "starts_at": "", "ends_at": "", "link_url_0": "", "link_label_0": "",
         "link_url_1": "", "link_label_1": "", "link_url_2": "", "link_label_2": "",
         "key": "k-findings"}


async def preview(office: Office, **fields: str) -> tuple[int, str]:
    async with office.browser() as http:
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        form = {k: (None, v) for k, v in (DRAFT | {"csrf": token} | fields).items()}
        answer = await http.post(f"/staff/communes/{office.insee}/preview", files=form)
    return answer.status_code, shown(answer)


async def test_a_past_end_is_refused_in_french_only(office: Office) -> None:
    status, page = await preview(office, ends_at=paris_local(-1, "10:00", office.clock()))
    assert status == 422
    assert "Cette date de fin est déjà passée : pour arrêter un avis maintenant, retirez-le." in page
    text = re.sub(r"<[^>]+>", " ", page)  # what the secretary reads
    assert "ends_at" not in text and "in the past" not in text


async def test_a_chosen_date_already_past_publishes_at_once_and_says_so(office: Office) -> None:
    status, page = await preview(office, when="later",
                                 publish_at=paris_local(-1, "10:00", office.clock()))
    assert status == 200, page
    assert "est passée : publication dès maintenant" in page
    button = re.search(r'<button type="submit" name="action" value="publish">([^<]+)</button>',
                       page)
    assert button is not None and button.group(1) == "Publier"

    status, page = await preview(office, when="later",
                                 publish_at=paris_local(2, "10:00", office.clock()))
    assert status == 200
    assert 'value="publish">Programmer</button>' in page


async def test_a_long_title_is_kept_whole_and_counted(office: Office) -> None:
    title = ("Fermeture exceptionnelle de la route départementale 70 entre Lavoncourt et "
             "Gray pour travaux de réfection de la chaussée, déviation par Vellexon")
    assert len(title) > 120
    async with office.browser() as http:
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        compose = shown(await http.get(f"/staff/communes/{office.insee}/compose"))
    title_input = re.search(r'<input type="text" id="title"[^>]*>', compose)
    assert title_input is not None and "maxlength" not in title_input.group(0)
    status, page = await preview(office, title=title)
    assert status == 422
    assert f'value="{title}"' in page
    extra = len(title) - 120
    assert f"Trop long : au plus 120 caractères ({len(title)} écrits, {extra} de trop)." in page


async def test_the_sites_root_lists_the_communes_in_french(office: Office) -> None:
    async with office.browser() as http:
        for path in ("/", "/communes"):
            answer = await http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            page = shown(answer)
            assert '<html lang="fr">' in page
            assert f'<a href="/communes/{office.insee}">Lavoncourt</a>' in page
        api = await http.get("/api/v1/communes")
        assert api.headers["content-type"].startswith("application/json")
