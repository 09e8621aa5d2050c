"""A resident subscribes, confirms, changes their mind and leaves, through the front door."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import Signer
from nats.js.errors import NoKeysError

from crieur_dev.standins.smtp import SmtpStandin
from services.email.format import normalise_address
from services.email.service import EmailService
from services.email.subscribers import Subscriber
from tests.integration.email.helpers import (
    PUBLIC_URL,
    SECRET,
    URL,
    link_in,
    mails_to,
    subscription,
    text_of,
    wait_for,
)
from tests.integration.notices.helpers import Clock, FrontDoor

pytestmark = pytest.mark.integration

async def subscribe_and_confirm(door: FrontDoor, mailbox: SmtpStandin, address: str,
                                *categories: str) -> None:
    before = len(mails_to(mailbox, address))
    response = await door.http.post(URL, json=subscription(door, address, *categories))
    assert response.status_code == 202
    await wait_for(lambda: len(mails_to(mailbox, address)) > before, what="confirmation")
    await press_confirm(door, link_in(mails_to(mailbox, address)[-1], "confirm"))


async def press_confirm(door: FrontDoor, link: str) -> httpx.Response:
    """What a resident does: open the link, then press the page's button."""
    page = await door.http.get(link)
    assert page.status_code == 200, page.text
    assert f'<form method="post" action="{PUBLIC_URL}{link}">' in page.text
    assert "Confirmer</button>" in page.text
    done = await door.http.post(link, data={})
    assert done.status_code == 200, done.text
    return done


