"""A dead letter keeps the exact bytes and the reason, once per poison message."""

from __future__ import annotations

import base64

import nats

from crieur.bus import ensure_streams
from crieur.deadletter import dead_letter
from schemas import subjects
from schemas.deadletters import DeadLetter
from tests.helpers import read_subject


async def test_a_dead_letter_keeps_the_bytes_and_is_recorded_once(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        poison = b"\xff not json {"
        for _ in range(3):  # the same poison message redelivered three times
            await dead_letter(js, service="test-dl", subject="notices.70299.x", data=poison,
                              reason="not JSON", deliveries=3, stream_sequence=42)
        found = await read_subject(js, subjects.dead_letter("test-dl"))
        assert len(found) == 1
        letter = DeadLetter.model_validate_json(found[0].data)
        assert base64.b64decode(letter.payload_b64) == poison
        assert (letter.reason, letter.subject, letter.deliveries) == (
            "not JSON", "notices.70299.x", 3)
    finally:
        await nc.close()
