"""The communes list with its search, a commune's archive and the staff list's filters, as
the front door answers them, in Debian's Chromium at 375 px: no sideways scrolling and
no serious or critical axe-core violation (issue #26)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.e2e.helpers import chromium_browser
from tests.e2e.staff.helpers import axe_problems, keep
from tests.integration.helpers import random_insee
from tests.integration.notices.helpers import Clock
from tests.integration.staff.helpers import PASSWORD, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"viewport": {"width": 375, "height": 800}, "locale": "fr-FR"}


async def pages_as_served(nats_url: str) -> dict[str, str]:
    """Each page's HTML as the front door serves it, a few notices having ended."""
    settings = NoticesSettings(nats_url=nats_url, public_url="https://crieur.example")
    store = await NatsStore.connect(nats_url, name="test-archive-browser")
    clock = Clock()
    app = create_app(settings, Context(store=store, settings=settings, clock=clock))
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    _, token = await store.staff_registry.add(f"Anne {insee}", (insee,))
    await store.staff_registry.set_password(f"Anne {insee}", PASSWORD)
    served: dict[str, str] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://test") as http:
                auth = {"Authorization": f"Bearer {token}"}
                ends = (clock.now + timedelta(days=1)).isoformat()
                for category, title, body in (
                    ("travaux", "Coupure d'eau rue de l'Église et place de la Mairie",
                     "Réparation du réseau d'eau potable : l'eau sera coupée de 8 h à 12 h."),
                    ("evenement", "Fête de la Saint-Rémy", "Défilé, bal et buvette."),
                    ("alerte", "Vigilance orange orages", "Évitez les déplacements."),
                ):
                    reply = await http.post(f"/api/v1/communes/{insee}/notices", headers=auth,
                                            json={"category": category, "title": title,
                                                  "body": body, "ends_at": ends})
                    assert reply.status_code == 201, reply.text
                clock.now += timedelta(days=2)
                for name, path in (
                    ("accueil", "/"),
                    ("accueil-recherche", "/?q=" + quote("lavon")),
                    ("accueil-absente", "/?q=" + quote("Gray")),
                    ("commune", f"/communes/{insee}"),
                    ("archives", f"/communes/{insee}/archives"),
                    ("fil", f"/communes/{insee}/fil"),
                    ("archives-recherche", f"/communes/{insee}/archives?q=eglise"),
                ):
                    reply = await http.get(path)
                    assert reply.status_code == 200, path
                    served[name] = reply.text
                assert (await sign_in(http, f"anne-{insee}")).status_code == 303
                reply = await http.get(f"/staff/communes/{insee}?etat=expired")
                assert reply.status_code == 200
                served["staff-filtres"] = reply.text
    finally:
        await store.close()
    return served


def test_the_way_in_and_the_history_fit_a_phone_and_pass_axe(
        nats_url: str, chromium: str, tmp_path: Path) -> None:
    served = asyncio.run(pages_as_served(nats_url))
    assert "place de la Mairie" in served["archives-recherche"]
    with chromium_browser(chromium) as browser:
        page = browser.new_page(**PHONE)
        for name, body in served.items():
            page.set_content(body)
            assert page.locator("html").get_attribute("lang") == "fr", name
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{name} is {width} px wide"
            overflowing = page.evaluate(
                "[...document.querySelectorAll('input, select, button, li')]"
                ".filter(e => e.getBoundingClientRect().right > 375).map(e => e.id || e.tagName)")
            assert overflowing == [], f"{name}: {overflowing}"
            assert axe_problems(page) == [], name
            shot = tmp_path / f"{name}-375.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)
