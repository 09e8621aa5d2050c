"""The staff sign-in throttle (issue 25), through real front doors on a real nats-server.

Every attempt is counted in `staff_sessions` before its password is checked; past a few,
per login and per client address, each must wait a doubling delay (429 + Retry-After,
password not checked); and the argon2 checks of a process are bounded (429 when full).
Which attempts had their password checked is seen from outside: a checked wrong password
is a 401, an unchecked attempt a 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.auth import SESSION_COOKIE, Failures
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.staff.helpers import PASSWORD, Office, csrf_of, shown, sign_in

pytestmark = pytest.mark.integration

WRONG = "not the password at all"


@dataclass
class Door:
    """A front door with its own throttle settings, on the office's nats-server."""

    app: Any

    def browser(self, client: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(client, 50000))
        return httpx.AsyncClient(transport=transport, base_url="https://test")


@asynccontextmanager
async def front_door(nats_url: str, office: Office, store: NatsStore | None = None,
                     **throttle: Any) -> AsyncIterator[Door]:
    settings = NoticesSettings(nats_url=nats_url, public_url="https://crieur.example",
                               **throttle)
    app = create_app(settings, Context(store=store or office.store, settings=settings,
                                       clock=office.clock))
    async with app.router.lifespan_context(app):
        yield Door(app)


def address(office: Office, last: int) -> str:
    """An IPv4 client no other test of the session uses (from the unique commune code)."""
    n = int(office.insee)
    return f"172.{16 + n // 65536}.{n // 256 % 256}.{last}"


def throttled(reply: httpx.Response) -> bool:
    """A 429 that says, in French, when to come back; no session came with it."""
    if reply.status_code != 429:
        return False
    assert int(reply.headers["retry-after"]) > 0
    assert SESSION_COOKIE + "=" not in reply.headers.get("set-cookie", "")
    return True


async def test_thirty_attempts_at_once_have_only_a_few_passwords_checked(
    nats_url: str, office: Office,
) -> None:
    user = f"anne-{office.insee}"
    async with front_door(nats_url, office, signin_free_failures=3,
                          signin_client_free_failures=1000, signin_delay_s=60,
                          signin_concurrent_verifies=4, signin_verify_queue=100) as door:
        browsers = [door.browser(address(office, 1)) for _ in range(30)]
        forms = []
        for http in browsers:
            forms.append(csrf_of((await http.get("/staff/login")).text))
        passwords = [WRONG] * 29 + [PASSWORD]
        with capture_logs() as logs:
            replies = await asyncio.gather(*(
                http.post("/staff/login", data={"csrf": token, "user": user,
                                                "password": password, "next": "/staff"})
                for http, token, password in zip(browsers, forms, passwords, strict=True)))
        right = replies[-1]
        checked = [r for r in replies if not throttled(r)]
        # Three let through, whatever their order; the other 27 never reached argon2.
        assert len(checked) == 3, [r.status_code for r in replies]
        assert all(r.status_code == 401 for r in checked if r is not right)
        assert sum(1 for e in logs if e["event"] == "staff_signin_throttled") == 27
        for reply in replies:
            if reply.status_code == 429:
                assert "Trop de tentatives de connexion" in shown(reply)
                assert "réessayez dans 1 minute" in shown(reply)
        # Nothing logged carries a password.
        assert not any(WRONG in str(e) or PASSWORD in str(e) for e in logs)
        failed = [e for e in logs if e["event"] == "staff_signin_failed"]
        assert failed and all(e["login"] == user and e["client"] == address(office, 1)
                              for e in failed)

        assert right.status_code in (303, 429)
        async with door.browser(address(office, 1)) as http:
            if right.status_code == 429:
                # The rightful user, refused with the right password while throttled...
                again = await sign_in(http, user)
                assert throttled(again)
                # ...gets in once the delay has passed.
                office.clock.now += timedelta(seconds=int(again.headers["retry-after"]))
            assert (await sign_in(http, user)).status_code == 303
        for http in browsers:
            await http.aclose()


