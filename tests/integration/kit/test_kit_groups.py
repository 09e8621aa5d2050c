"""Jobs queued in groups: one JOBS message for many recipients, each job settled alone.

The fan-out queues `channel_group_size` recipients' jobs in one message (schemas.jobs
.JobGroup); the worker acks it once each job is settled. A job that must come back does so
alone (its attempts carried), unless none of the group got anywhere: then the group comes
back whole.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import Counter

from nats.aio.client import Client

from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from schemas import subjects
from schemas.deliveries import DeliveryOutcome
from schemas.jobs import read_jobs
from schemas.notice import Category
from tests.integration.helpers import reports
from tests.integration.kit.conftest import (
    FAST,
    Mairie,
    StartKit,
    dead_letters,
    make_notice,
    random_insee,
    settled,
    wait_for,
    wait_planned,
)
from tests.integration.kit.fake import FakeChannel


async def _queue_empty(nc: Client, runner: ChannelRunner, within_s: float = 30) -> None:
    js = nc.jetstream()
    deadline = time.monotonic() + within_s
    while True:
        infos = [await js.consumer_info("JOBS", f"{runner.name}-{role}")
                 for role in ("worker", "alert-worker")]
        if all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos):
            return
        assert time.monotonic() < deadline, "jobs left on the queue"
        await asyncio.sleep(0.2)


async def test_a_fan_out_queues_groups_and_sends_each_recipient_once(nc: Client) -> None:
    commune = random_insee()
    recipients = [f"r{i:04d}" for i in range(150)]
    port = FakeChannel({commune: recipients})
    settings = ChannelSettings(**(FAST | {"channel_group_size": 64}))
    name = f"kit-{uuid.uuid4().hex[:8]}"
    # Planned first, with no worker: what the fan-out queued can be looked at.
    planner = ChannelRunner(port, settings, nc, name=name, worker=False)
    worker = ChannelRunner(port, settings, nc, name=name, fanout=False)
    tasks = [asyncio.create_task(planner.run())]
    try:
        await asyncio.wait_for(planner.ready.wait(), 20)
        # Not an alert: its jobs go on the normal lane, jobs.<name>.<commune>.
        notice = await Mairie(nc).publish(make_notice(commune, category=Category.INFORMATION))
        js = nc.jetstream()
        subject = subjects.jobs(name, commune)

        async def queued() -> int:
            info = await js.stream_info("JOBS", subjects_filter=subject)
            return sum((info.state.subjects or {}).values())

        await wait_planned(nc, name)
        # 150 recipients in groups of 64: three messages, the last holding 22.
        assert await queued() == 3
        last = await js.get_last_msg("JOBS", subject)
        jobs, grouped = read_jobs(last.data)
        assert grouped and [j.recipient for j in jobs] == recipients[128:]
        assert all(j.notice_id == notice.id and j.commune == commune for j in jobs)

        tasks.append(asyncio.create_task(worker.run()))
        await wait_for(lambda: len(port.sent) >= 150, within_s=30, what="150 sends")
        await _queue_empty(nc, worker)
        await asyncio.sleep(0.5)
        assert Counter(s.recipient for s in port.sent) == Counter(recipients)
        assert worker.worker is not None and worker.worker.counts.get("requeued") is None
    finally:
        planner.stop()
        worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_a_job_of_a_group_that_fails_comes_back_alone(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    recipients = [f"r{i:02d}" for i in range(10)]
    port = FakeChannel({commune: recipients}, transient={"r03": 1})
    runner = await start_kit(port)
    notice = await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) >= 10, within_s=30, what="all 10 sent")
    await settled(nc, runner)
    # The nine others went once, and were not sent again when r03 came back.
    assert Counter(s.recipient for s in port.sent) == Counter(recipients)
    assert len(port.attempts["r03"]) == 2
    assert all(len(port.attempts[r]) == 1 for r in recipients if r != "r03")
    assert runner.worker is not None and runner.worker.counts.get("requeued") == 1
    sent = [r for r in await reports(nc, "sms", commune)
            if r.notice_id == notice.id and r.outcome is DeliveryOutcome.SENT]
    assert sum(r.count for r in sent if not r.repeated) == 10


async def test_a_job_of_a_group_that_keeps_failing_is_a_dead_letter_alone(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "b", "doomed"]}, transient={"doomed": 100})
    runner = await start_kit(port, channel_max_attempts=3)
    await Mairie(nc).publish(make_notice(commune))

    async def letters() -> list[object]:
        return list(await dead_letters(nc, f"{runner.name}-worker"))

    deadline = time.monotonic() + 30
    while not await letters():
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.2)
    await _queue_empty(nc, runner)
    # Its attempts in the group count: three in all, not three more once alone.
    assert len(port.attempts["doomed"]) == 3
    assert sorted(s.recipient for s in port.sent) == ["a", "b"]
    [letter] = await dead_letters(nc, f"{runner.name}-worker")
    # The dead letter is that one job, so a replay sends it alone.
    payload = base64.b64decode(letter.payload_b64)
    jobs, grouped = read_jobs(payload)
    assert not grouped and [j.recipient for j in jobs] == ["doomed"]
    assert letter.deliveries == 3 and "gave up after 3 attempts" in letter.reason
    # Its own key: a replay is not taken for the group again (JOBS keeps ids an hour).
    assert letter.headers["Nats-Msg-Id"] == jobs[0].key


async def test_a_group_none_of_which_got_anywhere_comes_back_whole(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    recipients = ["a", "b", "c", "d"]
    # Each fails once: the sink is down for the whole group's first round.
    port = FakeChannel({commune: recipients}, transient={r: 1 for r in recipients})
    runner = await start_kit(port)
    await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) >= 4, within_s=30, what="all 4 sent")
    await _queue_empty(nc, runner)
    assert Counter(s.recipient for s in port.sent) == Counter(recipients)
    assert all(len(port.attempts[r]) == 2 for r in recipients)
    # Naked as it was: no job was queued again alone.
    assert runner.worker is not None and runner.worker.counts.get("requeued") is None
    assert runner.worker.counts.get("retried") == 4
