"""Scenario 6: a notice published twice (a client retrying with the same Idempotency-Key,
the event sent again with the same Nats-Msg-Id): stored once, delivered once."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from schemas import subjects
from schemas.notice import Category
from tests.chaos.harness import (
    COMMUNE,
    ChaosVillage,
    delivered_in_full,
    new_tag,
    record,
    record_each,
    shown,
)
from tests.helpers import read_subject

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


async def test_a_notice_published_twice_is_stored_and_delivered_once(
        village: ChaosVillage) -> None:
    tag = new_tag()
    title = f"Marché de Noël [{tag}]"
    started = time.time()
    async with httpx.AsyncClient() as http:
        # A client that timed out and tried again at once, three times over, then once more.
        tries = await asyncio.gather(*(village.publish(Category.EVENEMENT, title, key=tag,
                                                       client=http) for _ in range(3)))
        again = await village.publish(Category.EVENEMENT, title, key=tag, client=http)
    ids = {n["id"] for n in [*tries, again]}
    assert len(ids) == 1, ids
    notice_id = ids.pop()

    # The event itself sent again on the bus, with its Nats-Msg-Id: JetStream keeps one.
    nc = await village.connect()
    try:
        js = nc.jetstream()
        stored = await read_subject(js, subjects.notice(COMMUNE, notice_id))
        assert len(stored) == 1
        # Only the id: the front door's optimistic-concurrency header (expected last
        # subject sequence) would be refused before the duplicate is even looked for.
        msg_id = (stored[0].headers or {})["Nats-Msg-Id"]
        ack = await js.publish(stored[0].subject, stored[0].data, stream="NOTICES",
                               headers={"Nats-Msg-Id": msg_id})
        assert ack.duplicate, "the same Nats-Msg-Id was stored twice"
        assert len(await read_subject(js, subjects.notice(COMMUNE, notice_id))) == 1
    finally:
        await nc.close()

    expected = [village.expect(c, again, tag) for c in ("email", "sms", "push")]
    await delivered_in_full(*expected)
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{village.api}/api/v1/communes/{COMMUNE}/notices",
                                 params={"limit": 200})).json()
    same = [n for n in listed["notices"] if n["title"] == title]
    record("6 published twice", "notices", shown(1, len(same)), None,
           "4 POSTs with one Idempotency-Key, the event sent again")
    for name, t in record_each("6 published twice", expected, started).items():
        assert t.lost == 0 and t.duplicated == 0, (name, t)
    assert len(same) == 1
