"""One notice, many recipients: each gets it once; failures are retried, bounced or set aside."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from nats.aio.client import Client

from schemas import subjects
from schemas.deliveries import DeliveryOutcome, DeliveryReport
from tests.conftest import read_subject
from tests.integration.kit.conftest import (
    Mairie,
    StartKit,
    dead_letters,
    make_notice,
    random_insee,
    reports,
    settled,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


async def test_each_recipient_gets_a_notice_once_and_it_is_built_once(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: [f"r{i}" for i in range(300)]})
    runner = await start_kit(port)
    notice = await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) >= 300, what="300 sends")
    await settled(nc, runner)  # anything more would be a duplicate
    assert Counter(s.recipient for s in port.sent) == {f"r{i}": 1 for i in range(300)}
    assert {(s.notice_id, s.version, s.kind) for s in port.sent} == {
        (notice.id, 1, "published")}
    assert port.prepared == [f"{notice.id}:1:published"]
    found = [r for r in await reports(nc, "sms", commune) if r.notice_id == notice.id]
    assert Counter(r.outcome for r in found) == {DeliveryOutcome.SENT: 300}
    assert {r.target for r in found} == {f"r{i}" for i in range(300)}


async def test_a_batch_is_reported_in_a_few_messages_that_name_every_recipient(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: [f"r{i}" for i in range(200)]})
    await start_kit(port, channel_batch=100)
    notice = await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(port.sent) >= 200, what="200 sends")

    async def stored() -> list[DeliveryReport]:
        found = await read_subject(nc.jetstream(), subjects.delivery("sms", commune), wait_s=0.5)
        return [DeliveryReport.model_validate_json(m.data) for m in found]

    deadline = time.monotonic() + 30
    messages = await stored()
    while sum(r.count for r in messages) < 200:
        assert time.monotonic() < deadline, "every send reported"
        await asyncio.sleep(0.2)
        messages = await stored()
    # One message per batch (at most 100 jobs each), not one per job.
    assert len(messages) <= 20, len(messages)
    assert all(r.notice_id == notice.id and r.outcome == DeliveryOutcome.SENT
               for r in messages)
    assert all(r.count == max(1, len(r.targets)) for r in messages)
    assert sorted(t for r in messages for t in (r.targets or (r.target,))) == sorted(
        f"r{i}" for i in range(200))


async def test_a_transient_failure_is_retried_with_backoff_then_sent(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "b", "c"]}, transient={"b": 2})
    await start_kit(port, channel_backoff_s=0.3)
    await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 3, what="3 sends")
    assert sorted(s.recipient for s in port.sent) == ["a", "b", "c"]
    tries = port.attempts["b"]
    assert len(tries) == 3
    # 0.3 s then 0.6 s, less at most 20 % jitter
    assert tries[1] - tries[0] >= 0.3 * 0.8 - 0.05
    assert tries[2] - tries[1] >= 0.6 * 0.8 - 0.05


async def test_retry_after_is_honoured(nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a"]}, transient={"a": 1}, retry_after=1.5)
    await start_kit(port, channel_backoff_s=0.1)
    await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 1, what="the send")
    tries = port.attempts["a"]
    assert len(tries) == 2
    assert tries[1] - tries[0] >= 1.5 - 0.05


async def test_a_permanent_failure_is_not_retried_and_the_channel_acts(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "bad", "c"]}, permanent={"bad"})
    runner = await start_kit(port)
    notice = await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 2 and port.gone == ["bad"], what="2 sends, 1 gone")
    await settled(nc, runner)  # a retry of "bad" would be an unacked job
    assert len(port.attempts["bad"]) == 1
    found = [r for r in await reports(nc, "sms", commune) if r.notice_id == notice.id]
    assert Counter(r.outcome for r in found) == {DeliveryOutcome.SENT: 2,
                                                 DeliveryOutcome.BOUNCED: 1}
    bounced = next(r for r in found if r.outcome is DeliveryOutcome.BOUNCED)
    assert "550" in bounced.detail


async def test_a_recipient_who_left_meanwhile_is_dropped_not_bounced(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "left"]}, unsubscribed={"left"})
    await start_kit(port)
    notice = await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 1, what="1 send")
    deadline = time.monotonic() + 20
    while True:
        found = [r for r in await reports(nc, "sms", commune) if r.notice_id == notice.id]
        if len(found) == 2:
            break
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    assert {(r.outcome, r.detail) for r in found} == {
        (DeliveryOutcome.SENT, ""), (DeliveryOutcome.DROPPED, "unsubscribed")}
    assert port.gone == [] and len(port.attempts["left"]) == 1


async def test_after_the_last_attempt_a_job_is_a_dead_letter_and_a_failed_report(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "doomed"]}, transient={"doomed": 100})
    runner = await start_kit(port, channel_max_attempts=3, channel_backoff_s=0.1)
    notice = await Mairie(nc).publish(make_notice(commune))

    async def failed() -> list[object]:
        return [r for r in await reports(nc, "sms", commune)
                if r.notice_id == notice.id and r.outcome is DeliveryOutcome.FAILED]

    deadline = time.monotonic() + 30
    while not await failed():
        assert time.monotonic() < deadline, "no failed report"
        await asyncio.sleep(0.2)
    assert len(port.attempts["doomed"]) == 3
    assert [s.recipient for s in port.sent] == ["a"]
    letters = await dead_letters(nc, f"{runner.name}-worker")
    assert len(letters) == 1
    assert "gave up after 3 attempts" in letters[0].reason and letters[0].deliveries == 3


async def test_a_send_slower_than_ack_wait_is_not_sent_twice(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["slow", "b"]}, slow={"slow": 5.0})
    runner = await start_kit(port, channel_ack_wait_s=2.0)
    await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 2, what="2 sends")
    # Every job acked: the slow one was not redelivered meanwhile, and cannot be now.
    await settled(nc, runner)
    assert len(port.attempts["slow"]) == 1
    assert sorted(s.recipient for s in port.sent) == ["b", "slow"]


async def test_transient_failures_pause_the_whole_sink(nc: Client, start_kit: StartKit) -> None:
    # A sink down for everyone: 16 jobs must not mean 16 attempts per backoff step.
    commune = random_insee()
    recipients = [f"r{i}" for i in range(16)]
    port = FakeChannel({commune: recipients}, transient={r: 1 for r in recipients},
                       concurrency=2)
    await start_kit(port, channel_backoff_s=0.4, channel_backoff_max_s=0.4)
    await Mairie(nc).publish(make_notice(commune))
    await asyncio.sleep(1.2)
    early = sum(len(t) for t in port.attempts.values())
    assert early <= 2 * 4, early  # concurrency 2, at most 4 gate openings so far
    await wait_for(lambda: len(port.sent) == 16, within_s=60, what="16 sends")
    assert all(len(t) == 2 for t in port.attempts.values())  # one failure, one success each
