"""Scenario 9: the relay drops idle connections (issue 23).

Postfix closes a connection idle for `smtpd_timeout` (300 s), saying 421 first. Here the
SMTP stand-in does it after 2 s: a notice to every email subscriber, a pause past that,
then another. The second goes out in full on new connections; before the fix, the email
service's pool waited for ever on the dead ones and sent nothing more, /readyz still ready.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from schemas.notice import Category
from tests.chaos.harness import (
    ChaosVillage,
    Expected,
    delivered_in_full,
    eventually,
    new_tag,
    record,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

IDLE_S = 2.0


async def test_the_relay_drops_idle_connections(village: ChaosVillage) -> None:
    village.relaunch("smtp", "--idle-timeout", str(IDLE_S), "--on-idle", "421")
    try:
        tag = new_tag()
        before = await village.publish(Category.TRAVAUX, f"Rue barrée [{tag}]")
        await delivered_in_full(village.expect("email", before, tag))
        await asyncio.sleep(IDLE_S * 2)  # every pooled connection has been dropped by now
        dropped_at = time.time()
        after = await village.publish(Category.TRAVAUX, f"Rue rouverte [{tag}]")
        both = Expected("email", village.email_sink(), after["id"],
                        village.expected_email([before["id"], after["id"]]))
        await delivered_in_full(both)

        async def email_ready() -> bool:
            async with httpx.AsyncClient() as http:
                return (await http.get(village.url("email") + "/readyz", timeout=5)).is_success

        await eventually(email_ready, "the email service ready", within=60)
    finally:
        village.relaunch("smtp")  # the other scenarios' relay: 300 s, as Postfix
    t = both.tally()
    record("9 SMTP drops idle connections (2 s, 421)", "email", t, dropped_at,
           f"two notices, {IDLE_S * 2:.0f} s idle between them")
    assert t.lost == 0 and t.duplicated == 0
