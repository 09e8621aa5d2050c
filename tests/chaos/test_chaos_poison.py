"""Scenario 5: poison on the bus (not JSON, wrong schema, unknown version).

Each reader sets it aside on DEADLETTERS with the reason, after a bounded number of
attempts, and goes on: the next notice reaches every sink.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest

from schemas import subjects
from schemas.deadletters import DeadLetter
from schemas.notice import Category
from tests.chaos.harness import (
    COMMUNE,
    ChaosVillage,
    delivered_in_full,
    eventually,
    new_tag,
    record,
    record_each,
    shown,
)
from tests.helpers import read_subject

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

POISONS = [b"\x00not json at all", b'{"kind": "published", "notice": {"id": 12}}',
           b'{"schema_version": 99, "kind": "published", "notice": {}}']
# Attempts a reader may make before it sets a message aside (CRIEUR_CHANNEL_MAX_ATTEMPTS).
MAX_ATTEMPTS = 8
NOTICE_READERS = ("email-fanout", "sms-fanout", "push-fanout", "panel", "notices")
JOB_READERS = ("email-worker", "sms-worker", "push-worker")


async def test_poison_is_set_aside_and_the_next_notice_goes_out(village: ChaosVillage) -> None:
    nc = await village.connect()
    js = nc.jetstream()
    poisoned: dict[int, bytes] = {}
    try:
        started = time.time()
        for data in POISONS:
            subject = subjects.notice(COMMUNE, uuid.uuid4().hex[:16])
            ack = await js.publish(subject, data, stream="NOTICES")
            poisoned[ack.seq] = data
        for channel in ("email", "sms", "push"):
            for data in POISONS:
                ack = await js.publish(subjects.jobs(channel, COMMUNE), data, stream="JOBS",
                                       headers={"Nats-Msg-Id": uuid.uuid4().hex})
                poisoned[ack.seq] = data

        async def letters() -> list[DeadLetter]:
            found = [DeadLetter.model_validate_json(m.data)
                     for m in await read_subject(js, subjects.DEADLETTERS)]
            return [d for d in found if d.stream_sequence in poisoned
                    and base64.b64decode(d.payload_b64) == poisoned[d.stream_sequence]]

        def by_service(found: list[DeadLetter]) -> dict[str, int]:
            counts: dict[str, int] = {}
            for d in found:
                counts[d.service] = counts.get(d.service, 0) + 1
            return counts

        async def all_set_aside() -> bool:
            counts = by_service(await letters())
            return all(counts.get(s, 0) >= len(POISONS) for s in NOTICE_READERS + JOB_READERS)

        await eventually(all_set_aside, "a dead letter from every reader", within=180,
                         every=1.0)
        found = await letters()
    finally:
        await nc.close()
    for d in found:
        assert d.reason, d
        assert d.deliveries is None or d.deliveries <= MAX_ATTEMPTS, d

    # The services went on: the next notice reaches every sink, and the front door reads.
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Après le poison [{tag}]")
    expected = [village.expect(c, notice, tag) for c in ("email", "sms", "push")]
    await delivered_in_full(*expected)
    await eventually(lambda: village.on_sign(notice["id"]), "the sign", within=120)
    async with httpx.AsyncClient() as http:
        listed = await http.get(f"{village.api}/api/v1/communes/{COMMUNE}/notices")
        feed = await http.get(f"{village.api}/api/v1/communes/{COMMUNE}/feed.atom")
    assert listed.status_code == 200, listed.text
    assert feed.status_code == 200, feed.text

    counts = json.dumps(by_service(found), sort_keys=True)
    for name, t in record_each("5 poison", expected, started,
                               "next notice, after the poison").items():
        assert t.lost == 0 and t.duplicated == 0, (name, t)
    record("5 poison", "dead letters", shown(len(POISONS) * len(NOTICE_READERS + JOB_READERS),
                                             len(found)), None, counts)
