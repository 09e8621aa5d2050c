"""The SMS form offers only what the commune sends by SMS (alerts by default), and says so."""

from __future__ import annotations

import json
import re

from schemas.notice import Category
from tests.integration.notices.helpers import FrontDoor, channel, reply

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sms_form(page: str) -> str:
    found = re.search(r'<form[^>]*id="abonnement-sms".*?</form>', page, re.DOTALL)
    assert found is not None, "no SMS form on the page"
    return found.group(0)


async def test_only_alerts_by_default_said_not_ticked(front_door: FrontDoor) -> None:
    door = front_door
    form = sms_form((await door.http.get(f"/communes/{door.insee}")).text)
    assert "Par SMS, la mairie envoie seulement les alertes." in form
    assert 'type="checkbox"' not in form
    assert re.findall(r'name="categories" value="(\w+)"', form) == ["alerte"]

    # A hand-made request for more gets what is sent by SMS, nothing else.
    async with channel(door, "sms", lambda _: reply(202, {"status": "pending"})) as seen:
        asked = await door.http.post(
            f"/communes/{door.insee}/abonnement/sms", headers=FORM,
            content="phone=06+12+34+56+78&categories=alerte&categories=information")
        assert asked.status_code == 200, asked.text
    assert json.loads(seen[0].body_bytes())["follows"] == [
        {"commune": door.insee, "categories": ["alerte"]}]


async def test_a_commune_sending_more_by_sms_offers_those(front_door: FrontDoor) -> None:
    door = front_door
    settings = door.app.state.context.settings
    settings.sms_commune_categories = {door.insee: (Category.ALERTE, Category.TRAVAUX)}
    form = sms_form((await door.http.get(f"/communes/{door.insee}")).text)
    assert "Par SMS, la mairie envoie seulement les avis de travaux et les alertes." in form
    assert re.findall(r'type="checkbox" name="categories" value="(\w+)"', form) == [
        "travaux", "alerte"]
