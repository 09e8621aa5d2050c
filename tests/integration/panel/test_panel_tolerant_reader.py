"""An older sign among newer services, on a real nats-server: new fields are fine, a newer
breaking version is set aside as a dead letter and the sign goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import NoticePublished, subjects
from schemas.deadletters import DeadLetter
from services.panel.app import Panel
from tests.helpers import eventually, read_subject
from tests.integration.panel.helpers import Mairie, make_notice, on_sign, panel_settings

pytestmark = pytest.mark.integration


async def test_new_fields_are_applied_and_a_newer_version_becomes_a_dead_letter(
    nats_url: str, mairie: Mairie, tmp_path: Path
) -> None:
    js = mairie.nc.jetstream()
    panel = Panel(panel_settings(nats_url, mairie.commune, tmp_path))
    await panel.start()
    try:
        await eventually(panel.feed.synced.is_set, "replayed")
        road = make_notice(mairie.commune, "route0001")
        event: dict[str, Any] = NoticePublished(occurred_at=road.updated_at, notice=road) \
            .model_dump(mode="json") | {"trace_id": "t-1"}
        event["notice"]["audience"] = "riverains"
        await js.publish(subjects.notice(mairie.commune, road.id), json.dumps(event).encode(),
                         stream="NOTICES")
        await eventually(lambda: on_sign(panel) == [road.id], "the newer event is shown")

        future = make_notice(mairie.commune, "futur0001")
        breaking = NoticePublished(occurred_at=future.updated_at, notice=future).model_dump(
            mode="json") | {"schema_version": 2}
        subject = subjects.notice(mairie.commune, future.id)
        ack = await js.publish(subject, json.dumps(breaking).encode(), stream="NOTICES")

        async def letters() -> list[DeadLetter]:
            found = await read_subject(js, subjects.dead_letter("panel"), wait_s=0.3)
            return [d for d in (DeadLetter.model_validate_json(m.data) for m in found)
                    if d.subject == subject]

        await eventually(letters, "a dead letter for the newer version")
        [letter] = await letters()
        assert letter.stream_sequence == ack.seq and "schema_version 2" in letter.reason
        assert on_sign(panel) == [road.id] and panel.feed.skipped == 1
    finally:
        await panel.stop()