async def test_subscribe_then_confirm_by_the_link_in_the_email(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    response = await front_door.http.post(
        URL, json=subscription(front_door, "Jean.Dupont@Example.org", "alerte", "travaux"),
        headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    await wait_for(lambda: len(mails_to(mailbox, "jean.dupont@example.org")) == 1,
                   what="the confirmation email")
    [mail] = mails_to(mailbox, "jean.dupont@example.org")
    assert mail["Subject"] == "Confirmez votre inscription aux avis de votre mairie"
    assert f"pour : Lavoncourt ({front_door.insee})." in text_of(mail)

    rid = service.links.recipient_id("jean.dupont@example.org")
    assert service.registry is not None
    found = await service.registry.get(rid)
    assert found is not None and not found[0].confirmed, "nothing is sent before confirmation"
    assert service.registry.matching(front_door.insee, "alerte") == []

    # A mail scanner opens every link (GET, HEAD): that confirms nothing.
    link = link_in(mail, "confirm")
    for _ in range(2):
        opened = await front_door.http.get(link)
        assert opened.status_code == 200
        assert opened.headers["content-type"].startswith("text/html")
        assert '<html lang="fr">' in opened.text and "Confirmer votre inscription" in opened.text
        assert f"Lavoncourt ({front_door.insee})" in opened.text
        assert (await front_door.http.head(link)).status_code == 200
    found = await service.registry.get(rid)
    assert found is not None and not found[0].confirmed, "opening the link confirms nothing"

    page = await press_confirm(front_door, link)
    assert "C'est confirmé" in html.unescape(page.text) and '<html lang="fr">' in page.text
    found = await service.registry.get(rid)
    assert found is not None and found[0].confirmed
    assert [(f.commune, [c.value for c in f.categories]) for f in found[0].follows] == [
        (front_door.insee, ["alerte", "travaux"])]
    await wait_for(lambda: service.registry is not None and
                   service.registry.matching(front_door.insee, "travaux") == [rid],
                   what="the index to follow the bucket")


async def test_subscribing_twice_makes_one_subscription_and_reveals_nothing(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    response = await front_door.http.post(URL, json=subscription(front_door, "marie@example.org"))
    assert response.status_code == 202
    again = await front_door.http.post(URL, json=subscription(front_door, "MARIE@example.org",
                                                              "travaux"))
    stranger = await front_door.http.post(URL, json=subscription(front_door,
                                                                 "stranger@example.org"))
    assert (again.status_code, again.json()) == (stranger.status_code, stranger.json())
    rid = service.links.recipient_id("marie@example.org")
    # Both spellings are one key, so one record: the stored subscription is that one.
    # (Read by key: listing a bucket other tests share races with their deletes.)
    assert service.links.recipient_id(normalise_address("MARIE@example.org")) == rid
    await wait_for(lambda: len(mails_to(mailbox, "marie@example.org")) == 2, what="2 links")
    # Not confirmed yet: each request has its own link, and the one pressed counts.
    await press_confirm(front_door, link_in(mails_to(mailbox, "marie@example.org")[-1],
                                            "confirm"))
    found = await registry_get(service, rid)
    assert found.confirmed
    assert [c.value for c in found.follows[0].categories] == ["travaux"]


async def test_a_confirmed_address_gets_one_manage_mail_a_day_whatever_the_requests(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    clock = Clock()
    service: EmailService = await start_email(clock=clock, email_rate_per_address=100)
    address = "claire@example.org"
    await subscribe_and_confirm(front_door, mailbox, address, "alerte")
    rid = service.links.recipient_id(address)
    for categories in (["travaux"], ["alerte"], ["evenement"]):
        response = await front_door.http.post(URL, json=subscription(front_door, address,
                                                                     *categories))
        assert (response.status_code, response.json()["status"]) == (202, "pending")
    await wait_for(lambda: len(mails_to(mailbox, address)) == 2, what="the manage mail")
    await drained(service)
    [confirmation, already] = mails_to(mailbox, address)
    assert confirmation["Subject"] == "Confirmez votre inscription aux avis de votre mairie"
    assert already["Subject"] == "Vous êtes déjà abonné·e : gérer vos abonnements"
    assert service.links.read("manage", link_in(already, "manage").rsplit("/", 1)[1])[0] == rid
    assert "/confirm/" not in text_of(already), "a stranger's request changes nothing"
    found = await registry_get(service, rid)
    assert [c.value for c in found.follows[0].categories] == ["alerte"]

    # Kept in the bucket: a restarted service does not send it again the same day.
    await service.stop()
    service = await start_email(clock=clock, email_rate_per_address=100)
    clock.now += timedelta(hours=23)
    await front_door.http.post(URL, json=subscription(front_door, address))
    await drained(service)
    assert len(mails_to(mailbox, address)) == 2, "one a day, restart or not"

    clock.now += timedelta(hours=1, seconds=1)
    await front_door.http.post(URL, json=subscription(front_door, address))
    await wait_for(lambda: len(mails_to(mailbox, address)) == 3, what="the next day's mail")
    assert mails_to(mailbox, address)[-1]["Subject"] == (
        "Vous êtes déjà abonné·e : gérer vos abonnements")


async def test_one_limit_per_mailbox_whatever_the_spelling(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    await start_email(email_rate_per_address=2, email_rate_per_client=100)
    spellings = ["victim@gmail.com", "vic.tim+1@googlemail.com", "V.ictim+news@gmail.com",
                 "victim+2@gmail.com"]
    codes = [(await front_door.http.post(URL, json=subscription(front_door, s))).status_code
             for s in spellings]
    assert codes == [202, 202, 429, 429]
    # Elsewhere than Google, dots make another mailbox; a +tag does not.
    others = ["jo.e@example.org", "joe@example.org", "joe+x@example.org", "JOE+y@example.org"]
    codes = [(await front_door.http.post(URL, json=subscription(front_door, s))).status_code
             for s in others]
    assert codes == [202, 202, 202, 429]
    # The address is kept and written to as typed (in lower case), not as its mailbox.
    await wait_for(lambda: len(mails_to(mailbox, "vic.tim+1@googlemail.com")) == 1,
                   what="the confirmation, as typed")


async def test_an_old_confirmation_link_opens_the_page_and_the_button_confirms(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    response = await front_door.http.post(URL, json=subscription(front_door, "ancien@example.org"))
    assert response.status_code == 202
    rid = service.links.recipient_id("ancien@example.org")
    # The format of links in mails sent before the button existed.
    follows = [{"commune": front_door.insee, "categories": ["alerte"]}]
    old = service.links.confirm_url(rid, follows).removeprefix(PUBLIC_URL)
    assert old.startswith(URL + "/confirm/")
    await press_confirm(front_door, old)
    assert (await registry_get(service, rid)).confirmed
    forged = old[:-3] + ("AAA" if not old.endswith("AAA") else "BBB")
    assert (await front_door.http.post(forged)).status_code == 400
    assert (await front_door.http.get(forged)).status_code == 400


async def registry_get(service: EmailService, rid: str) -> Subscriber:
    assert service.registry is not None
    found = await service.registry.get(rid)
    assert found is not None
    return found[0]


async def drained(service: EmailService) -> None:
    """Every mail the service started sending is sent (or given up)."""
    assert service.web is not None
    await service.web.drain()


async def test_bad_input_gets_a_clear_4xx(front_door: FrontDoor, start_email: Any) -> None:
    await start_email()
    cases = [
        ({"email": "not-an-address", "follows": [{"commune": front_door.insee,
                                                  "categories": ["alerte"]}]}, 422, "email"),
        ({"email": "a@example.org", "follows": [{"commune": "99999",
                                                 "categories": ["alerte"]}]}, 422,
         "follows.0.commune"),
        ({"email": "a@example.org", "follows": [{"commune": front_door.insee,
                                                 "categories": ["fete"]}]}, 422,
         "follows.0.categories.0"),
        ({"email": "a@example.org", "follows": []}, 422, "follows"),
        ({"email": "a@example.org", "follows": [{"commune": front_door.insee,
                                                 "categories": ["alerte"]}], "admin": True},
         422, "admin"),
    ]
    for body, status, field in cases:
        response = await front_door.http.post(URL, json=body)
        assert response.status_code == status, (body, response.text)
        assert field in [f["field"] for f in response.json()["error"]["fields"]], response.text
    response = await front_door.http.post(URL, content=b"{not json",
                                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert (await front_door.http.get(URL + "/nowhere")).status_code == 404
    assert (await front_door.http.put(URL)).status_code == 405
    assert (await front_door.http.get(URL + "/unsubscribe/forged.token")).status_code == 400
    assert (await front_door.http.get(URL + "/confirm/forged.token")).status_code == 400


async def test_rate_limited_per_email_and_per_client(front_door: FrontDoor,
                                                     start_email: Any) -> None:
    await start_email(email_rate_per_address=2, email_rate_per_client=5)
    codes = [(await front_door.http.post(URL, json=subscription(front_door,
                                                                "busy@example.org"))).status_code
             for _ in range(3)]
    assert codes == [202, 202, 429]
    limited = await front_door.http.post(URL, json=subscription(front_door, "Busy@example.org"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    more = [(await front_door.http.post(URL, json=subscription(
        front_door, f"other{i}@example.org"))).status_code for i in range(3)]
    # 5 per client: 3 + 1 above, so the 2nd of these is the 6th request from this client.
    assert more == [202, 429, 429]


async def test_the_limits_are_shared_by_every_process_and_kept_across_restarts(
        front_door: FrontDoor, start_email: Any) -> None:
    """Issue 25: counted in the email_limits bucket, not in each process's memory."""
    first: EmailService = await start_email(email_rate_per_address=2, email_rate_per_client=4)

    async def subscribe(address: str) -> int:
        answer = await front_door.http.post(URL, json=subscription(front_door, address))
        return answer.status_code

    assert [await subscribe("shared@example.org") for _ in range(2)] == [202, 202]
    # A second process of the same service (start_email gives both one name), then the
    # first stops: only the second answers, and it counts what the first let through.
    second: EmailService = await start_email(email_rate_per_address=2,
                                             email_rate_per_client=4)
    await first.stop()
    assert await subscribe("shared@example.org") == 429
    assert await subscribe("someone@example.org") == 202  # the client's 4th of 4
    # Restarted: a new process still knows the hour's counts, per mailbox and per client.
    await second.stop()
    await start_email(email_rate_per_address=2, email_rate_per_client=4)
    assert await subscribe("third@example.org") == 429


async def test_unsubscribe_from_the_browser_and_by_one_click(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    for address in ("paul@example.org", "lucie@example.org"):
        await subscribe_and_confirm(front_door, mailbox, address)
    paul = service.links.recipient_id("paul@example.org")
    lucie = service.links.recipient_id("lucie@example.org")
    paul_link = service.links.unsubscribe_url(paul).removeprefix(PUBLIC_URL)
    lucie_link = service.links.unsubscribe_url(lucie).removeprefix(PUBLIC_URL)

    page = await front_door.http.get(paul_link)
    assert page.status_code == 200
    assert "p•••@example.org" in page.text and "paul@example.org" not in page.text
    assert '<form method="post"' in page.text and "Ne plus recevoir les avis</button>" in page.text
    assert await service.registry.get(paul) is not None, "a GET changes nothing"
    done = await front_door.http.post(paul_link, data={})
    assert done.status_code == 200 and "Désabonnement confirmé" in done.text
    assert await service.registry.get(paul) is None, "the address is gone from storage"

    # RFC 8058: the mail client POSTs this body to the List-Unsubscribe URL.
    one_click = await front_door.http.post(
        lucie_link, content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200
    assert await service.registry.get(lucie) is None
    await wait_for(lambda: service.registry is not None and
                   service.registry.matching(front_door.insee, "alerte") == [],
                   what="the index to drop them")


async def test_manage_communes_and_categories_then_delete_everything(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    await subscribe_and_confirm(front_door, mailbox, "rose@example.org", "alerte")
    rid = service.links.recipient_id("rose@example.org")
    link = link_in(mails_to(mailbox, "rose@example.org")[-1], "confirm")  # any mail will do
    assert link
    manage = service.links.manage_url(rid).removeprefix(PUBLIC_URL)
    page = await front_door.http.get(manage)
    assert page.status_code == 200
    assert f"Lavoncourt ({front_door.insee})" in page.text
    assert 'value="alerte" checked' in page.text and 'value="travaux">' in page.text
    other = await front_door.store.commune_registry.add("70001", "Autreville")
    assert other.insee == "70001"
    changed = await front_door.http.post(manage, data={
        f"c.{front_door.insee}": ["travaux", "evenement"], "new_commune": "70001"})
    assert changed.status_code == 200 and "C'est enregistré" in html.unescape(changed.text)
    found = await service.registry.get(rid)
    assert found is not None
    assert {f.commune: [c.value for c in f.categories] for f in found[0].follows} == {
        front_door.insee: ["evenement", "travaux"],
        "70001": ["alerte", "evenement", "information", "travaux"]}
    for bad in ("12", "../../x", "70.01", "7*001", "70 01>"):
        unknown = await front_door.http.post(manage, data={"new_commune": bad})
        assert unknown.status_code == 422 and "inconnue" in unknown.text, bad

    deleted = await front_door.http.post(manage + "/delete")
    assert deleted.status_code == 200 and "Vos données sont effacées" in deleted.text
    assert await service.registry.get(rid) is None
    assert rid not in await stored_keys(service)
    assert (await front_door.http.get(manage)).status_code == 404


async def test_manage_adds_a_commune_by_postal_code_or_name_and_asks_before_dropping(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    await subscribe_and_confirm(front_door, mailbox, "lea@example.org", "alerte")
    rid = service.links.recipient_id("lea@example.org")
    manage = service.links.manage_url(rid).removeprefix(PUBLIC_URL)
    here = front_door.insee

    async def follows() -> dict[str, list[str]]:
        found = await service.registry.get(rid) if service.registry else None
        assert found is not None
        return {f.commune: [c.value for c in f.categories] for f in found[0].follows}

    # One registered commune behind a postal code shared by unregistered ones: added.
    await front_door.store.commune_registry.add("70001", "Abelcourt")
    added = await front_door.http.post(manage, data={f"c.{here}": "alerte",
                                                      "new_commune": "70300"})
    assert added.status_code == 200 and "C'est enregistré" in html.unescape(added.text)
    assert set(await follows()) == {here, "70001"}
    # By its name, whatever the accents and case: Fédry.
    await front_door.store.commune_registry.add("70230", "Fédry")
    by_name = await front_door.http.post(manage, data={
        f"c.{here}": "alerte", "c.70001": "alerte", "new_commune": " fedry "})
    assert by_name.status_code == 200, by_name.text
    assert "70230" in await follows()
    # By its INSEE code, as before: Lavoncourt.
    await front_door.store.commune_registry.add("70299", "Lavoncourt")
    by_code = await front_door.http.post(manage, data={
        **{f"c.{c}": cats for c, cats in (await follows()).items()}, "new_commune": "70299"})
    assert by_code.status_code == 200 and "70299" in await follows()

    # A postal code with two registered communes not yet followed: the resident picks
    # (Fédry and Lavoncourt, followed already, are not offered), nothing saved yet.
    await front_door.store.commune_registry.add("70298", "Lavigney")
    await front_door.store.commune_registry.add("70025", "Arbecey")
    before = await follows()
    keep = {f"c.{c}": cats for c, cats in before.items()}
    choice = await front_door.http.post(manage, data={**keep, "new_commune": "70120"})
    text = html.unescape(choice.text)
    assert choice.status_code == 200 and "Plusieurs communes correspondent à « 70120 »" in text
    assert 'type="radio" name="new_commune" value="70298"' in text
    assert 'type="radio" name="new_commune" value="70025"' in text
    assert 'value="70299"' not in text and 'value="70230"' not in text
    assert await follows() == before
    picked = await front_door.http.post(manage, data={**keep, "new_commune": "70298"})
    assert picked.status_code == 200 and "C'est enregistré" in html.unescape(picked.text)
    assert "70298" in await follows()

    # Unknown words get a clear 422 that keeps what was typed.
    nowhere = await front_door.http.post(manage, data={**keep, "new_commune": "Atlantide"})
    assert nowhere.status_code == 422 and 'value="Atlantide"' in nowhere.text
    assert "est inconnue" in html.unescape(nowhere.text)

    # Every box of a commune unticked: explained and asked, then dropped once confirmed.
    now = await follows()
    rest = {f"c.{c}": cats for c, cats in now.items() if c != "70001"}
    asked = await front_door.http.post(manage, data=rest)
    asked_text = html.unescape(asked.text)
    assert asked.status_code == 200 and "Abelcourt (70001)" in asked_text
    assert "Vous ne recevrez plus aucun avis de cette commune" in asked_text
    assert 'name="confirm_drop"' in asked_text and "C'est enregistré" not in asked_text
    assert "70001" in await follows()
    dropped = await front_door.http.post(manage, data={**rest, "confirm_drop": "1"})
    assert dropped.status_code == 200 and "C'est enregistré" in html.unescape(dropped.text)
    assert "70001" not in await follows() and here in await follows()


async def test_an_address_never_confirmed_is_forgotten_once_its_link_expired(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    registry = service.registry
    assert registry is not None
    for address in ("never@example.org", "later@example.org"):
        response = await front_door.http.post(URL, json=subscription(front_door, address))
        assert response.status_code == 202
    never = service.links.recipient_id("never@example.org")
    later = service.links.recipient_id("later@example.org")
    await subscribe_and_confirm(front_door, mailbox, "later@example.org")
    await wait_for(lambda: never in registry.index.unconfirmed and
                   later not in registry.index.unconfirmed, what="the index")
    now = service.clock()
    await registry.sweep_unconfirmed(older_than=now - timedelta(days=7))
    assert await registry.get(never) is not None, "its link is still valid"
    # (The session's bucket may hold other tests' unconfirmed addresses: they go too.)
    assert await registry.sweep_unconfirmed(older_than=now + timedelta(seconds=1)) >= 1
    assert await registry.get(never) is None, "the address is gone from storage"
    assert await registry.get(later) is not None, "a confirmed subscriber stays"


async def test_the_confirmation_is_tried_again_while_the_relay_says_later(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    await start_email()
    mailbox.answer(451, times=1)
    response = await front_door.http.post(URL, json=subscription(front_door, "patient@example.org"))
    assert response.status_code == 202
    await wait_for(lambda: mailbox.mailbox.refused == 1, what="the relay to refuse once")
    await wait_for(lambda: len(mails_to(mailbox, "patient@example.org")) == 1, within_s=20,
                   what="the confirmation, second try")


async def stored_keys(service: EmailService) -> list[str]:
    """Every key of the subscribers bucket; nats-py raises, not [], for an empty bucket."""
    assert service.registry is not None
    try:
        return list(await service.registry.kv.keys())
    except NoKeysError:
        return []


@pytest.mark.parametrize("depth", [900, 30_000])
async def test_json_nested_too_deep_is_a_400_or_422_not_a_500(
        front_door: FrontDoor, start_email: Any, depth: int) -> None:
    await start_email()
    deep = "[" * depth + "]" * depth
    for body in (deep, '{"email": "a@example.org", "follows": ' + deep + "}"):
        response = await front_door.http.post(
            URL, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), response.text
        assert response.json()["error"]["code"] in ("invalid_json", "invalid_input")


async def test_a_resident_revokes_every_link_already_sent_and_gets_a_new_one(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    clock = Clock()
    service: EmailService = await start_email(clock=clock)
    address = "odile@example.org"
    await subscribe_and_confirm(front_door, mailbox, address, "alerte")
    rid = service.links.recipient_id(address)
    old_manage = service.links.manage_url(rid).removeprefix(PUBLIC_URL)
    old_unsubscribe = service.links.unsubscribe_url(rid).removeprefix(PUBLIC_URL)
    # A link made before links carried their time (mails sent by an older release).
    legacy = Signer(SECRET, salt="crieur-email-manage").sign(rid).decode()
    legacy_manage = f"{URL}/manage/{legacy}"
    for link in (old_manage, old_unsubscribe, legacy_manage):
        assert (await front_door.http.get(link)).status_code == 200, link
    page = await front_door.http.get(old_manage)
    assert "Désactiver mes anciens liens</button>" in page.text

    clock.now += timedelta(minutes=1)
    before = len(mails_to(mailbox, address))
    revoked = await front_door.http.post(old_manage + "/links", data={})
    assert revoked.status_code == 200 and "ne fonctionnent plus" in revoked.text
    assert "/manage/" not in revoked.text, "the new link goes to the mailbox, not the page"
    # Every link made before is void: pages, form posts, one-click unsubscribe.
    for link in (old_manage, old_unsubscribe, legacy_manage):
        answer = await front_door.http.get(link)
        assert answer.status_code == 400 and "Ce lien n&#39;est pas valable" in answer.text, link
    assert (await front_door.http.post(old_unsubscribe, data={})).status_code == 400
    assert (await front_door.http.post(old_manage + "/delete")).status_code == 400
    assert await registry_get(service, rid), "a revoked link unsubscribes nobody"

    clock.now += timedelta(seconds=2)
    await wait_for(lambda: len(mails_to(mailbox, address)) > before, what="the new link")
    mail = mails_to(mailbox, address)[-1]
    assert mail["Subject"] == "Votre nouveau lien pour gérer vos abonnements"
    fresh = link_in(mail, "manage")
    assert fresh != old_manage
    page = await front_door.http.get(fresh)
    assert page.status_code == 200 and "o•••@example.org" in page.text
    # Mails sent from now on carry links that work.
    assert (await front_door.http.get(
        service.links.unsubscribe_url(rid).removeprefix(PUBLIC_URL))).status_code == 200


async def test_a_new_link_key_voids_every_link_and_keeps_every_subscriber(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    address = "leon@example.org"
    await subscribe_and_confirm(front_door, mailbox, address, "alerte")
    rid = service.links.recipient_id(address)
    old_manage = service.links.manage_url(rid).removeprefix(PUBLIC_URL)
    await service.stop()

    service = await start_email(email_link_key="k" * 40)
    assert service.links.recipient_id(address) == rid, "the subscriber is the same"
    assert (await front_door.http.get(old_manage)).status_code == 400
    assert (await registry_get(service, rid)).confirmed
    page = await front_door.http.get(service.links.manage_url(rid).removeprefix(PUBLIC_URL))
    assert page.status_code == 200 and "l•••@example.org" in page.text