async def test_the_right_password_waits_its_turn_then_gets_in(
    nats_url: str, office: Office,
) -> None:
    user = f"anne-{office.insee}"
    async with front_door(nats_url, office, signin_free_failures=2, signin_delay_s=10,
                          signin_max_delay_s=40) as door:
        async with door.browser(address(office, 2)) as http:
            for _ in range(2):
                assert (await sign_in(http, user, WRONG)).status_code == 401
            early = await sign_in(http, user, PASSWORD)
            assert throttled(early)
            assert early.headers["retry-after"] == "10"
            assert "réessayez dans 10 secondes" in shown(early)
            # Knocking again does not push the turn back: 9 s later, 1 s is left.
            office.clock.now += timedelta(seconds=9)
            assert (await sign_in(http, user, PASSWORD)).headers["retry-after"] == "1"
            office.clock.now += timedelta(seconds=1)
            assert (await sign_in(http, user, PASSWORD)).status_code == 303
        # A success starts the login's count again.
        async with door.browser(address(office, 2)) as http:
            assert (await sign_in(http, user, WRONG)).status_code == 401
            assert (await sign_in(http, user, WRONG)).status_code == 401


async def test_each_further_failure_doubles_the_wait_up_to_the_cap(
    nats_url: str, office: Office,
) -> None:
    user = f"anne-{office.insee}"
    async with front_door(nats_url, office, signin_free_failures=1, signin_delay_s=10,
                          signin_max_delay_s=35) as door, \
            door.browser(address(office, 3)) as http:
        assert (await sign_in(http, user, WRONG)).status_code == 401
        waits = []
        for _ in range(4):
            early = await sign_in(http, user, WRONG)
            assert throttled(early)
            wait = int(early.headers["retry-after"])
            waits.append(wait)
            office.clock.now += timedelta(seconds=wait)
            assert (await sign_in(http, user, WRONG)).status_code == 401
        assert waits == [10, 20, 35, 35]
        early = await sign_in(http, user, PASSWORD)
        assert throttled(early)
        assert early.headers["retry-after"] == "35"
        assert "réessayez dans 35 secondes" in shown(early)
        office.clock.now += timedelta(seconds=35)
        assert (await sign_in(http, user, PASSWORD)).status_code == 303


async def test_one_client_is_throttled_across_logins(nats_url: str, office: Office) -> None:
    async with front_door(nats_url, office, signin_free_failures=100,
                          signin_client_free_failures=3, signin_delay_s=30) as door:
        guesser, mairie = address(office, 4), address(office, 5)
        async with door.browser(guesser) as http:
            for n in range(3):
                reply = await sign_in(http, f"nobody-{n}-{office.insee}", WRONG)
                assert reply.status_code == 401
            # Another login, even with its right password: this client waits first.
            assert throttled(await sign_in(http, f"anne-{office.insee}"))
            assert throttled(await sign_in(http, f"bruno-{office.insee}", WRONG))
        async with door.browser(mairie) as http:
            assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        office.clock.now += timedelta(seconds=30)
        async with door.browser(guesser) as http:
            assert (await sign_in(http, f"bruno-{office.insee}")).status_code == 303


async def test_an_ipv6_client_is_its_slash_64(nats_url: str, office: Office) -> None:
    prefix = f"2001:db8:{int(office.insee) % 0x10000:x}:1"
    async with front_door(nats_url, office, signin_free_failures=100,
                          signin_client_free_failures=2, signin_delay_s=30) as door:
        async with door.browser(f"{prefix}::1") as http:
            for _ in range(2):
                assert (await sign_in(http, f"nobody-{office.insee}", WRONG)).status_code == 401
        # Another address of the same /64 is the same client...
        async with door.browser(f"{prefix}:ffff:ffff:ffff:ffff") as http:
            assert throttled(await sign_in(http, f"anne-{office.insee}"))
        # ...another /64 is not.
        async with door.browser(f"2001:db8:{int(office.insee) % 0x10000:x}:2::1") as http:
            assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303


