"""An older front door among newer services: it reads what it knows and sets aside the rest."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import NoticePublished, subjects
from schemas.deadletters import DeadLetter
from tests.helpers import eventually, read_subject
from tests.integration.notices.helpers import FrontDoor, random_insee

pytestmark = pytest.mark.integration


async def dead_letters(fd: FrontDoor, subject: str) -> list[DeadLetter]:
    found = await read_subject(fd.store.js, subjects.dead_letter("notices"), wait_s=0.5)
    letters = [DeadLetter.model_validate_json(m.data) for m in found]
    return [d for d in letters if d.subject == subject]


async def test_the_front_door_mirrors_a_commune_written_with_fields_it_does_not_know(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    insee = random_insee()
    newer = {"insee": insee, "name": "Fouvent-le-Haut", "created_at": datetime.now(UTC)
             .isoformat(), "population": 312, "settings": {"website": None, "sms_sender": "X"}}
    await fd.store.commune_registry.kv.put(insee, json.dumps(newer).encode())

    async def mirrored() -> bool:
        return insee in fd.store.commune_registry.mirror.values

    await eventually(mirrored, "the commune reached the mirror")
    reply = await fd.http.get(f"/api/v1/communes/{insee}")
    assert reply.status_code == 200 and reply.json()["name"] == "Fouvent-le-Haut"
    assert fd.store.commune_registry.mirror.skipped == 0


async def test_an_event_with_new_fields_is_applied_and_a_newer_version_set_aside(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    created = (await fd.http.post(fd.notices_url(), headers=fd.auth, json={
        "category": "travaux", "title": "Route barrée", "body": "Lundi."})).json()
    stored = fd.store.get(fd.insee, created["id"])
    assert stored is not None
    notice = stored[1]
    subject = subjects.notice(fd.insee, notice.id)

    v2 = notice.model_copy(update={"version": 2, "title": "Route barrée mardi"})
    event: dict[str, Any] = NoticePublished(occurred_at=v2.updated_at, notice=v2).model_dump(
        mode="json") | {"kind": "corrected", "trace_id": "t1"}
    event["notice"]["audience"] = "riverains"
    await fd.store.js.publish(subject, json.dumps(event).encode(), stream="NOTICES")

    async def corrected() -> bool:
        found = fd.store.get(fd.insee, notice.id)
        return found is not None and found[1].version == 2

    await eventually(corrected, "the newer front door's correction reached the view")

    breaking = event | {"schema_version": 2, "notice": {"rewritten": True}}
    ack = await fd.store.js.publish(subject, json.dumps(breaking).encode(), stream="NOTICES")

    async def set_aside() -> bool:
        return bool(await dead_letters(fd, subject))

    await eventually(set_aside, "a dead letter for the event of a newer version")
    [letter] = await dead_letters(fd, subject)
    assert letter.stream_sequence == ack.seq and "schema_version 2" in letter.reason
    assert json.loads(base64.b64decode(letter.payload_b64))["schema_version"] == 2
    reply = await fd.http.get(f"{fd.notices_url()}/{notice.id}")
    assert reply.json()["title"] == "Route barrée mardi", "the view kept what it could read"
