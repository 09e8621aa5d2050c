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
from tests.chaos.harness import (
    ChaosVillage,
    delivered_in_full,
    new_tag,
    record_each,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

SERVICES = ("notices", "panel", "push", "email", "sms")


async def test_everything_killed_at_once_loses_nothing(village: ChaosVillage) -> None:
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Fête de la Saint-Jean [{tag}]")
    email, sms = village.expect("email", notice, tag), village.expect("sms", notice, tag)
    await under_way(email, 300, "the first emails")
    await under_way(sms, 100, "the first SMS")
    in_flight = sum([await village.in_flight(f"{c}-worker") for c in ("email", "sms")])
    for name in SERVICES:
        village.kill(name)
    village.kill_server()
    await asyncio.sleep(1.0)

    village.start_server()
    for name in SERVICES:
        back = village.restart(name)

    await delivered_in_full(email, sms, after="after the restart")
    got = record_each("8 everything SIGKILL", (email, sms), back, f"in flight {in_flight}")
    async with httpx.AsyncClient() as http:
        for name in SERVICES:
            health = await http.get(village.url(name) + "/healthz")
            assert health.status_code == 200, (name, health.text)
    assert got["email"].lost == 0 and got["sms"].lost == 0
    assert got["email"].duplicated + got["sms"].duplicated <= in_flight
