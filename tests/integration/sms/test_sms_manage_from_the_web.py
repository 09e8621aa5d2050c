"""Issue 26: a resident changes or stops the SMS of a commune from the web (a phone cannot
answer an alphanumeric sender), and a STOP by SMS is answered.

Through the public pages of the front door (HTTP), which forward to the SMS service over
the session's nats-server; the SMS go to the SMS stand-in.
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets

import phonenumbers
from nats.aio.client import Client
from phonenumbers import PhoneNumberType

from crieur_dev.standins.sms import SmsStandin
from schemas.notice import Category
from tests.integration.notices.helpers import FrontDoor, open_front_door
from tests.integration.sms.helpers import SECRET, StartSms, call, wait_for

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BOTH = (Category.ALERTE, Category.TRAVAUX)
# Every test's front door is one client (127.0.0.1), and the session's limits are shared:
# room enough that only the limit a test is about can refuse it.
ROOMY = {"sms_rate_per_client": 1000, "sms_code_budget": "1000,100"}


def new_number() -> tuple[str, str]:
    """A mobile number of its own for each test, as typed and as the provider gets it: a
    metropolitan one (06 is not all allocated: 06 94 ... is refused, and failed a run)."""
    while True:
        digits = f"6{secrets.randbelow(10**8):08d}"
        number = phonenumbers.parse("+33" + digits)
        if (phonenumbers.is_valid_number(number)
                and phonenumbers.region_code_for_number(number) == "FR"
                and phonenumbers.number_type(number) == PhoneNumberType.MOBILE):
            break
    return "0" + " ".join([digits[:1], *(digits[i:i + 2] for i in range(1, 9, 2))]), "33" + digits


def sent_to(standin: SmsStandin, recipient: str) -> list[str]:
    return [s["body"]["content"] for s in standin.sends() if s["body"]["recipient"] == recipient]


def shown(text: str) -> str:
    return html.unescape(text)


async def code_sent(standin: SmsStandin, recipient: str, count: int) -> str:
    """The code of the `count`-th SMS this number got."""
    await wait_for(lambda: len(sent_to(standin, recipient)) >= count, what="the code SMS")
    found = re.search(r"\b(\d{6})\b", sent_to(standin, recipient)[count - 1])
    assert found is not None
    return found.group(1)


async def post(door: FrontDoor, path: str, **fields: str | list[str]) -> tuple[int, str]:
    pairs = [(k, v) for k, vs in fields.items() for v in ([vs] if isinstance(vs, str) else vs)]
    body = "&".join(f"{k}={v.replace(' ', '+')}" for k, v in pairs)
    reply = await door.http.post(f"/communes/{door.insee}{path}", headers=FORM, content=body)
    return reply.status_code, shown(reply.text)


async def subscribed(door: FrontDoor, standin: SmsStandin, typed: str, recipient: str) -> None:
    status, page = await post(door, "/abonnement/sms", phone=typed,
                              categories=["alerte", "travaux"])
    assert status == 200, page
    code = await code_sent(standin, recipient, 1)
    status, page = await post(door, "/abonnement/sms/confirmer", phone=typed, code=code)
    assert status == 200 and "Vous recevrez désormais les avis de Lavoncourt" in page, page


async def publish(door: FrontDoor, category: str, title: str) -> None:
    made = await door.http.post(door.notices_url(), headers=door.auth, json={
        "category": category, "title": title, "body": "Texte de l'avis."})
    assert made.status_code == 201, made.text


async def test_a_resident_keeps_only_alerts_then_stops_from_the_web(
        nats_url: str, nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    async with open_front_door(nats_url) as door:
        door.app.state.context.settings.sms_commune_categories = {door.insee: BOTH}
        await start_sms(sms_commune_categories={door.insee: BOTH}, **ROOMY)
        typed, recipient = new_number()
        await subscribed(door, standin, typed, recipient)

        # The commune page's « désabonner à tout moment » leads to the page.
        page = (await door.http.get(f"/communes/{door.insee}")).text
        link = re.search(r'désabonner à tout moment[^<]*<a href="([^"]+)"', shown(page))
        assert link is not None and link.group(1) == (
            f"/communes/{door.insee}/abonnement/sms/gerer")
        manage = await door.http.get(link.group(1))
        assert manage.status_code == 200
        assert re.findall(r'name="categories" value="(\w+)"', manage.text) == [
            "travaux", "alerte"]
        assert "Ne plus recevoir de SMS de Lavoncourt" in shown(manage.text)

        # Alerts only: the number, then the code sent to it.
        status, page = await post(door, "/abonnement/sms/gerer", phone=typed,
                                  categories="alerte", action="update")
        assert status == 200 and "Un code vous a été envoyé par SMS" in page, page
        code = await code_sent(standin, recipient, 2)
        assert "pour modifier vos SMS" in sent_to(standin, recipient)[1]
        # A wrong code changes nothing.
        status, page = await post(door, "/abonnement/sms/confirmer", phone=typed,
                                  code="000000" if code != "000000" else "111111")
        assert status == 422 and "Ce code n'est pas le bon" in page
        status, page = await post(door, "/abonnement/sms/confirmer", phone=typed, code=code)
        assert status == 200 and "Vos choix pour Lavoncourt sont enregistrés" in page, page

        await asyncio.sleep(0.5)  # the channel's index follows the bucket
        await publish(door, "travaux", "Route de Gray fermée")
        await publish(door, "alerte", "Tempête cette nuit")
        await wait_for(lambda: len(sent_to(standin, recipient)) == 3, what="the alert SMS")
        await asyncio.sleep(1.0)
        got = sent_to(standin, recipient)[2:]
        # (GSM-7: « Tempête » goes as « Tempete ».)
        assert len(got) == 1 and "Alerte : Tempete cette nuit" in got[0]

        # Stop: nothing more from this commune, the number is forgotten.
        status, page = await post(door, "/abonnement/sms/gerer", phone=typed, action="stop")
        assert status == 200 and "vous ne recevrez plus de SMS de cette commune" in page
        code = await code_sent(standin, recipient, 4)
        status, page = await post(door, "/abonnement/sms/confirmer", phone=typed, code=code)
        assert status == 200 and "vous ne recevrez plus de SMS" in page, page
        await asyncio.sleep(0.5)
        await publish(door, "alerte", "Crue de la Saône")
        await asyncio.sleep(2.0)
        assert len(sent_to(standin, recipient)) == 4


async def test_the_page_keeps_the_sms_limits_and_tells_nothing_of_a_number(
        nats_url: str, nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    async with open_front_door(nats_url) as door:
        await start_sms(**ROOMY)
        # An unknown number: the same answer as a known one, and no SMS.
        typed, recipient = new_number()
        status, page = await post(door, "/abonnement/sms/gerer", phone=typed, action="stop")
        assert status == 200 and "Si ce numéro est abonné" in page
        # A number outside CRIEUR_SMS_COUNTRIES: refused in French, no SMS.
        status, page = await post(door, "/abonnement/sms/gerer", phone="+1 201 555 0123",
                                  action="stop")
        assert status == 422 and "numéro de portable français" in page
        # A form posted by another site's page: refused, nothing asked of the channel.
        other, other_recipient = new_number()
        await subscribed(door, standin, other, other_recipient)
        refused = await door.http.post(
            f"/communes/{door.insee}/abonnement/sms/gerer",
            headers=FORM | {"Origin": "https://pas-la-mairie.example"},
            content=f"phone={other.replace(' ', '+')}&action=stop")
        assert refused.status_code == 403 and "autre site" in shown(refused.text)
        # The number's hourly limit (CRIEUR_SMS_RATE_PER_NUMBER, 3), shared with subscribing.
        for _ in range(2):
            status, _page = await post(door, "/abonnement/sms/gerer", phone=other,
                                       action="stop")
            assert status == 200
        status, page = await post(door, "/abonnement/sms/gerer", phone=other, action="stop")
        assert status == 429 and "Trop de demandes" in page
        await asyncio.sleep(1.0)
        # The subscription's code, then the two codes the limit let through.
        assert len(sent_to(standin, other_recipient)) == 3
        assert sent_to(standin, recipient) == []


async def test_stop_by_sms_is_answered_once_and_only_to_a_subscriber(
        nats_url: str, nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    async with open_front_door(nats_url) as door:
        await start_sms(**ROOMY)
        typed, recipient = new_number()
        await subscribed(door, standin, typed, recipient)
        stop = {"event": "replied", "from": recipient, "reply": "STOP"}
        status, body = await call(nc, "POST", f"/webhooks/sms/{SECRET}/inbound", stop)
        assert (status, body["status"]) == (200, "unsubscribed")
        await wait_for(lambda: len(sent_to(standin, recipient)) == 2, what="the STOP answer")
        answer = sent_to(standin, recipient)[1]
        assert "vous ne recevrez plus les avis de Lavoncourt par SMS" in answer
        # Again, or from a number never subscribed: no answer (a stranger costs nothing).
        stranger = new_number()[1]
        await call(nc, "POST", f"/webhooks/sms/{SECRET}/inbound", stop)
        await call(nc, "POST", f"/webhooks/sms/{SECRET}/inbound",
                   stop | {"from": stranger})
        await asyncio.sleep(1.0)
        assert len(sent_to(standin, recipient)) == 2 and sent_to(standin, stranger) == []
