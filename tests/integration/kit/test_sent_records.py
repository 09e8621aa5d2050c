"""Sent records: created once, found again in one batched read, and who got a notice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from nats.aio.client import Client

from crieur.channel.sent import SentRecords
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job


def _job(notice_id: str, recipient: str, version: int = 1,
         kind: EventKind = EventKind.PUBLISHED) -> Job:
    return Job(channel=Channel.SMS, commune="70299", notice_id=notice_id, version=version,
               kind=kind, recipient=recipient)


def _now() -> datetime:
    return datetime.now(UTC)


async def test_a_record_is_created_once_and_found_in_a_batch(nc: Client) -> None:
    sent = await SentRecords.open(nc.jetstream(), f"kit-{uuid.uuid4().hex[:8]}")
    notice_id = uuid.uuid4().hex[:16]
    jobs = [_job(notice_id, f"r{i}") for i in range(700)]  # more than one multi_last request
    for job in jobs[::3]:
        assert await sent.record(job, "t", _now()) is True
    assert await sent.record(jobs[0], "t", _now()) is False  # a second send shows

    found = await sent.sent_among(jobs)
    assert found == {sent.key(job) for job in jobs[::3]}
    assert await sent.sent_among([_job(notice_id, "nobody")]) == set()
    assert await sent.was_sent(jobs[3]) and not await sent.was_sent(jobs[1])


async def test_who_got_a_notice_for_a_correction_and_a_withdrawal(nc: Client) -> None:
    sent = await SentRecords.open(nc.jetstream(), f"kit-{uuid.uuid4().hex[:8]}")
    nid = uuid.uuid4().hex[:16]
    await sent.record(_job(nid, "a"), "t", _now())
    await sent.record(_job(nid, "b"), "t", _now())
    await sent.record(_job(nid, "b", 2, EventKind.CORRECTED), "t", _now())
    await sent.record(_job(nid, "c", 2, EventKind.PUBLISHED), "t", _now())
    await sent.record(_job(uuid.uuid4().hex[:16], "other"), "t", _now())

    assert await sent.recipients(nid, EventKind.CORRECTED, 2) == {"a", "b"}
    assert await sent.recipients(nid, EventKind.CORRECTED, 3) == {"a", "b", "c"}
    assert await sent.recipients(nid, EventKind.WITHDRAWN, 2) == {"a", "b", "c"}
    assert await sent.recipients(uuid.uuid4().hex[:16], EventKind.WITHDRAWN, 1) == set()


async def test_who_got_a_notice_is_read_whole_every_time(nc: Client) -> None:
    """Found by the chaos suite (scenario 7): nats-py's KV watch may say "nothing more" before
    its first entry, when the server has pushed every record before answering the
    consumer-info request the watch makes; a withdrawal was then planned for nobody."""
    sent = await SentRecords.open(nc.jetstream(), f"kit-{uuid.uuid4().hex[:8]}")
    nid = uuid.uuid4().hex[:16]
    everyone = {f"r{i:04d}" for i in range(1500)}
    await asyncio.gather(*(sent.record(_job(nid, r), "t", _now()) for r in everyone))
    for _ in range(30):
        assert await sent.recipients(nid, EventKind.WITHDRAWN, 1) == everyone
