"""One publication for a group of communes, through the public API on a real nats-server."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crieur.geo import geography
from services.notices.groups import Group, GroupRegistry
from tests.integration.notices.helpers import FrontDoor, random_insee

pytestmark = pytest.mark.integration

CRIEUR = str(Path(sys.executable).parent / "crieur")  # the console script in .venv

ALERT = {"category": "alerte", "title": "Tempête cette nuit",
         "body": "Vents violents attendus : rentrez ce qui peut s'envoler."}


async def make_group(door: FrontDoor, size: int, group_id: str) -> tuple[list[str], str]:
    """`size` registered communes (the fixture's among them) in one group, and a token for it."""
    communes = [door.insee] + [random_insee() for _ in range(size - 1)]
    await asyncio.gather(*(door.store.commune_registry.add(i, f"Commune {i}") for i in communes[1:]))
    await GroupRegistry(door.store.groups_kv).put(Group(
        id=group_id, name="Communauté de test", kind="list", communes=tuple(communes),
        created_at=datetime.now(UTC)))
    _, token = await door.store.staff_registry.add("Président", tuple(communes), (group_id,))
    return communes, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_official_list_knows_lavoncourt() -> None:
    geo = geography()
    lavoncourt = geo.communes["70299"]
    assert (lavoncourt.name, lavoncourt.departement, lavoncourt.postal_codes) == (
        "Lavoncourt", "70", ("70120",))
    assert lavoncourt.epci is not None
    assert geo.epcis[lavoncourt.epci] == "CC des Quatre Rivières"
    assert "70299" in {c.insee for c in geo.in_epci(lavoncourt.epci)}
    assert len(geo.in_departement("70")) > 500
    assert "@etalab/decoupage-administratif@" in geo.header[0]


async def test_one_request_reaches_500_communes_and_one_withdraws_them(
        front_door: FrontDoor) -> None:
    door = front_door
    communes, token = await make_group(door, 500, "cc-test-500")
    answer = await door.http.post("/api/v1/groups/cc-test-500/notices", json=ALERT,
                                  headers=bearer(token) | {"Idempotency-Key": "tempete-1"})
    assert answer.status_code == 201, answer.text
    broadcast = answer.json()
    assert {c["commune"] for c in broadcast["copies"]} == set(communes)
    assert {c["state"] for c in broadcast["copies"]} == {"published"}
    assert broadcast["skipped"] == []

    # Each commune's public list has its copy; its staff list marks it as the group's.
    for insee in (communes[0], communes[250], communes[-1]):
        public = (await door.http.get(f"/api/v1/communes/{insee}/notices")).json()
        assert [n["title"] for n in public["notices"]] == [ALERT["title"]]
        assert public["notices"][0]["broadcast_id"] == broadcast["id"]
    staff_list = (await door.http.get(f"/api/v1/communes/{door.insee}/staff/notices",
                                      headers=door.auth)).json()
    assert staff_list["notices"][0]["notice"]["group"] == "cc-test-500"

    # The same key again is the same publication, not 500 more notices.
    again = await door.http.post("/api/v1/groups/cc-test-500/notices", json=ALERT,
                                 headers=bearer(token) | {"Idempotency-Key": "tempete-1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == broadcast["id"]
    assert len(door.store.view.all(communes[7])) == 1

    # A commune's staff cannot withdraw or correct their copy alone.
    copy_id = next(c["notice_id"] for c in broadcast["copies"] if c["commune"] == door.insee)
    refused = await door.http.post(f"{door.notices_url()}/{copy_id}/withdraw",
                                   headers=door.auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "broadcast_copy"
    assert "cc-test-500" in refused.json()["error"]["message"]
    refused = await door.http.patch(f"{door.notices_url()}/{copy_id}", headers=door.auth,
                                    json={"title": "Autre titre"})
    assert refused.status_code == 409

    # One correction acts on every copy.
    corrected = await door.http.patch(
        f"/api/v1/groups/cc-test-500/notices/{broadcast['id']}", headers=bearer(token),
        json={"title": "Tempête : vigilance orange"})
    assert corrected.status_code == 200, corrected.text
    assert {c["state"] for c in corrected.json()["copies"]} == {"corrected"}
    found = door.store.get(communes[-1], copy_id_of(broadcast, communes[-1]))
    assert found is not None and found[1].title == "Tempête : vigilance orange"

    # One request withdraws it everywhere.
    withdrawn = await door.http.post(
        f"/api/v1/groups/cc-test-500/notices/{broadcast['id']}/withdraw", headers=bearer(token))
    assert withdrawn.status_code == 200, withdrawn.text
    assert {c["state"] for c in withdrawn.json()["copies"]} == {"withdrawn"}
    for insee in (communes[0], communes[499]):
        public = (await door.http.get(f"/api/v1/communes/{insee}/notices")).json()
        assert public["notices"] == []


def copy_id_of(broadcast: dict[str, object], insee: str) -> str:
    copies = broadcast["copies"]
    assert isinstance(copies, list)
    return str(next(c["notice_id"] for c in copies if c["commune"] == insee))


async def test_each_communes_approval_rule_holds_its_copy(front_door: FrontDoor) -> None:
    door = front_door
    communes, token = await make_group(door, 3, "cc-test-approval")
    await door.store.commune_registry.require_approval(communes[1], ("alerte",))
    ends = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    answer = await door.http.post("/api/v1/groups/cc-test-approval/notices",
                                  json=ALERT | {"ends_at": ends}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    states = {c["commune"]: c["state"] for c in answer.json()["copies"]}
    assert states == {communes[0]: "published", communes[1]: "pending_approval",
                      communes[2]: "published"}


async def test_a_group_is_only_for_its_staff(front_door: FrontDoor) -> None:
    door = front_door
    await make_group(door, 2, "cc-test-closed")
    refused = await door.http.post("/api/v1/groups/cc-test-closed/notices", json=ALERT,
                                   headers=door.auth)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "group_forbidden"
    unknown = await door.http.post("/api/v1/groups/no-such-group/notices", json=ALERT,
                                   headers=door.auth)
    assert unknown.status_code == 404


async def crieur(nats_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    process = await asyncio.create_subprocess_exec(
        CRIEUR, *args, env=env | {"CRIEUR_NATS_URL": nats_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_an_epci_from_the_official_list_and_its_staff(
        front_door: FrontDoor, nats_url: str) -> None:
    code, out, err = await crieur(nats_url, "commune", "add", "70299")
    assert code == 0 and "Lavoncourt" in out, err
    code, out, err = await crieur(nats_url, "group", "add", "--epci", "247000623")
    assert code == 0, err
    assert "group epci-247000623 (CC des Quatre Rivières)" in out
    code, token, err = await crieur(nats_url, "staff", "add", "--group", "epci-247000623",
                                    "--name", "Communauté", "--no-password")
    assert code == 0, err
    answer = await front_door.http.post("/api/v1/groups/epci-247000623/notices", json=ALERT,
                                        headers=bearer(token.strip()))
    assert answer.status_code == 201, answer.text
    assert "70299" in {c["commune"] for c in answer.json()["copies"]}
    # Communes of the EPCI that are not registered get no copy, and are said so.
    assert len(answer.json()["skipped"]) > 10

    code, _, err = await crieur(nats_url, "group", "add", "--epci", "999999999")
    assert code == 2 and "no EPCI" in err
    code, _, err = await crieur(nats_url, "group", "add", "x", "--communes", "70299,99999")
    assert code == 2 and "99999" in err
    code, _, err = await crieur(nats_url, "staff", "add", "--group", "nope", "--name", "Y",
                                "--no-password")
    assert code == 2 and "no group" in err
