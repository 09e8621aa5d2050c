"""Alerts first: an alert's jobs overtake a channel's backlog; older queues still drain."""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from crieur.channel.fanout import JobTemplate
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from schemas import subjects
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Category
from tests.integration.kit.conftest import (
    FAST,
    Mairie,
    StartKit,
    make_notice,
    random_insee,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


async def test_an_alert_overtakes_a_paced_backlog_of_information(
        nc: Client, start_kit: StartKit) -> None:
    crowded, village = random_insee(), random_insee()
    backlog = [f"i{i:05d}" for i in range(3000)]
    waiting = [f"a{i:03d}" for i in range(40)]
    # A paced sink: the backlog takes a minute to send, the alert's 40 two seconds.
    port = FakeChannel({crowded: backlog, village: waiting}, rate_per_s=50)
    await start_kit(port, channel_batch=256)
    mairie = Mairie(nc)
    information = await mairie.publish(make_notice(crowded, category=Category.INFORMATION))
    await wait_for(lambda: len(port.sent) >= 20, what="the backlog's first sends")
    alert = await mairie.publish(make_notice(village, category=Category.ALERTE))

    await wait_for(lambda: sum(s.notice_id == alert.id for s in port.sent) == 40,
                   within_s=30, what="the alert's 40 sends")
    order = [s.notice_id for s in port.sent]
    backlog_sent = order.count(information.id)
    # Every alert job went out while most of the backlog still waited.
    assert backlog_sent < len(backlog) // 2, backlog_sent
    first, last = order.index(alert.id), len(order) - order[::-1].index(alert.id) - 1
    # Once the alert's jobs began, only sends already in flight (concurrency 4) slipped
    # between them.
    assert order[first:last + 1].count(information.id) <= port.concurrency


async def test_an_alert_is_planned_while_a_large_fan_out_is_still_being_planned(
        nc: Client, start_kit: StartKit) -> None:
    crowded, village = random_insee(), random_insee()
    port = FakeChannel({crowded: [f"i{i:06d}" for i in range(300_000)],
                        village: ["a1", "a2"]}, rate_per_s=200)
    runner = await start_kit(port)
    mairie = Mairie(nc)
    information = await mairie.publish(make_notice(crowded, category=Category.INFORMATION))
    await wait_for(lambda: len(port.sent) >= 1, what="the backlog's first send")
    alert = await mairie.publish(make_notice(village, category=Category.ALERTE))

    await wait_for(lambda: sum(s.notice_id == alert.id for s in port.sent) == 2,
                   within_s=30, what="the alert's sends")
    # The information's planning had not finished: its event is still pending.
    info = await nc.jetstream().consumer_info("NOTICES", f"{runner.name}-fanout")
    assert info.num_ack_pending == 1, "the large fan-out was already planned"
    await mairie.withdraw(information)  # no need to send the rest


async def test_a_correction_of_an_alert_follows_its_publication_in_the_alert_lane(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    recipients = [f"r{i:03d}" for i in range(200)]
    port = FakeChannel({commune: recipients}, rate_per_s=100)
    await start_kit(port)
    mairie = Mairie(nc)
    notice = await mairie.publish(make_notice(commune, category=Category.ALERTE))
    await wait_for(lambda: len(port.sent) >= 10, what="the first sends")
    corrected = await mairie.correct(notice, title="Tempête: rester à l’abri")

    await wait_for(lambda: {s.recipient for s in port.sent if s.version == 2} == set(recipients),
                   within_s=30, what="version 2 for everyone")
    for recipient in recipients:
        mine = [(s.kind, s.version) for s in port.sent if s.recipient == recipient]
        # A correction only after the publication; or version 2 published straight away.
        assert mine in ([("published", 1), ("corrected", 2)], [("published", 2)]), mine
    assert corrected.version == 2


async def test_jobs_queued_by_the_previous_version_are_sent_after_the_upgrade(
        nc: Client) -> None:
    """Before lanes, `<name>-worker` read `jobs.<name>.>`: its durable is narrowed in place,
    its queued jobs and those it had handed out are sent, and the alert lane works too."""
    commune = random_insee()
    name = f"kit-{uuid.uuid4().hex[:8]}"
    js = nc.jetstream()
    runner = ChannelRunner(FakeChannel(), ChannelSettings(**FAST), nc, name=name)
    await runner.ensure()
    await js.add_consumer("JOBS", ConsumerConfig(
        durable_name=f"{name}-worker", deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT, ack_wait=3.0, max_deliver=-1, max_ack_pending=2000,
        filter_subject=subjects.jobs(name, ">")))
    mairie = Mairie(nc)
    notice = await mairie.publish(make_notice(commune, category=Category.INFORMATION))
    old = [f"old{i:02d}" for i in range(20)]
    template = JobTemplate(Job(channel="sms", commune=commune, notice_id=notice.id,
                               version=1, kind=EventKind.PUBLISHED, recipient="x"))
    for recipient in old:
        payload, key = template.render(recipient)
        await js.publish(subjects.jobs(name, commune), payload, stream="JOBS",
                         headers={"Nats-Msg-Id": key})
    # The old worker had taken three and died before acking them.
    sub = await js.pull_subscribe(subjects.jobs(name, ">"), durable=f"{name}-worker",
                                  stream="JOBS")
    assert len(await sub.fetch(3, timeout=5)) == 3
    await sub.unsubscribe()

    alert_commune = random_insee()
    port = FakeChannel({alert_commune: ["a1", "a2", "a3"]})
    runner = ChannelRunner(port, ChannelSettings(**FAST), nc, name=name)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.ready.wait(), 20)
        info = await js.consumer_info("JOBS", f"{name}-worker")
        assert info.config.filter_subject == subjects.channel_jobs(name)
        alert = await mairie.publish(make_notice(alert_commune, category=Category.ALERTE))
        await wait_for(lambda: {s.recipient for s in port.sent} >= {*old, "a1", "a2", "a3"},
                       within_s=30, what="the old jobs and the alert's")
        assert sorted(s.recipient for s in port.sent if s.notice_id == notice.id) == old
        assert sorted(s.recipient for s in port.sent if s.notice_id == alert.id) == [
            "a1", "a2", "a3"]
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def test_an_alert_published_before_the_alert_fan_out_existed_is_planned(
        nc: Client) -> None:
    """Before lanes, `<name>-fanout` planned every event: an alert it had not reached when
    the service was upgraded is planned by the new alert fan-out, not skipped."""
    commune = random_insee()
    name = f"kit-{uuid.uuid4().hex[:8]}"
    js = nc.jetstream()
    await ChannelRunner(FakeChannel(), ChannelSettings(**FAST), nc, name=name).ensure()
    await js.add_consumer("NOTICES", ConsumerConfig(
        durable_name=f"{name}-fanout", deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT, ack_wait=3.0, max_deliver=-1, max_ack_pending=1))
    # Published while the previous version was stopped for the upgrade.
    alert = await Mairie(nc).publish(make_notice(commune, category=Category.ALERTE))

    port = FakeChannel({commune: ["a1", "a2"]})
    runner = ChannelRunner(port, ChannelSettings(**FAST), nc, name=name)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: sorted(s.recipient for s in port.sent
                                      if s.notice_id == alert.id) == ["a1", "a2"],
                       within_s=30, what="the alert's sends")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
