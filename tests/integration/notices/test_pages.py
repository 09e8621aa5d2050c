"""The residents' pages, server-rendered in French, against a real nats-server."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from tests.integration.notices.helpers import FrontDoor, channel, reply

pytestmark = pytest.mark.integration


class Page(HTMLParser):
    """What a resident's browser would see: the text, the links, the html lang."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.lang = ""
        self.scripts: list[str] = []
        self.hidden: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        if tag == "script":
            self.scripts.append(a.get("src") or "inline")
        if "hidden" in a and a.get("id"):
            self.hidden.append(a["id"] or "")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


async def publish(door: FrontDoor, **fields: Any) -> dict[str, Any]:
    draft = {"category": "information", "title": "Avis", "body": "Texte."} | fields
    reply = await door.http.post(door.notices_url(), json=draft, headers=door.auth)
    assert reply.status_code == 201, reply.text
    notice: dict[str, Any] = reply.json()
    return notice


async def get_page(door: FrontDoor, path: str, status: int = 200) -> Page:
    reply = await door.http.get(path)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    page = Page(reply.text)
    assert page.lang == "fr"
    # The pages work without JavaScript: only the offer of notifications in this browser
    # needs it, and its script shows it (services/webpush), hidden until then.
    assert page.scripts in ([], ["/api/v1/webpush/page.js"]), "the pages work without JavaScript"
    if page.scripts:
        assert "webpush" in page.hidden
    return page


async def test_the_commune_page_lists_current_notices_alerts_first_each_linked(
    front_door: FrontDoor,
) -> None:
    door = front_door
    fete = await publish(door, category="evenement", title="Fête du village <samedi>",
                         body="Bal & <b>buvette</b>.")
    alert = await publish(door, category="alerte", title="Orage : restez chez vous")
    ending = await publish(door, title="Marché annulé",
                           ends_at=(door.clock.now + timedelta(hours=1)).isoformat())
    page = await get_page(door, f"/communes/{door.insee}")
    text = page.all_text
    assert "Avis de la mairie de Lavoncourt" in text
    assert text.index("Orage : restez chez vous") < text.index("Fête du village <samedi>")
    # Staff text is escaped: shown as typed, never taken for markup.
    assert "Bal & <b>buvette</b>." in text
    for notice in (fete, alert, ending):
        assert f"/communes/{door.insee}/notices/{notice['id']}" in page.links
    assert f"/communes/{door.insee}/affiche" in page.links

    door.clock.now += timedelta(hours=2)
    later = await get_page(door, f"/communes/{door.insee}")
    assert "Marché annulé" not in later.all_text, "an ended notice is no longer current"
    assert f"/communes/{door.insee}/notices/{ending['id']}" not in later.links


async def test_a_notice_page_says_when_it_was_withdrawn_or_has_ended(
    front_door: FrontDoor,
) -> None:
    door = front_door
    notice = await publish(door, category="travaux", title="Route de Gray fermée",
                           body="Du 2 au 4 décembre.\nDéviation par Vellexon.",
                           ends_at=(door.clock.now + timedelta(days=3)).isoformat(),
                           links=[{"url": "https://lavoncourt.fr/deviation",
                                   "label": "Plan de la déviation"}])
    path = f"/communes/{door.insee}/notices/{notice['id']}"
    page = await get_page(door, path)
    assert "Route de Gray fermée" in page.all_text
    assert "Déviation par Vellexon." in page.all_text
    assert "Travaux" in page.all_text
    assert "https://lavoncourt.fr/deviation" in page.links
    assert "retiré" not in page.all_text and "terminé" not in page.all_text

    door.clock.now += timedelta(days=4)
    expired = await get_page(door, path)
    assert "Cet avis est terminé depuis le" in expired.all_text
    door.clock.now -= timedelta(days=4)

    reply = await door.http.post(f"{door.notices_url()}/{notice['id']}/withdraw",
                                 headers=door.auth)
    assert reply.status_code == 200
    withdrawn = await get_page(door, path)
    assert "Cet avis a été retiré par la mairie le" in withdrawn.all_text
    assert "Route de Gray fermée" in withdrawn.all_text


