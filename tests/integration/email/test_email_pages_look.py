"""The pages a resident opens from an email (confirm, manage, unsubscribe) look like the
commune's pages and lead back to it, at the links old emails carry (issue #26); in Debian's
Chromium at 375 px: no sideways scrolling, no serious or critical axe-core violation."""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from typing import Any

import pytest

from crieur_dev.standins.smtp import SmtpStandin
from services.email.service import EmailService
from tests.e2e.helpers import chromium_browser
from tests.e2e.staff.helpers import axe_problems, keep
from tests.integration.email.helpers import (
    PUBLIC_URL,
    URL,
    link_in,
    mails_to,
    subscription,
    wait_for,
)
from tests.integration.notices.helpers import FrontDoor

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PHONE = {"viewport": {"width": 375, "height": 800}, "locale": "fr-FR"}


def check_in_browser(chromium: str, served: dict[str, str], shots: Path) -> None:
    with chromium_browser(chromium) as browser:
        page = browser.new_page(**PHONE)
        for name, body in served.items():
            page.set_content(body)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{name} is {width} px wide"
            assert axe_problems(page) == [], name
            shot = shots / f"email-{name}-375.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)


async def test_the_email_pages_have_the_site_look_and_a_way_back_to_the_commune(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any, chromium: str,
        tmp_path: Path) -> None:
    service: EmailService = await start_email()
    address = "paul@example.org"
    assert (await front_door.http.post(URL, json=subscription(front_door, address))
            ).status_code == 202
    await wait_for(lambda: len(mails_to(mailbox, address)) == 1, what="confirmation")
    confirm = link_in(mails_to(mailbox, address)[0], "confirm")
    assert confirm.startswith("/api/v1/subscriptions/email/confirm/")  # as old mails have it
    served: dict[str, str] = {}
    served["confirmer"] = (await front_door.http.get(confirm)).text
    served["confirme"] = (await front_door.http.post(confirm, data={})).text
    rid = service.links.recipient_id(address)
    manage = service.links.manage_url(rid).removeprefix(PUBLIC_URL)
    unsubscribe = service.links.unsubscribe_url(rid).removeprefix(PUBLIC_URL)
    served["gerer"] = (await front_door.http.get(manage)).text
    served["gerer-choix"] = (await front_door.http.post(manage, data={
        f"c.{front_door.insee}": "alerte", "new_commune": "Atlantide"})).text
    served["desabonner"] = (await front_door.http.get(unsubscribe)).text
    served["desabonne"] = (await front_door.http.post(unsubscribe, data={})).text
    back = f'<a href="/communes/{front_door.insee}">'
    for name, body in served.items():
        text = html.unescape(body)
        assert '<header class="site">' in text, name
        assert back + "Mairie de Lavoncourt</a>" in text, name
        assert back + "Tous les avis de Lavoncourt</a>" in text, name
    await asyncio.to_thread(check_in_browser, chromium, served, tmp_path)
