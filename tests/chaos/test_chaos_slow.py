"""Scenario 4: a send slower than ack_wait is not sent twice.

The SMS provider takes 12 s to answer the first sends, longer than the village's ack_wait
(10 s): the worker tells JetStream the jobs are in progress, so they are not handed out
again, and the sent records are checked before every send besides.
"""

from __future__ import annotations

import time

import pytest

from schemas.notice import Category
from tests.chaos.harness import CHAOS_ENV, ChaosVillage, eventually, new_tag, record, settle

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

SLOW_S = 12.0


async def test_a_send_slower_than_ack_wait_is_sent_once(village: ChaosVillage) -> None:
    assert SLOW_S > float(CHAOS_ENV["CRIEUR_CHANNEL_ACK_WAIT_S"])
    assert SLOW_S < float(CHAOS_ENV["CRIEUR_SMS_TIMEOUT_S"])
    slow_sends = 2 * int(CHAOS_ENV["CRIEUR_SMS_CONCURRENCY"])
    await village.standin("sms-standin", "/_standin/fail",
                          {"status": 201, "delay_s": SLOW_S, "times": slow_sends})
    started = time.time()
    tag = new_tag()
    try:
        notice = await village.publish(Category.ALERTE, f"Vigilance crues [{tag}]")
        sms = village.expect("sms", notice, tag)
        await eventually(lambda: sms.tally().lost == 0, "every SMS", within=600, every=0.5)
    finally:
        await village.standin("sms-standin", "/_standin/heal", {})
    await settle(lambda: len(sms.sink.deliveries()), quiet_s=2 * SLOW_S)
    t = sms.tally()
    record("4 send slower than ack_wait", "sms", t, None,
           f"{slow_sends} sends took {SLOW_S:g} s, ack_wait "
           f"{CHAOS_ENV['CRIEUR_CHANNEL_ACK_WAIT_S']} s")
    assert t.lost == 0 and t.duplicated == 0
    assert t.last_at is not None and t.last_at - started >= SLOW_S
