"""Scenario 1: a service killed in the middle of a fan-out, then started again.

SIGKILL: nothing lost; duplicates at most the jobs in flight at the moment of the kill
(what the server had handed out and not yet seen acked, read just before the kill).
SIGTERM: the service drains what it had started, hands back the rest: no duplicate.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from schemas.notice import Category
from services.push.format import topic
from tests.chaos.harness import (
    COMMUNE,
    PUSH_BURST,
    ChaosVillage,
    Expected,
    Tally,
    delivered_in_full,
    eventually,
    new_tag,
    record,
    shown,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


async def kill_mid_fanout(village: ChaosVillage, service: str, sig: int,
                          category: Category) -> tuple[Tally, int | None, int, float]:
    """Publish, wait until the service is well into it, signal it, start it again.

    Returns what the sink got, the exit code, the jobs in flight at the signal, and when
    the service was back."""
    tag = new_tag()
    notice = await village.publish(category, f"Coupure d’eau [{tag}]")
    expected = village.expect(service, notice, tag)
    await under_way(expected, 300, f"the first {service} deliveries")
    in_flight = await village.in_flight(f"{service}-worker")
    code = village.kill(service, sig)
    back = village.restart(service)
    await delivered_in_full(expected, after="after the restart")
    return expected.tally(), code, in_flight, back


@pytest.mark.chaos_full
@pytest.mark.parametrize("service,category", [("email", Category.TRAVAUX),
                                              ("sms", Category.ALERTE)])
async def test_a_channel_killed_mid_fanout_loses_nothing(village: ChaosVillage, service: str,
                                                         category: Category) -> None:
    got, _, in_flight, back = await kill_mid_fanout(village, service, signal.SIGKILL, category)
    record(f"1 {service} SIGKILL", service, got, back, f"in flight at the kill {in_flight}")
    assert got.lost == 0
    assert got.duplicated <= in_flight


@pytest.mark.parametrize("service,category", [("email", Category.TRAVAUX),
                                              ("sms", Category.ALERTE)])
async def test_a_channel_stopped_gracefully_sends_nothing_twice(
        village: ChaosVillage, service: str, category: Category) -> None:
    got, code, _, back = await kill_mid_fanout(village, service, signal.SIGTERM, category)
    record(f"1 {service} SIGTERM", service, got, back, f"exit code {code} after draining")
    assert code is not None, f"{service} did not stop within a minute of SIGTERM"
    assert got.lost == 0
    assert got.duplicated == 0


@pytest.mark.chaos_full
async def test_push_panel_and_front_door_killed_mid_burst(village: ChaosVillage) -> None:
    """200 notices, one FCM request each: push, the sign and the front door each killed
    on the way; every notice stored once, pushed once, and on the sign in the end."""
    fcm = village.fcm_sink()
    tag = new_tag()
    ids: dict[int, str] = {}
    async def publish_all() -> None:
        queue = list(range(PUSH_BURST))
        async with httpx.AsyncClient() as http:

            async def one_at_a_time() -> None:
                while queue:
                    i = queue.pop(0)
                    # The same Idempotency-Key on every try: a retry is the same notice.
                    notice = await village.publish(Category.INFORMATION,
                                                   f"Avis {i} [{tag}]", key=f"{tag}-{i}",
                                                   client=http)
                    ids[i] = notice["id"]

            await asyncio.gather(*(one_at_a_time() for _ in range(4)))

    def burst() -> Expected:
        return Expected("push", fcm, tag, {(n, topic(COMMUNE, Category.INFORMATION))
                                           for n in ids.values()})

    publishing = asyncio.create_task(publish_all())
    await eventually(lambda: burst().tally().delivered >= PUSH_BURST // 5, "the first pushes",
                     within=300, every=0.05)
    in_flight = await village.in_flight("push-worker")
    village.kill("push", signal.SIGKILL)
    village.kill("panel", signal.SIGKILL)
    await eventually(lambda: len(ids) >= PUSH_BURST // 2, "half the burst published",
                     within=300, every=0.05)
    village.kill("notices", signal.SIGKILL)
    await asyncio.sleep(1.0)
    back = village.restart("notices")
    village.restart("push")
    village.restart("panel")
    await asyncio.wait_for(publishing, 600)
    published = burst()
    await delivered_in_full(published)
    push = published.tally()

    async def on_sign() -> int:
        return len(await village.on_sign(*ids.values()))

    async def all_on_sign() -> bool:
        return await on_sign() == PUSH_BURST

    await eventually(all_on_sign, "the burst on the sign", within=300, every=1.0)
    async with httpx.AsyncClient() as http:
        total_ids: set[str] = set()
        offset = 0
        while True:
            page = (await http.get(f"{village.api}/api/v1/communes/{COMMUNE}/notices",
                                   params={"limit": 200, "offset": offset})).json()
            total_ids |= {n["id"] for n in page["notices"] if tag in n["title"]}
            offset += 200
            if offset >= page["total"]:
                break
    record("1 push SIGKILL", "push", push, back, f"in flight at the kill {in_flight}")
    record("1 panel SIGKILL", "panel", shown(PUSH_BURST, await on_sign()), None,
           "final playlist")
    record("1 notices SIGKILL", "notices", shown(PUSH_BURST, len(total_ids)), None,
           "each stored once, the POSTs retried with their Idempotency-Key")
    assert push.lost == 0 and push.duplicated <= in_flight
    assert len(total_ids) == PUSH_BURST == len(set(ids.values()))
    assert time.time() >= back
