"""Corrections go to those who got the notice; a withdrawal stops what is not sent yet."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

from nats.aio.client import Client

from crieur import trace
from schemas import subjects
from schemas.deliveries import DeliveryOutcome
from schemas.notice import Notice
from tests.helpers import read_subject
from tests.integration.kit.conftest import (
    Mairie,
    StartKit,
    make_notice,
    random_insee,
    reports,
    settled,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


async def under_way(nc: Client, start_kit: StartKit, recipients: int, sent: int,
                    notice: Notice | None = None, trace: dict[str, str] | None = None,
                    ) -> tuple[str, list[str], FakeChannel, Mairie, Notice]:
    """A notice fanning out to `recipients` at 100 a second, caught once `sent` went out:
    its commune, recipients, channel, mairie (with `trace` headers) and the notice."""
    notice = notice or make_notice(random_insee())
    everyone = [f"r{i}" for i in range(recipients)]
    port = FakeChannel({notice.commune: everyone}, rate_per_s=100, concurrency=2)
    await start_kit(port)
    mairie = Mairie(nc, trace=trace)
    await mairie.publish(notice)
    await wait_for(lambda: len(port.sent) >= sent, what=f"{sent} sends")
    return notice.commune, everyone, port, mairie, notice


async def test_a_correction_goes_only_to_those_who_got_the_notice(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    first = [f"r{i}" for i in range(20)]
    port = FakeChannel({commune: list(first)})
    runner = await start_kit(port)
    mairie = Mairie(nc)
    notice = await mairie.publish(make_notice(commune))
    await wait_for(lambda: len(port.sent) == 20, what="20 sends")
    port.recipients_by_commune[commune].append("newcomer")  # subscribed after it went out

    v2 = await mairie.correct(notice, title="Tempête : vents à 130 km/h")
    await wait_for(lambda: len(port.sent) == 40, what="20 corrections")
    await settled(nc, runner)  # the newcomer's copy, or a duplicate, would come before
    corrections = [s for s in port.sent if s.kind == "corrected"]
    assert sorted(s.recipient for s in corrections) == sorted(first)
    assert {s.version for s in corrections} == {2}
    assert port.prepared.count(f"{v2.id}:2:corrected") == 1


async def test_a_correction_during_the_fan_out_reaches_everyone_once(
        nc: Client, start_kit: StartKit) -> None:
    _, _, port, mairie, notice = await under_way(nc, start_kit, 200, 30)
    await mairie.correct(notice, body="Restez chez vous jusqu'à demain.")

    got: dict[str, list[tuple[int, str]]] = defaultdict(list)

    def settled() -> bool:
        got.clear()
        for s in port.sent:
            got[s.recipient].append((s.version, s.kind))
        # each has v2, either as a first publication or as a correction after v1
        return len(got) == 200 and all((2, "published") in g or (2, "corrected") in g
                                       for g in got.values())

    await wait_for(settled, within_s=60, what="everyone has version 2")
    await asyncio.sleep(1.0)
    settled()
    for recipient, seen in got.items():
        assert seen in ([(1, "published"), (2, "corrected")], [(2, "published")]), (
            recipient, seen)
    assert any(seen == [(2, "published")] for seen in got.values())


async def test_a_withdrawal_during_the_fan_out_stops_the_rest(
        nc: Client, start_kit: StartKit) -> None:
    commune, _, port, mairie, notice = await under_way(nc, start_kit, 400, 40)
    await mairie.withdraw(notice)
    withdrawn_at = time.monotonic()

    def published() -> list[str]:
        return [s.recipient for s in port.sent if s.kind == "published"]

    def withdrawals() -> list[str]:
        return [s.recipient for s in port.sent if s.kind == "withdrawn"]

    await wait_for(lambda: len(withdrawals()) > 0 and sorted(withdrawals()) == sorted(published()),
                   within_s=30, what="a withdrawal to each who got it")
    # Sends already under way when it was seen may finish; nothing starts afterwards.
    late = [s for s in port.sent if s.kind == "published" and s.at > withdrawn_at + 0.3]
    assert late == []
    assert len(published()) < 200
    assert Counter(withdrawals()) == Counter(published())  # once each

    async def dropped() -> int:
        return sum(1 for r in await reports(nc, "sms", commune)
                   if r.notice_id == notice.id and r.outcome is DeliveryOutcome.DROPPED)

    deadline = time.monotonic() + 30
    while await dropped() < 400 - len(published()):
        assert time.monotonic() < deadline, "every job not sent is reported dropped"
        await asyncio.sleep(0.3)


async def test_an_expired_notice_is_not_sent(nc: Client, start_kit: StartKit) -> None:
    from datetime import UTC, datetime, timedelta

    commune = random_insee()
    port = FakeChannel({commune: ["a", "b"]})
    await start_kit(port)
    now = datetime.now(UTC)
    notice = await Mairie(nc).publish(make_notice(
        commune, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1)))
    live = await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(port.sent) == 2, what="the live notice")
    await asyncio.sleep(0.5)
    assert {s.notice_id for s in port.sent} == {live.id} and notice.id != live.id


async def test_a_withdrawal_stops_the_planning_of_a_large_fan_out(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    # Large enough that planning it outlasts the first send and the withdrawal (jobs are
    # queued in groups: 30,000 were planned before the withdrawal landed).
    port = FakeChannel({commune: [f"r{i:06d}" for i in range(200_000)]}, rate_per_s=50)
    runner = await start_kit(port)
    mairie = Mairie(nc)
    notice = await mairie.publish(make_notice(commune))
    await wait_for(lambda: len(port.sent) >= 1, what="the first send")
    await mairie.withdraw(notice)
    js = nc.jetstream()

    async def left() -> int:
        infos = [await js.consumer_info("JOBS", f"{runner.name}-{role}")
                 for role in ("worker", "alert-worker")]
        return sum(int(i.num_pending) + int(i.num_ack_pending) for i in infos)

    deadline = time.monotonic() + 60
    while await left() > 0 or not any(s.kind == "withdrawn" for s in port.sent):
        assert time.monotonic() < deadline, "the queue did not empty"
        await asyncio.sleep(0.2)
    assert runner.worker is not None
    planned = sum(runner.worker.counts.get(k, 0) for k in ("sent", "dropped", "duplicate"))
    planned -= sum(1 for s in port.sent if s.kind == "withdrawn")
    assert planned < 200_000, "planning went on after the withdrawal"
    assert Counter(s.recipient for s in port.sent if s.kind == "withdrawn") == Counter(
        s.recipient for s in port.sent if s.kind == "published")


async def test_jobs_the_worker_queues_itself_carry_the_notices_trace(
        nc: Client, start_kit: StartKit) -> None:
    """A correction during the fan-out: the follow-ups and the superseded publications
    the worker queues carry the trace, so every report can be followed back to the notice."""
    notice = make_notice(random_insee())
    commune, everyone, port, mairie, notice = await under_way(
        nc, start_kit, 200, 30, notice,
        trace={trace.NOTICE_ID: notice.id, trace.TRACE_ID: "trace-tempete"})
    await mairie.correct(notice, body="Restez chez vous jusqu'à demain.")
    await wait_for(lambda: {s.recipient for s in port.sent if s.version == 2} == set(everyone),
                   within_s=60, what="everyone has version 2")
    await asyncio.sleep(1.0)
    found = await read_subject(nc.jetstream(), subjects.delivery(port.channel, commune),
                               wait_s=1.0)
    kinds = {s.kind for s in port.sent if s.version == 2}
    assert "corrected" in kinds and "published" in kinds, kinds  # both paths were taken
    assert found
    untraced = [m.data[:120] for m in found
                if (m.headers or {}).get(trace.TRACE_ID) != "trace-tempete"]
    assert untraced == []