@pytest.mark.parametrize("path", [
    "/communes/{insee}/notices/abcdefgh12345678",   # could be an id, is not one
    "/communes/{insee}/notices/a b",                # cannot be an id
    "/communes/{insee}/nimporte/quoi",
    "/communes/99999",                              # not registered
    "/communes/9",                                  # not an INSEE code
    "/communes/99999/affiche",
    "/communes/99999/fil",
])
async def test_an_unknown_page_is_a_french_404(front_door: FrontDoor, path: str) -> None:
    page = await get_page(front_door, path.format(insee=front_door.insee), status=404)
    assert "Page introuvable" in page.all_text


async def test_a_notice_withdrawn_before_its_time_never_existed_for_residents(
    front_door: FrontDoor,
) -> None:
    door = front_door
    later = (door.clock.now + timedelta(days=1)).isoformat()
    notice = await publish(door, title="Pas encore", publish_at=later)
    path = f"/communes/{door.insee}/notices/{notice['id']}"
    await get_page(door, path, status=404)
    reply = await door.http.post(f"{door.notices_url()}/{notice['id']}/withdraw",
                                 headers=door.auth)
    assert reply.status_code == 200
    await get_page(door, path, status=404)


async def test_the_feed_link_leads_to_a_french_page_that_explains_the_feed(
        front_door: FrontDoor) -> None:
    """Opened in a browser, the Atom feed shows raw XML: the commune page links to a page
    that says what it is and gives its address to copy (issue #26)."""
    insee = front_door.insee
    commune = (await front_door.http.get(f"/communes/{insee}")).text
    assert f'<a href="/communes/{insee}/fil">' in commune
    assert f'<a href="/api/v1/communes/{insee}/feed.atom">' not in commune
    explained = await front_door.http.get(f"/communes/{insee}/fil")
    assert explained.status_code == 200
    assert explained.headers["content-type"].startswith("text/html")
    feed = f"https://crieur.example/api/v1/communes/{insee}/feed.atom"
    assert f'value="{feed}"' in explained.text
    assert "lecteur de flux" in explained.text and f'href="/communes/{insee}"' in explained.text
    # The feed itself is what readers already know, still Atom.
    atom = await front_door.http.get(feed.removeprefix("https://crieur.example"))
    assert atom.status_code == 200 and "<feed xmlns=\"http://www.w3.org/2005/Atom\"" in atom.text


async def test_the_poster_has_a_qr_code_to_the_commune_page(front_door: FrontDoor) -> None:
    reply = await front_door.http.get(f"/communes/{front_door.insee}/affiche")
    assert reply.status_code == 200
    page = Page(reply.text)
    url = f"https://crieur.example/communes/{front_door.insee}"
    assert url in page.all_text
    assert re.search(r'<svg role="img" aria-label="Code QR vers ' + re.escape(url), reply.text)
    assert "size: A4" in reply.text
    assert "Par e-mail" in page.all_text and "Par SMS" in page.all_text


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_the_email_form_reaches_the_email_channel_as_its_json_api(
    front_door: FrontDoor,
) -> None:
    door = front_door
    form = "email=jeanne%40example.org&categories=alerte&categories=travaux"
    async with channel(door, "email", lambda r: reply(202, {"status": "pending"})) as seen:
        answer = await door.http.post(f"/communes/{door.insee}/abonnement/email",
                                      content=form, headers=FORM)
    assert answer.status_code == 200, answer.text
    assert "Un e-mail de confirmation vient de vous être envoyé." in Page(answer.text).all_text
    [request] = seen
    assert (request.method, request.path) == ("POST", "/api/v1/subscriptions/email")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body_bytes()) == {
        "email": "jeanne@example.org",
        "follows": [{"commune": door.insee, "categories": ["travaux", "alerte"]}]}


