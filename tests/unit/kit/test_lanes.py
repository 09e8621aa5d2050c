"""The priority gate: a freed slot goes to an alert's sender first; cancelled waiters
neither keep nor lose a slot."""

from __future__ import annotations

import asyncio

from crieur.channel.lanes import Lane, PriorityGate, lane_of
from schemas.notice import Category


def test_only_alerte_takes_the_alert_lane() -> None:
    assert lane_of(Category.ALERTE) is Lane.ALERT
    assert {lane_of(c) for c in Category if c is not Category.ALERTE} == {Lane.NORMAL}


async def test_a_freed_slot_goes_to_the_waiting_alert_before_earlier_normal_waiters() -> None:
    gate = PriorityGate(1)
    await gate.acquire(Lane.NORMAL)
    order: list[str] = []

    async def take(lane: Lane, label: str) -> None:
        await gate.acquire(lane)
        order.append(label)
        gate.release()

    waiters = [asyncio.create_task(take(Lane.NORMAL, "normal-1")),
               asyncio.create_task(take(Lane.NORMAL, "normal-2"))]
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(take(Lane.ALERT, "alert")))
    await asyncio.sleep(0)
    assert gate.alerts_first(Lane.NORMAL) and not gate.alerts_first(Lane.ALERT)
    gate.release()
    await asyncio.gather(*waiters)
    assert order == ["alert", "normal-1", "normal-2"]


async def test_a_normal_sender_does_not_jump_ahead_of_a_waiting_alert() -> None:
    gate = PriorityGate(2)
    await gate.acquire(Lane.NORMAL)
    await gate.acquire(Lane.ALERT)
    alert = asyncio.create_task(gate.acquire(Lane.ALERT))
    await asyncio.sleep(0)
    normal = asyncio.create_task(gate.acquire(Lane.NORMAL))
    gate.release()
    await asyncio.sleep(0)
    assert alert.done() and not normal.done()
    gate.release()
    await asyncio.wait_for(normal, 1)


async def test_a_cancelled_waiter_leaves_its_place_and_the_slot_count_intact() -> None:
    gate = PriorityGate(1)
    await gate.acquire(Lane.NORMAL)
    cancelled = asyncio.create_task(gate.acquire(Lane.ALERT))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert not gate.alerts_first(Lane.NORMAL)
    gate.release()
    # The one slot is free again, once: a second taker waits.
    await asyncio.wait_for(gate.acquire(Lane.NORMAL), 1)
    second = asyncio.create_task(gate.acquire(Lane.NORMAL))
    await asyncio.sleep(0.01)
    assert not second.done()
    gate.release()
    await asyncio.wait_for(second, 1)


async def test_the_normal_lane_stands_aside_while_alert_work_is_under_way() -> None:
    # Between two batches of the alert lane no alert sender waits: the normal lane must
    # still not slip into that gap, until the alert lane has been quiet for quiet_s.
    gate = PriorityGate(2, quiet_s=0.05)
    with gate.alert_work():
        assert gate.alerts_first(Lane.NORMAL) and not gate.alerts_first(Lane.ALERT)
        normal = asyncio.create_task(gate.acquire(Lane.NORMAL))
        await asyncio.sleep(0.01)
        assert not normal.done()
        # The alert lane itself takes a free slot at once.
        await asyncio.wait_for(gate.acquire(Lane.ALERT), 1)
        gate.release()
    # The work ended: the normal lane waits out the quiet time, then goes on.
    await asyncio.sleep(0)
    assert not normal.done() and gate.alerts_first(Lane.NORMAL)
    await asyncio.wait_for(normal, 1)
    assert not gate.alerts_first(Lane.NORMAL)
    gate.release()


async def test_new_alert_work_within_the_quiet_time_keeps_the_normal_lane_aside() -> None:
    gate = PriorityGate(1, quiet_s=0.05)
    with gate.alert_work():
        pass
    normal = asyncio.create_task(gate.acquire(Lane.NORMAL))
    with gate.alert_work():  # the next batch, fetched within the quiet time
        await asyncio.sleep(0.1)
        assert not normal.done()
    await asyncio.wait_for(normal, 1)
    gate.release()
