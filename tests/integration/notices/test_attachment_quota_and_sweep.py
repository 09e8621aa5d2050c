"""Attachments: a quota per commune (CRIEUR_ATTACHMENTS_QUOTA_BYTES) and the sweep of those
no notice names, on the session's nats-server (its real object store), with a hand-moved
clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.notices import scheduler
from tests.helpers import paris_local
from tests.integration.notices.helpers import FrontDoor, open_front_door, random_insee

pytestmark = pytest.mark.integration

DRAFT = {"category": "information", "title": "Fête du village",
         "body": "Samedi sur la place de la mairie."}
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FILE = PDF + b"\0" * 1000
QUOTA = 4 * len(FILE) + 10


@pytest.fixture
async def small_quota(nats_url: str) -> AsyncIterator[FrontDoor]:
    async with open_front_door(nats_url, attachments_quota_bytes=QUOTA) as door:
        yield door


async def upload(fd: FrontDoor, insee: str | None = None,
                 token: str | None = None) -> httpx.Response:
    return await fd.http.post(f"/api/v1/communes/{insee or fd.insee}/attachments",
                              headers={"Authorization": f"Bearer {token or fd.token}"},
                              params={"filename": "arrete.pdf"}, content=FILE)


async def test_a_commune_past_its_quota_is_refused_with_a_413_that_says_why(
        small_quota: FrontDoor) -> None:
    fd = small_quota
    for _ in range(4):
        assert (await upload(fd)).status_code == 201
    refused = await upload(fd)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "attachments_quota"
    assert f"quota of {QUOTA} bytes ({4 * len(FILE)} bytes stored)" in error["message"]
    # The quota is each commune's: another one still uploads.
    other = random_insee()
    await fd.store.commune_registry.add(other, "Pierrecourt")
    _, token = await fd.store.staff_registry.add("Maire", (other,))
    assert (await upload(fd, other, token)).status_code == 201


async def test_attachments_no_notice_names_are_deleted_after_a_day(
        small_quota: FrontDoor) -> None:
    fd = small_quota
    ids = {}
    for what in ("published", "scheduled", "previewed", "unused"):
        answer = await upload(fd)
        assert answer.status_code == 201, answer.text
        ids[what] = answer.json()["id"]
    published = await fd.http.post(fd.notices_url(), headers=fd.auth,
                                   json={**DRAFT, "attachments": [ids["published"]]})
    assert published.status_code == 201, published.text
    scheduled = await fd.http.post(fd.notices_url(), headers=fd.auth, json={
        **DRAFT, "attachments": [ids["scheduled"]], "publish_at": paris_local(5)})
    assert scheduled.status_code == 201 and scheduled.json()["state"] == "scheduled"
    preview = await fd.http.post(f"/api/v1/communes/{fd.insee}/previews", headers=fd.auth,
                                 json={**DRAFT, "attachments": [ids["previewed"]]})
    assert preview.status_code == 200, preview.text

    async def present() -> set[str]:
        return {what for what, i in ids.items() if (await fd.http.get(
            f"/communes/{fd.insee}/attachments/{i}")).status_code == 200}

    # Younger than a day: everything stays (staff may still be composing).
    fd.clock.now += timedelta(hours=23)
    await scheduler.sweep_orphan_attachments(fd.store, fd.clock())
    assert await present() == set(ids)

    fd.clock.now += timedelta(hours=2)
    assert await scheduler.sweep_orphan_attachments(fd.store, fd.clock()) >= 2
    assert await present() == {"published", "scheduled"}
    # The quota counts what is left.
    attachments = fd.app.state.attachments
    assert await attachments.used(fd.insee) == 2 * len(FILE)