async def test_the_email_form_shows_the_channels_refusal_in_french(front_door: FrontDoor) -> None:
    door = front_door
    refusal = {"error": {"code": "invalid", "message": "email: not an address",
                         "fields": [{"field": "email", "message": "not an address"}]}}
    async with channel(door, "email", lambda r: reply(422, refusal)):
        answer = await door.http.post(f"/communes/{door.insee}/abonnement/email",
                                      content="email=jeanne&categories=alerte", headers=FORM)
    assert answer.status_code == 422
    page = Page(answer.text)
    assert "Cette adresse e-mail ne semble pas valide." in page.all_text
    assert 'value="jeanne"' in answer.text, "what the resident typed is kept"

    none_chosen = await door.http.post(f"/communes/{door.insee}/abonnement/email",
                                       content="email=a%40b.fr", headers=FORM)
    assert none_chosen.status_code == 422
    assert "Cochez au moins un type d'avis." in Page(none_chosen.text).all_text


async def test_with_no_channel_running_the_form_says_so_in_french(front_door: FrontDoor) -> None:
    answer = await front_door.http.post(f"/communes/{front_door.insee}/abonnement/email",
                                        content="email=a%40b.fr&categories=alerte", headers=FORM)
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert "Service momentanément indisponible" in Page(answer.text).all_text


async def test_the_sms_forms_subscribe_then_confirm_with_the_code(front_door: FrontDoor) -> None:
    door = front_door

    def sms(request: ChannelHttpRequest) -> ChannelHttpReply:
        body = json.loads(request.body_bytes())
        if request.path.endswith("/confirm"):
            if body["code"] != "123456":
                return reply(400, {"error": {"code": "bad_code", "message": "wrong code"}})
            return reply(200, {"status": "confirmed"})
        return reply(202, {"status": "pending"})

    async with channel(door, "sms", sms) as seen:
        asked = await door.http.post(f"/communes/{door.insee}/abonnement/sms",
                                     content="phone=06+12+34+56+78&categories=alerte",
                                     headers=FORM)
        assert asked.status_code == 200, asked.text
        assert "Un code vous a été envoyé par SMS" in Page(asked.text).all_text
        assert f'action="/communes/{door.insee}/abonnement/sms/confirmer"' in asked.text
        wrong = await door.http.post(f"/communes/{door.insee}/abonnement/sms/confirmer",
                                     content="phone=06+12+34+56+78&code=000000", headers=FORM)
        assert wrong.status_code == 422
        assert "Ce code n'est pas le bon" in Page(wrong.text).all_text
        right = await door.http.post(f"/communes/{door.insee}/abonnement/sms/confirmer",
                                     content="phone=06+12+34+56+78&code=123+456", headers=FORM)
        assert right.status_code == 200
        assert "Vous recevrez désormais les avis de Lavoncourt par SMS." in Page(right.text).all_text
    assert [r.path for r in seen] == ["/api/v1/subscriptions/sms",
                                      "/api/v1/subscriptions/sms/confirm",
                                      "/api/v1/subscriptions/sms/confirm"]
    assert json.loads(seen[0].body_bytes()) == {
        "phone": "06 12 34 56 78", "follows": [{"commune": door.insee, "categories": ["alerte"]}]}
    assert json.loads(seen[2].body_bytes()) == {"phone": "06 12 34 56 78", "code": "123456"}


async def test_feed_and_cap_link_to_the_public_notice_page(front_door: FrontDoor) -> None:
    door = front_door
    notice = await publish(door, title="Lien public")
    public = f"https://crieur.example/communes/{door.insee}/notices/{notice['id']}"
    feed = (await door.http.get(f"/api/v1/communes/{door.insee}/feed.atom")).text
    assert f'href="{public}"' in feed
    cap = (await door.http.get(f"{door.notices_url()}/{notice['id']}/cap.xml")).text
    assert f"<web>{public}</web>" in cap
