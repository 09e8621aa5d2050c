"""Fair share in the normal lane, and held work that never blocks an alert.

Order is asserted, never speed: a paced sink makes the backlog long enough to tell
"alongside" from "after".
"""

from __future__ import annotations

from nats.aio.client import Client

from schemas.notice import Category
from tests.integration.kit.conftest import (
    Mairie,
    StartKit,
    make_notice,
    random_insee,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


async def test_a_small_notice_published_behind_a_large_one_goes_out_alongside_it(
        nc: Client, start_kit: StartKit) -> None:
    crowded, village = random_insee(), random_insee()
    backlog = [f"i{i:05d}" for i in range(3000)]
    small = [f"s{i:03d}" for i in range(40)]
    port = FakeChannel({crowded: backlog, village: small}, rate_per_s=100)
    await start_kit(port, channel_batch=64, channel_fanout_ahead=128)
    mairie = Mairie(nc)
    large = await mairie.publish(make_notice(crowded, category=Category.INFORMATION))
    await wait_for(lambda: len(port.sent) >= 20, what="the large notice's first sends")
    before = len(port.sent)
    second = await mairie.publish(make_notice(village, category=Category.INFORMATION))

    await wait_for(lambda: sum(s.notice_id == second.id for s in port.sent) == len(small),
                   within_s=60, what="the small notice's sends")
    order = [s.notice_id for s in port.sent]
    first, last = order.index(second.id), len(order) - order[::-1].index(second.id) - 1
    # It started behind a short backlog (what was queued ahead, a window of the large
    # notice, the batch being sent, and what went out while it was planned on a loaded
    # machine), not behind the large notice's 3,000.
    assert order[before:first].count(large.id) < len(backlog) // 4, first
    # And went out in one turn, not spread behind the rest.
    assert order[first:last + 1].count(large.id) <= 64, order[first:last + 1].count(large.id)
    assert order.count(large.id) < len(backlog) // 2
    await mairie.withdraw(large)


async def test_two_large_notices_take_turns(nc: Client, start_kit: StartKit) -> None:
    one, two = random_insee(), random_insee()
    port = FakeChannel({one: [f"a{i:05d}" for i in range(2000)],
                        two: [f"b{i:05d}" for i in range(2000)]}, rate_per_s=200)
    await start_kit(port, channel_batch=64, channel_fanout_ahead=128)
    mairie = Mairie(nc)
    first = await mairie.publish(make_notice(one, category=Category.INFORMATION))
    await wait_for(lambda: len(port.sent) >= 10, what="the first notice's first sends")
    second = await mairie.publish(make_notice(two, category=Category.INFORMATION))
    await wait_for(lambda: sum(s.notice_id == second.id for s in port.sent) >= 600,
                   within_s=60, what="600 of the second notice's sends")
    order = [s.notice_id for s in port.sent]
    start = order.index(second.id)
    since = order[start:]
    # Round robin by notice: since the second began, the sink went to both about evenly.
    assert since.count(first.id) >= since.count(second.id) // 3, (
        since.count(first.id), since.count(second.id))
    for notice in (first, second):
        await mairie.withdraw(notice)


async def test_a_correction_published_while_its_notice_is_paced_follows_it(
        nc: Client, start_kit: StartKit) -> None:
    commune, other = random_insee(), random_insee()
    recipients = [f"r{i:04d}" for i in range(600)]
    port = FakeChannel({commune: recipients, other: [f"o{i:04d}" for i in range(600)]},
                       rate_per_s=300)
    await start_kit(port, channel_batch=64, channel_fanout_ahead=64)
    mairie = Mairie(nc)
    # Another notice planned alongside, so both are paced by the queue.
    await mairie.publish(make_notice(other, category=Category.INFORMATION))
    notice = await mairie.publish(make_notice(commune, category=Category.INFORMATION))
    await wait_for(lambda: any(s.notice_id == notice.id for s in port.sent),
                   what="the first sends")
    corrected = await mairie.correct(notice, title="Marché: déplacé place de l’église")

    await wait_for(lambda: {s.recipient for s in port.sent if s.version == 2} == set(recipients),
                   within_s=60, what="version 2 for everyone")
    for recipient in recipients:
        mine = [(s.kind, s.version) for s in port.sent if s.recipient == recipient]
        assert mine in ([("published", 1), ("corrected", 2)], [("published", 2)]), mine
    assert corrected.version == 2


async def test_an_alert_goes_out_while_held_jobs_fill_the_normal_window(
        nc: Client, start_kit: StartKit) -> None:
    crowded, village = random_insee(), random_insee()
    # Every non-alert is held for an hour (quiet hours): 50 messages of 8 jobs, a normal
    # window of 8 messages, all of them held.
    port = FakeChannel({crowded: [f"i{i:04d}" for i in range(400)],
                        village: [f"a{i:03d}" for i in range(20)]}, hold_s=3600.0)
    runner = await start_kit(port, channel_group_size=8, channel_max_ack_pending=8,
                             channel_fanout_ahead=16)
    mairie = Mairie(nc)
    information = await mairie.publish(make_notice(crowded, category=Category.INFORMATION))
    js = nc.jetstream()

    async def window_full() -> bool:
        info = await js.consumer_info("JOBS", f"{runner.name}-worker")
        return info.num_ack_pending == 8

    await wait_for(lambda: len(port.held) >= 64, what="a window of held jobs")
    assert await window_full()
    alert = await mairie.publish(make_notice(village, category=Category.ALERTE))

    await wait_for(lambda: sum(s.notice_id == alert.id for s in port.sent) == 20,
                   within_s=20, what="the alert's sends")
    assert not any(s.notice_id == information.id for s in port.sent)
    # Still held, the normal window still full: the alert went through its own.
    assert await window_full()
    await mairie.withdraw(information)


async def test_jobs_the_port_holds_never_wait_for_the_pace_nor_reach_send(
        nc: Client, start_kit: StartKit) -> None:
    crowded, village = random_insee(), random_insee()
    # One send every 2 s: were held jobs paced, 40 of them would take 80 s to be held.
    port = FakeChannel({crowded: [f"q{i:03d}" for i in range(40)],
                        village: ["alert0"]}, rate_per_s=0.5, hook_hold_s=3600.0)
    await start_kit(port, channel_group_size=8)
    mairie = Mairie(nc)
    information = await mairie.publish(make_notice(crowded, category=Category.INFORMATION))
    await wait_for(lambda: len(set(port.held)) == 40, within_s=20,
                   what="every non-alert held by the hook")
    assert port.attempts == {}
    alert = await mairie.publish(make_notice(village, category=Category.ALERTE))
    await wait_for(lambda: any(s.notice_id == alert.id for s in port.sent), within_s=20,
                   what="the alert, not held")
    assert not any(s.notice_id == information.id for s in port.sent)
    await mairie.withdraw(information)
