"""Staff sign-in against a real nats-server: passwords, session cookie, CSRF, throttle."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.auth import SESSION_COOKIE
from services.notices.settings import NoticesSettings
from tests.integration.staff.helpers import PASSWORD, Office, csrf_of, page_csrf, shown, sign_in

pytestmark = pytest.mark.integration


async def test_a_member_signs_in_sees_the_commune_and_signs_out(office: Office) -> None:
    async with office.browser() as http:
        assert (await http.get("/staff")).headers["location"] == "/staff/login"
        signed = await sign_in(http, f"anne-{office.insee}")
        assert signed.status_code == 303, signed.text
        assert signed.headers["location"] == "/staff"
        cookie = next(h for h in signed.headers.get_list("set-cookie")
                      if h.startswith(SESSION_COOKIE + "="))
        attributes = {a.strip().lower() for a in cookie.split(";")}
        assert {"httponly", "secure", "samesite=lax", "path=/staff"} <= attributes
        # One commune: straight to its notices.
        home = await http.get("/staff")
        assert home.headers["location"] == f"/staff/communes/{office.insee}"
        listing = await http.get(home.headers["location"])
        assert listing.status_code == 200
        assert "Avis de Lavoncourt" in shown(listing) and 'lang="fr"' in shown(listing)
        assert listing.headers["cache-control"] == "no-store"

        token = csrf_of(listing.text)
        out = await http.post("/staff/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/staff/login"
        again = await http.get(f"/staff/communes/{office.insee}")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/staff/login")


async def test_the_full_name_signs_in_as_well_as_the_login(office: Office) -> None:
    async with office.browser() as http:
        assert (await sign_in(http, f"Anne {office.insee}")).status_code == 303


async def test_a_signed_out_cookie_is_dead_even_if_replayed(office: Office) -> None:
    async with office.browser() as http:
        await sign_in(http, f"anne-{office.insee}")
        stolen = http.cookies.get(SESSION_COOKIE)
        token = await page_csrf(http, f"/staff/communes/{office.insee}")
        await http.post("/staff/logout", data={"csrf": token})
    async with office.browser() as thief:
        thief.cookies.set(SESSION_COOKIE, stolen or "", domain="test", path="/staff")
        reply = await thief.get(f"/staff/communes/{office.insee}")
        assert reply.status_code == 303


async def test_a_wrong_password_and_an_unknown_user_are_refused_alike(office: Office) -> None:
    async with office.browser() as http:
        wrong = await sign_in(http, f"anne-{office.insee}", "not the password")
        unknown = await sign_in(http, f"nobody-{office.insee}", "not the password")
        for reply in (wrong, unknown):
            assert reply.status_code == 401
            assert "Identifiant ou mot de passe incorrect." in shown(reply)
            assert SESSION_COOKIE + "=" not in reply.headers.get("set-cookie", "")
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 303


async def test_a_sign_in_without_its_csrf_token_is_refused(office: Office) -> None:
    async with office.browser() as http:
        await http.get("/staff/login")
        reply = await http.post("/staff/login", data={"user": f"anne-{office.insee}",
                                                      "password": PASSWORD})
        assert reply.status_code == 403
        forged = await http.post("/staff/login", data={"csrf": "forged", "password": PASSWORD,
                                                       "user": f"anne-{office.insee}"})
        assert forged.status_code == 403


async def test_after_five_failures_even_the_right_password_waits_a_moment(
    office: Office,
) -> None:
    # The defaults; the throttle itself is tested in test_signin_throttle.py.
    user = f"anne-{office.insee}"
    async with office.browser() as http:
        for _ in range(5):
            assert (await sign_in(http, user, "wrong password!")).status_code == 401
        # Throttled: even the right password is answered 429, with when to come back.
        early = await sign_in(http, user, PASSWORD)
        assert early.status_code == 429
        assert early.headers["retry-after"] == "1"
        assert "Trop de tentatives" in shown(early)
        # Another account of the same commune is not throttled.
        assert (await sign_in(http, f"bruno-{office.insee}")).status_code == 303
    office.clock.now += timedelta(seconds=1)
    async with office.browser() as http:
        assert (await sign_in(http, user, PASSWORD)).status_code == 303


async def test_a_session_ends_after_its_lifetime(office: Office) -> None:
    async with office.browser() as http:
        await sign_in(http, f"anne-{office.insee}")
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 200
        office.clock.now += timedelta(hours=12, minutes=1)
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 303


async def test_a_revoked_member_loses_the_session(office: Office) -> None:
    async with office.browser() as http:
        await sign_in(http, f"anne-{office.insee}")
        await office.store.staff_registry.revoke(f"Anne {office.insee}")
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 303
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 401


async def test_a_page_asked_before_signing_in_is_where_the_sign_in_leads(office: Office) -> None:
    async with office.browser() as http:
        asked = await http.get(f"/staff/communes/{office.insee}/compose")
        assert asked.status_code == 303
        form = await http.get(asked.headers["location"])
        assert f'name="next" value="/staff/communes/{office.insee}/compose"' in form.text
        signed = await http.post("/staff/login", data={
            "csrf": csrf_of(form.text), "user": f"anne-{office.insee}", "password": PASSWORD,
            "next": f"/staff/communes/{office.insee}/compose"})
        assert signed.headers["location"] == f"/staff/communes/{office.insee}/compose"


async def test_over_plain_http_the_cookie_is_not_secure(nats_url: str, office: Office) -> None:
    settings = NoticesSettings(nats_url=nats_url, public_url="http://127.0.0.1:8080")
    app = create_app(settings, Context(store=office.store, settings=settings,
                                       clock=office.clock))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        signed = await sign_in(http, f"anne-{office.insee}")
        assert signed.status_code == 303
        cookie = next(h for h in signed.headers.get_list("set-cookie")
                      if h.startswith(SESSION_COOKIE + "="))
        attributes = {a.strip().lower() for a in cookie.split(";")}
        assert "httponly" in attributes and "secure" not in attributes
        assert (await http.get(f"/staff/communes/{office.insee}")).status_code == 200
