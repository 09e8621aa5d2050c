"""Scenario 8: every Crieur process and nats-server killed at once (SIGKILL) mid fan-out.

The closest this machine comes to the mairie's computer losing power: the services and the
bus die together, nothing drains, nothing is acked on the way out. Everything is started
again in the launcher's order (the bus first): nothing lost, duplicates at most what was in
flight. Not a full power cut: the kernel's page cache survives a SIGKILL, so what
nats-server had written but not yet synced to disk is not lost here (README, Durability,
says what `sync_interval` gives when the power goes).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from schemas.notice import Category
from tests.chaos.harness import ChaosVillage, eventually, new_tag, record, settle, tally

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

SERVICES = ("notices", "panel", "push", "email", "sms")


async def test_everything_killed_at_once_loses_nothing(village: ChaosVillage) -> None:
    email, sms = village.email_sink(), village.sms_sink()
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Fête de la Saint-Jean [{tag}]")
    want_email = village.expected_email([notice["id"]])
    want_sms = village.expected_sms([tag])
    await eventually(lambda: tally(email.deliveries(), want_email).delivered >= 300
                     and tally(sms.deliveries(), want_sms).delivered >= 100,
                     "the first emails and SMS", within=300, every=0.05)
    in_flight = sum([await village.in_flight(f"{c}-worker") for c in ("email", "sms")])
    for name in SERVICES:
        village.kill(name)
    village.kill_server()
    await asyncio.sleep(1.0)

    village.start_server()
    for name in SERVICES:
        back = village.restart(name)

    await eventually(lambda: tally(email.deliveries(), want_email).lost == 0,
                     "every email after the restart", within=600, every=0.5)
    await eventually(lambda: tally(sms.deliveries(), want_sms).lost == 0,
                     "every SMS after the restart", within=600, every=0.5)
    await settle(lambda: len(email.deliveries()) + len(sms.deliveries()))
    mail, texts = tally(email.deliveries(), want_email), tally(sms.deliveries(), want_sms)
    record("8 everything SIGKILL", "email", mail, back, f"in flight {in_flight}")
    record("8 everything SIGKILL", "sms", texts, back, f"in flight {in_flight}")
    async with httpx.AsyncClient() as http:
        for name in SERVICES:
            health = await http.get(village.url(name) + "/healthz")
            assert health.status_code == 200, (name, health.text)
    assert mail.lost == 0 and texts.lost == 0
    assert mail.duplicated + texts.duplicated <= in_flight
