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
from services.push.format import topic
from tests.chaos.harness import (
    COMMUNE,
    ChaosVillage,
    eventually,
    new_tag,
    record,
    settle,
    shown,
    tally,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


async def test_nats_server_killed_mid_fanout_loses_nothing(village: ChaosVillage) -> None:
    email, sms, fcm = village.email_sink(), village.sms_sink(), village.fcm_sink()
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Fête au village [{tag}]")
    want_email = village.expected_email([notice["id"]])
    want_sms = village.expected_sms([tag])
    # Caught in the middle: some emails are out, most are not.
    await eventually(lambda: tally(email.deliveries(), want_email).delivered >= 300,
                     "the first emails", within=300, every=0.05)
    in_flight = sum([await village.in_flight(f"{c}-worker") for c in ("email", "sms")])
    village.kill_server()
    await asyncio.sleep(2.0)
    back = village.start_server()

    await eventually(lambda: tally(email.deliveries(), want_email).lost == 0,
                     "every email after the restart", within=600, every=0.5)
    await eventually(lambda: tally(sms.deliveries(), want_sms).lost == 0,
                     "every SMS after the restart", within=600, every=0.5)
    await settle(lambda: len(email.deliveries()) + len(sms.deliveries()))
    mail, texts = tally(email.deliveries(), want_email), tally(sms.deliveries(), want_sms)
    record("2 nats-server SIGKILL", "email", mail, back, f"in flight {in_flight}")
    record("2 nats-server SIGKILL", "sms", texts, back, f"in flight {in_flight}")

    # Every service reconnected by itself and its consumers resumed: a new notice goes out
    # to push and reaches the sign.
    published = time.time()
    after = await village.publish(Category.INFORMATION, f"Après le redémarrage [{new_tag()}]")
    want_push = {(after["id"], topic(COMMUNE, Category.INFORMATION))}

    async def on_sign() -> bool:
        return after["id"] in {n["id"] for n in (await village.playlist())["notices"]}

    await eventually(lambda: tally(fcm.deliveries(), want_push).lost == 0,
                     "push after the restart", within=120)
    await eventually(on_sign, "the sign after the restart", within=120)
    push = tally(fcm.deliveries(), want_push)
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
