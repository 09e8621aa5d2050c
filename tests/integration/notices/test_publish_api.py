"""Staff publish, correct and withdraw over HTTP; the NOTICES stream says the same."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import pytest

from schemas import NoticeDraft, NoticePatch, parse_notice_event
from services.notices import lifecycle
from services.notices.store import ConcurrentChange
from tests.helpers import read_subject
from tests.integration.notices.helpers import FrontDoor, random_insee

pytestmark = pytest.mark.integration

ROAD_CLOSED = {
    "category": "travaux",
    "title": "Route de Gray fermée",
    "body": "La route de Gray est fermée du 2 au 4 décembre pour travaux.",
}


async def stream_events(fd: FrontDoor, notice_id: str) -> list[dict[str, object]]:
    """Every event stored for one notice, read straight from JetStream."""
    messages = await read_subject(fd.store.js, f"notices.{fd.insee}.{notice_id}")
    return [json.loads(msg.data) for msg in messages]


async def test_a_notice_is_published_corrected_and_withdrawn(front_door: FrontDoor) -> None:
    fd = front_door
    created = await fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=fd.auth)
    assert created.status_code == 201, created.text
    notice = created.json()
    assert notice["state"] == "published" and notice["version"] == 1
    assert notice["commune"] == fd.insee and notice["author"] == "Secrétaire"
    assert notice["created_at"].endswith(("+01:00", "+02:00")), "times are Europe/Paris"

    listed = (await fd.http.get(fd.notices_url())).json()
    assert [n["id"] for n in listed["notices"]] == [notice["id"]]
    assert listed["commune"]["name"] == "Lavoncourt"

    url = f"{fd.notices_url()}/{notice['id']}"
    patched = await fd.http.patch(url, json={"title": "Route de Gray fermée jusqu’au 5"},
                                  headers=fd.auth)
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["state"] == "corrected"
    assert patched.json()["body"] == ROAD_CLOSED["body"], "fields not in the patch stay"

    withdrawn = await fd.http.post(f"{url}/withdraw", headers=fd.auth)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    assert (await fd.http.get(fd.notices_url())).json()["notices"] == []
    assert (await fd.http.get(url)).json()["state"] == "withdrawn"

    events = await stream_events(fd, notice["id"])
    assert [(e["kind"], e["notice"]["version"]) for e in events] == [
        ("published", 1), ("corrected", 2), ("withdrawn", 2)]
    for event in events:
        parse_notice_event(json.dumps(event))  # every stored event honours the contract


async def test_a_retried_post_with_the_same_idempotency_key_makes_one_notice(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    headers = fd.auth | {"Idempotency-Key": "fete-2026"}
    racing = await asyncio.gather(
        *(fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=headers) for _ in range(5))
    )
    assert [r.status_code for r in racing] == [201] * 5
    first = racing[0]
    assert {r.json()["id"] for r in racing} == {first.json()["id"]}
    third = await fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=headers)
    assert third.json()["id"] == first.json()["id"]
    assert len(await stream_events(fd, first.json()["id"])) == 1

    other_body = ROAD_CLOSED | {"title": "Autre chose"}
    reused = await fd.http.post(fd.notices_url(), json=other_body, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_retry_after_a_crash_mid_publish_publishes_with_the_claimed_id(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    # What a crash between claiming the key and publishing leaves behind: a claim only.
    member = await fd.store.staff_registry.for_token(fd.token)
    assert member is not None
    scoped = f"{member.id}:{fd.insee}:crash-key"
    key = hashlib.sha256(scoped.encode()).hexdigest()
    request = hashlib.sha256(
        NoticeDraft.model_validate(ROAD_CLOSED).model_dump_json().encode()).hexdigest()
    assert await fd.store.idempotency.claim(key, {"notice_id": "0000aaaa0000bbbb", "request": request}) is None
    retried = await fd.http.post(fd.notices_url(), json=ROAD_CLOSED,
                                 headers=fd.auth | {"Idempotency-Key": "crash-key"})
    assert retried.status_code == 201
    assert retried.json()["id"] == "0000aaaa0000bbbb"
    assert len(await stream_events(fd, "0000aaaa0000bbbb")) == 1


async def test_a_scheduled_notice_goes_out_at_its_time(front_door: FrontDoor) -> None:
    fd = front_door
    later = fd.clock.now + timedelta(hours=2)
    draft = ROAD_CLOSED | {"publish_at": later.isoformat()}
    created = await fd.http.post(fd.notices_url(), json=draft, headers=fd.auth)
    assert created.status_code == 201
    assert created.json()["state"] == "scheduled"
    assert (await fd.http.get(fd.notices_url())).json()["notices"] == []
    assert await stream_events(fd, created.json()["id"]) == []
    one = f"{fd.notices_url()}/{created.json()['id']}"
    assert (await fd.http.get(one)).status_code == 404, "residents do not see it yet"
    staff_view = await fd.http.get(one, headers=fd.auth)
    assert staff_view.status_code == 200 and staff_view.json()["state"] == "scheduled"

    fd.clock.now = later + timedelta(seconds=1)
    for _ in range(50):
        if (await fd.http.get(fd.notices_url())).json()["notices"]:
            break
        await asyncio.sleep(0.1)
    listed = (await fd.http.get(fd.notices_url())).json()["notices"]
    assert [n["id"] for n in listed] == [created.json()["id"]]
    assert listed[0]["state"] == "published"
    assert [e["kind"] for e in await stream_events(fd, created.json()["id"])] == ["published"]


async def test_validity_window_decides_what_is_current(front_door: FrontDoor) -> None:
    fd = front_door
    now = fd.clock.now
    window = {"starts_at": (now + timedelta(days=1)).isoformat(),
              "ends_at": (now + timedelta(days=2)).isoformat()}
    created = await fd.http.post(fd.notices_url(), json=ROAD_CLOSED | window, headers=fd.auth)
    assert created.status_code == 201
    assert (await fd.http.get(fd.notices_url())).json()["notices"] == [], "not started yet"
    fd.clock.now = now + timedelta(days=1, hours=1)
    assert len((await fd.http.get(fd.notices_url())).json()["notices"]) == 1
    fd.clock.now = now + timedelta(days=3)
    assert (await fd.http.get(fd.notices_url())).json()["notices"] == []
    one = (await fd.http.get(f"{fd.notices_url()}/{created.json()['id']}")).json()
    assert one["state"] == "expired"


async def test_alerts_come_first(front_door: FrontDoor) -> None:
    fd = front_door
    await fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=fd.auth)
    storm = {"category": "alerte", "title": "Tempête", "body": "Restez chez vous."}
    fd.clock.now -= timedelta(minutes=5)  # the alert is older, and still first
    await fd.http.post(fd.notices_url(), json=storm, headers=fd.auth)
    categories = [n["category"] for n in (await fd.http.get(fd.notices_url())).json()["notices"]]
    assert categories == ["alerte", "travaux"]


async def test_a_correction_based_on_a_stale_read_is_refused(front_door: FrontDoor) -> None:
    fd = front_door
    created = (await fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=fd.auth)).json()
    read = fd.store.get(fd.insee, created["id"])
    assert read is not None
    read_seq, v1 = read
    now = fd.clock()
    # Two staff members read version 1; the first correction is stored...
    first = lifecycle.correct(v1, NoticePatch(title="Version A"), author="A", now=now)
    await fd.store.append(lifecycle.event_for(first, now), read_seq)
    # ...the second, made from the same read, is refused instead of overwriting it.
    second = lifecycle.correct(v1, NoticePatch(title="Version B"), author="B", now=now)
    with pytest.raises(ConcurrentChange):
        await fd.store.append(lifecycle.event_for(second, now), read_seq)
    final = (await fd.http.get(f"{fd.notices_url()}/{created['id']}")).json()
    assert (final["title"], final["version"]) == ("Version A", 2)
    events = await read_subject(fd.store.js, f"notices.{fd.insee}.{created['id']}")
    assert [parse_notice_event(m.data).notice.title for m in events] == [
        ROAD_CLOSED["title"], "Version A"]


async def test_two_corrections_at_once_never_lose_one(front_door: FrontDoor) -> None:
    fd = front_door
    notice = (await fd.http.post(fd.notices_url(), json=ROAD_CLOSED, headers=fd.auth)).json()
    url = f"{fd.notices_url()}/{notice['id']}"
    results = await asyncio.gather(
        fd.http.patch(url, json={"title": "Version A"}, headers=fd.auth),
        fd.http.patch(url, json={"title": "Version B"}, headers=fd.auth),
    )
    # Either the second was refused (409), or it was made on top of the first: never two
    # version 2s, one silently overwriting the other.
    applied = sorted((r.json()["version"], r.json()["title"]) for r in results
                     if r.status_code == 200)
    assert sorted(r.status_code for r in results) in ([200, 200], [200, 409])
    assert [v for v, _ in applied] == list(range(2, 2 + len(applied)))
    final = (await fd.http.get(url)).json()
    assert (final["version"], final["title"]) == applied[-1]


async def test_unregistered_commune_is_refused(front_door: FrontDoor) -> None:
    fd = front_door
    other = random_insee()
    response = await fd.http.post(fd.notices_url(other), json=ROAD_CLOSED, headers=fd.auth)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "insee"
