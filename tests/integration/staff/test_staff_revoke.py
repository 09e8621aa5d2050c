"""`crieur staff revoke` and `passwd` end every way a person has in: tokens, password and
the browser sessions already open (issue 23), driven through the real CLI and front door."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from services.notices.auth import SESSION_COOKIE
from tests.integration.staff.helpers import PASSWORD, Office, crieur, sign_in

pytestmark = pytest.mark.integration

NOTICE = {"category": "information", "title": "Mairie fermée", "body": "Fermée lundi."}
NEW_PASSWORD = "un tout autre mot de passe"


@dataclass
class Person:
    name: str
    login: str
    token: str
    token_id: str
    account_id: str


async def add_person(nats_url: str, office: Office, first: str) -> Person:
    """A member of staff added as the operator adds one: a token and a password."""
    name = f"{first} Maire {office.insee}"
    code, out, err = await crieur(nats_url, "staff", "add", "--commune", office.insee,
                                  "--name", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, err
    found = re.search(r"staff (\w+) \(", err)
    assert found is not None, err
    login = f"{first.lower()}-maire-{office.insee}".replace("é", "e")
    account = await office.store.staff_registry.account(login)
    assert account is not None
    return Person(name, login, out.strip(), found.group(1), account.id)


async def publishes(office: Office, token: str) -> int:
    async with office.browser() as http:
        reply = await http.post(f"/api/v1/communes/{office.insee}/notices", json=NOTICE,
                                headers={"Authorization": f"Bearer {token}"})
    return reply.status_code


async def page(http: httpx.AsyncClient, office: Office) -> int:
    return (await http.get(f"/staff/communes/{office.insee}")).status_code


@pytest.mark.parametrize("by", ["login", "name", "token id", "sign-in id"])
async def test_revoke_ends_the_token_the_password_and_the_sessions(
    nats_url: str, office: Office, by: str
) -> None:
    elise = await add_person(nats_url, office, "Élise")
    anne_login = f"anne-{office.insee}"
    async with office.browser() as http, office.browser() as other:
        assert (await sign_in(http, elise.login)).status_code == 303
        assert await page(http, office) == 200
        assert await publishes(office, elise.token) == 201
        assert (await sign_in(other, anne_login)).status_code == 303

        who = {"login": elise.login, "name": elise.name, "token id": elise.token_id,
               "sign-in id": elise.account_id}[by]
        code, out, err = await crieur(nats_url, "staff", "revoke", who)
        assert code == 0, err
        assert f"token {elise.token_id}" in out
        assert f"sign-in {elise.login}" in out and "open sessions ended" in out

        assert await page(http, office) == 303  # the open session is over
        assert await publishes(office, elise.token) == 401
        assert (await sign_in(http, elise.login)).status_code == 401
        # Only her: a colleague's session and token go on.
        assert await page(other, office) == 200
        assert await publishes(office, office.token) == 201


async def test_a_password_set_again_after_revoking_does_not_revive_old_sessions(
    nats_url: str, office: Office
) -> None:
    elise = await add_person(nats_url, office, "Élise")
    async with office.browser() as http:
        await sign_in(http, elise.login)
        old_cookie = http.cookies.get(SESSION_COOKIE)
        assert (await crieur(nats_url, "staff", "revoke", elise.login))[0] == 0
        code, _, err = await crieur(nats_url, "staff", "passwd", elise.login, "--password-stdin",
                                    stdin=NEW_PASSWORD + "\n")
        assert code == 0, err
        assert await page(http, office) == 303
    async with office.browser() as thief:
        thief.cookies.set(SESSION_COOKIE, old_cookie or "", domain="test", path="/staff")
        assert await page(thief, office) == 303
    async with office.browser() as http:
        # Signed in again, though with no commune: revoking took her tokens' communes away.
        assert (await sign_in(http, elise.login, NEW_PASSWORD)).status_code == 303
        assert (await http.get("/staff")).status_code == 200


async def test_revoking_someone_already_revoked_says_so_and_succeeds(
    nats_url: str, office: Office
) -> None:
    elise = await add_person(nats_url, office, "Élise")
    assert (await crieur(nats_url, "staff", "revoke", elise.name))[0] == 0
    code, out, err = await crieur(nats_url, "staff", "revoke", elise.token_id)
    assert code == 0, err
    assert "already revoked" in out


async def test_revoking_someone_unknown_fails_and_changes_nothing(
    nats_url: str, office: Office
) -> None:
    before = await crieur(nats_url, "staff", "list")
    async with office.browser() as http:
        await sign_in(http, f"anne-{office.insee}")
        code, out, err = await crieur(nats_url, "staff", "revoke", f"personne-{office.insee}")
        assert code == 1 and out == ""
        assert f"no staff member with login, name or id 'personne-{office.insee}'" in err
        assert await page(http, office) == 200
    assert await publishes(office, office.token) == 201
    assert await crieur(nats_url, "staff", "list") == before


async def test_passwd_ends_the_sessions_open_with_the_old_password(
    nats_url: str, office: Office
) -> None:
    elise = await add_person(nats_url, office, "Élise")
    async with office.browser() as laptop, office.browser() as phone:
        await sign_in(laptop, elise.login)
        await sign_in(phone, elise.login)
        assert await page(laptop, office) == 200 and await page(phone, office) == 200
        code, _, err = await crieur(nats_url, "staff", "passwd", elise.name, "--password-stdin",
                                    stdin=NEW_PASSWORD + "\n")
        assert code == 0, err
        assert "sessions ended" in err
        assert await page(laptop, office) == 303 and await page(phone, office) == 303
        assert (await sign_in(laptop, elise.login)).status_code == 401
        assert (await sign_in(laptop, elise.login, NEW_PASSWORD)).status_code == 303
        assert await page(laptop, office) == 200
    # Her token is not her password: scripts keep publishing.
    assert await publishes(office, elise.token) == 201


async def test_staff_list_shows_one_line_per_person_with_login_name_and_ids(
    nats_url: str, office: Office
) -> None:
    elise = await add_person(nats_url, office, "Élise")
    # A second token for the same person (a script of hers), and a token-only script.
    code, out, err = await crieur(nats_url, "staff", "add", "--commune", office.insee,
                                  "--name", elise.name, "--no-password")
    assert code == 0, err
    second = re.search(r"staff (\w+) \(", err)
    assert second is not None
    script = f"Script {office.insee}"
    assert (await crieur(nats_url, "staff", "add", "--commune", office.insee,
                         "--name", script, "--no-password"))[0] == 0

    code, out, err = await crieur(nats_url, "staff", "list")
    assert code == 0, err
    hers = [line for line in out.splitlines() if elise.name in line]
    assert len(hers) == 1, out
    columns = hers[0].split("\t")
    assert columns[:2] == [elise.login, elise.name]
    for an_id in (elise.token_id, second.group(1), elise.account_id):
        assert an_id in columns[2]
    assert columns[3] == office.insee and columns[4].startswith("active")
    scripts = [line for line in out.splitlines() if script in line]
    assert len(scripts) == 1 and scripts[0].split("\t")[0] == "-"

    assert (await crieur(nats_url, "staff", "revoke", elise.login))[0] == 0
    code, out, _ = await crieur(nats_url, "staff", "list")
    hers = [line for line in out.splitlines() if elise.name in line]
    assert len(hers) == 1 and hers[0].split("\t")[4].startswith("revoked ")