async def test_a_second_front_door_on_the_same_nats_sees_the_same_throttle(
    nats_url: str, office: Office,
) -> None:
    user = f"bruno-{office.insee}"
    other_store = await NatsStore.connect(nats_url, name="test-staff-second-door")
    try:
        async with front_door(nats_url, office, signin_free_failures=2,
                              signin_delay_s=60) as first, \
                front_door(nats_url, office, other_store, signin_free_failures=2,
                           signin_delay_s=60) as second:
            async with first.browser(address(office, 6)) as http:
                for _ in range(2):
                    assert (await sign_in(http, user, WRONG)).status_code == 401
            # Another process, another client: the login's count is the same.
            async with second.browser(address(office, 7)) as http:
                assert throttled(await sign_in(http, user))
                office.clock.now += timedelta(seconds=60)
                assert (await sign_in(http, user)).status_code == 303
    finally:
        await other_store.close()


async def test_password_checks_at_once_are_bounded(nats_url: str, office: Office) -> None:
    # A password hash that takes about a second to check: the checks overlap for sure.
    slow = PasswordHasher(time_cost=300, memory_cost=8192, parallelism=1)
    login = f"anne-{office.insee}"
    account = await office.store.staff_registry.account(login)
    assert account is not None
    await office.store.staff_registry.kv.put(
        "login." + login,
        account.model_copy(update={"password_hash": slow.hash(PASSWORD)})
        .model_dump_json().encode())
    async with front_door(nats_url, office, signin_free_failures=100,
                          signin_client_free_failures=100, signin_concurrent_verifies=1,
                          signin_verify_queue=1) as door:
        browsers = [door.browser(address(office, 8)) for _ in range(6)]
        forms = [csrf_of((await http.get("/staff/login")).text) for http in browsers]
        with capture_logs() as logs:
            replies = await asyncio.gather(*(
                http.post("/staff/login", data={"csrf": token, "user": login,
                                                "password": WRONG, "next": "/staff"})
                for http, token in zip(browsers, forms, strict=True)))
        # One check running, one waiting for it; the four others refused at once.
        busy = [r for r in replies if throttled(r)]
        assert sorted(r.status_code for r in replies) == [401, 401, 429, 429, 429, 429]
        for reply in busy:
            assert "très sollicité" in shown(reply)
            assert reply.headers["retry-after"] == "5"
        assert sum(1 for e in logs if e["event"] == "staff_signin_busy") == 4
        # A refused attempt was given back: only the two checked count against the login.
        entry = await office.store.sessions.get("f." + login)
        assert Failures.model_validate_json(entry.value or b"").count == 2
        for http in browsers:
            await http.aclose()


async def test_behind_a_trusted_proxy_the_client_is_read_from_x_forwarded_for(
    nats_url: str, office: Office,
) -> None:
    proxy, stranger = address(office, 10), address(office, 11)
    n = int(office.insee)
    alice, bob = (f"198.51.{n // 256 % 256}.{n % 256}", f"203.0.{n // 256 % 256}.{n % 256}")
    async with front_door(nats_url, office, signin_free_failures=100,
                          signin_client_free_failures=1, signin_delay_s=30,
                          trusted_proxies=f"{proxy}/32") as door:

        async def through(peer: str, forwarded: str, user: str) -> httpx.Response:
            async with door.browser(peer) as http:
                http.headers["X-Forwarded-For"] = forwarded
                return await sign_in(http, user, WRONG)

        with capture_logs() as logs:
            assert (await through(proxy, alice, f"nobody-{office.insee}")).status_code == 401
        assert [e["client"] for e in logs if e["event"] == "staff_signin_failed"] == [alice]
        # Another client behind the same proxy has its own count...
        assert (await through(proxy, f"{alice}, {bob}", f"nobody-{office.insee}")
                ).status_code == 401
        # ...and the first one's is spent.
        assert throttled(await through(proxy, alice, f"anne-{office.insee}"))
        # From a peer that is no trusted proxy, the header is anyone's to write: ignored,
        # neither blaming a spent client nor buying a fresh one.
        carol = f"192.0.{n // 256 % 256}.{n % 256}"
        assert (await through(stranger, alice, f"nobody-{office.insee}")).status_code == 401
        assert throttled(await through(stranger, carol, f"nobody-{office.insee}"))
