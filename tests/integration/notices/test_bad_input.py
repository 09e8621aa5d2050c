"""Bad input gets a clear 4xx naming what is wrong, never a 500, and nothing on the bus."""

from __future__ import annotations

import pytest

from tests.helpers import paris_local
from tests.integration.notices.helpers import FrontDoor, random_insee

pytestmark = pytest.mark.integration

GOOD = {"category": "information", "title": "Mairie fermée", "body": "Fermée lundi."}


async def notices_on_stream(fd: FrontDoor) -> int:
    info = await fd.store.js.stream_info("NOTICES", subjects_filter=f"notices.{fd.insee}.>")
    return len(info.state.subjects or {})


@pytest.mark.parametrize(
    ("headers", "why"),
    [({}, "no token"), ({"Authorization": "Bearer nope"}, "unknown token"),
     ({"Authorization": "Basic abc"}, "wrong scheme")],
)
async def test_publishing_without_a_valid_token_is_401(
    front_door: FrontDoor, headers: dict[str, str], why: str
) -> None:
    response = await front_door.http.post(front_door.notices_url(), json=GOOD, headers=headers)
    assert response.status_code == 401, why
    assert response.json()["error"]["code"] == "unauthorized"
    assert await notices_on_stream(front_door) == 0


async def test_a_revoked_token_is_401(front_door: FrontDoor) -> None:
    fd = front_door
    member, token = await fd.store.staff_registry.add("Ancien adjoint", (fd.insee,))
    revoked = await fd.store.staff_registry.revoke(member.id)
    assert [m.id for m in revoked.tokens] == [member.id]
    response = await fd.http.post(fd.notices_url(), json=GOOD,
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_token_of_another_commune_is_403(front_door: FrontDoor) -> None:
    fd = front_door
    other = random_insee()
    await fd.store.commune_registry.add(other, "Dampierre-sur-Salon")
    _, other_token = await fd.store.staff_registry.add("Autre mairie", (other,))
    other_auth = {"Authorization": f"Bearer {other_token}"}
    response = await fd.http.post(fd.notices_url(), json=GOOD, headers=other_auth)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "commune_forbidden"

    mine = (await fd.http.post(fd.notices_url(), json=GOOD, headers=fd.auth)).json()
    url = f"{fd.notices_url()}/{mine['id']}"
    assert (await fd.http.patch(url, json={"title": "x"}, headers=other_auth)).status_code == 403
    assert (await fd.http.post(f"{url}/withdraw", headers=other_auth)).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"body": ""}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"category": "fete"}, "category"),
        ({"colour": "red"}, "colour"),
        ({"starts_at": paris_local(3), "ends_at": paris_local(2)}, "ends_at"),
        ({"ends_at": "demain"}, "ends_at"),
        ({"links": [{"url": "pas une adresse"}]}, "links.0.url"),
    ],
)
async def test_an_invalid_notice_is_422_naming_the_field(
    front_door: FrontDoor, change: dict[str, object], field: str
) -> None:
    body = GOOD | change
    response = await front_door.http.post(front_door.notices_url(), json=body,
                                          headers=front_door.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"]
    assert field in [f["field"] for f in error["fields"]]
    assert await notices_on_stream(front_door) == 0


async def test_a_missing_field_is_422(front_door: FrontDoor) -> None:
    response = await front_door.http.post(front_door.notices_url(), json={"title": "x"},
                                          headers=front_door.auth)
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert fields == {"category", "body"}


async def test_a_correction_is_validated_as_a_whole(front_door: FrontDoor) -> None:
    fd = front_door
    window = {"starts_at": paris_local(3, "08:00", fd.clock.now),
              "ends_at": paris_local(5, "18:00", fd.clock.now)}
    created = await fd.http.post(fd.notices_url(), json=GOOD | window, headers=fd.auth)
    assert created.status_code == 201, created.text
    url = f"{fd.notices_url()}/{created.json()['id']}"
    # Still to come, but before the notice's start: only the whole notice shows it is wrong.
    before_start = paris_local(2, "08:00", fd.clock.now)
    response = await fd.http.patch(url, json={"ends_at": before_start}, headers=fd.auth)
    assert response.status_code == 422
    assert "ends_at" in response.json()["error"]["message"]
    response = await fd.http.patch(url, json={"version": 7}, headers=fd.auth)
    assert response.status_code == 422, "version is not the caller's to set"
    assert (await fd.http.get(url)).json()["version"] == 1


@pytest.mark.parametrize("insee", ["7029", "702990", "ABCDE", "2C004", "7029a"])
async def test_a_malformed_insee_code_is_422(front_door: FrontDoor, insee: str) -> None:
    response = await front_door.http.post(front_door.notices_url(insee), json=GOOD,
                                          headers=front_door.auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insee_malformed"
    assert "insee" in response.json()["error"]["message"]


async def test_a_body_over_one_megabyte_is_413(front_door: FrontDoor) -> None:
    fd = front_door
    huge = GOOD | {"body": "x" * 1_100_000}
    response = await fd.http.post(fd.notices_url(), json=huge, headers=fd.auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    async def chunks():  # no Content-Length: the limit is counted as the body streams in
        for _ in range(20):
            yield b"x" * 100_000

    response = await fd.http.post(fd.notices_url(), content=chunks(),
                                  headers=fd.auth | {"Content-Type": "application/json"})
    assert response.status_code == 413
    assert await notices_on_stream(fd) == 0


async def test_not_json_is_422(front_door: FrontDoor) -> None:
    response = await front_door.http.post(
        front_door.notices_url(), content=b"{title: oops",
        headers=front_door.auth | {"Content-Type": "application/json"})
    assert response.status_code == 422


async def test_unknown_notice_is_404_and_withdrawn_twice_is_409(front_door: FrontDoor) -> None:
    fd = front_door
    response = await fd.http.patch(f"{fd.notices_url()}/0123456789abcdef", json={"title": "x"},
                                   headers=fd.auth)
    assert response.status_code == 404
    notice = (await fd.http.post(fd.notices_url(), json=GOOD, headers=fd.auth)).json()
    url = f"{fd.notices_url()}/{notice['id']}"
    assert (await fd.http.post(f"{url}/withdraw", headers=fd.auth)).status_code == 200
    assert (await fd.http.post(f"{url}/withdraw", headers=fd.auth)).status_code == 409
    assert (await fd.http.patch(url, json={"title": "x"}, headers=fd.auth)).status_code == 409


async def test_reading_an_unregistered_commune_is_422(front_door: FrontDoor) -> None:
    response = await front_door.http.get(front_door.notices_url(random_insee()))
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/subscriptions/email", "/api/v1/devices",
                                  "/webhooks/sms/receipts"])
async def test_a_channel_body_too_large_for_the_bus_is_a_413(front_door: FrontDoor,
                                                               path: str) -> None:
    """900 KB is under the front door's 1 MB but over NATS's max_payload once forwarded."""
    body = b'{"email": "' + b"a" * 900_000 + b'"}'
    response = await front_door.http.post(path, content=body,
                                          headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {
        "code": "body_too_large", "message": "the request body is larger than 65536 bytes"}
