"""Scenario 2: nats-server killed (SIGKILL) in the middle of a fan-out and started again.

Nothing is lost, every service reconnects by itself, and its pull consumers resume: the
fan-out in progress finishes, and a notice published afterwards goes out too.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from schemas.notice import Category
from tests.chaos.harness import (
    ChaosVillage,
    delivered_in_full,
    eventually,
    new_tag,
    record,
    record_each,
    shown,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


async def test_nats_server_killed_mid_fanout_loses_nothing(village: ChaosVillage) -> None:
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Fête au village [{tag}]")
    email, sms = village.expect("email", notice, tag), village.expect("sms", notice, tag)
    # Caught in the middle: some emails are out, most are not.
    await under_way(email, 300, "the first emails")
    in_flight = sum([await village.in_flight(f"{c}-worker") for c in ("email", "sms")])
    village.kill_server()
    await asyncio.sleep(2.0)
    back = village.start_server()

    await delivered_in_full(email, sms, after="after the restart")
    got = record_each("2 nats-server SIGKILL", (email, sms), back, f"in flight {in_flight}")
    mail, texts = got["email"], got["sms"]

    # Every service reconnected by itself and its consumers resumed: a new notice goes out
    # to push and reaches the sign.
    published = time.time()
    tag = new_tag()
    after = await village.publish(Category.INFORMATION, f"Après le redémarrage [{tag}]")
    pushed = village.expect("push", after, tag)
    await delivered_in_full(pushed, after="after the restart", within=120)
    await eventually(lambda: village.on_sign(after["id"]), "the sign after the restart",
                     within=120)
    push = pushed.tally()
    record("2 nats-server SIGKILL", "push (after)", push, published,
           "a notice published once the fan-out was done")
    record("2 nats-server SIGKILL", "panel (after)", shown(1, 1), None, "new notice on the sign")
    async with httpx.AsyncClient() as http:
        for name in ("notices", "email", "push", "sms", "panel"):
            health = await http.get(village.url(name) + "/healthz")
            assert health.status_code == 200, (name, health.text)

    assert mail.lost == 0 and texts.lost == 0
    assert mail.duplicated + texts.duplicated <= in_flight
    assert push.lost == 0 and push.duplicated == 0
