"""Scenario 3: a sink that fails for a while, then recovers.

SMTP answers 421 then 451; FCM 503 then 429 with Retry-After; the SMS provider 500, then
goes silent (timeouts). Everything is delivered once it recovers, Retry-After is
honoured, and the attempts during the outage are no more than the backoff schedule allows.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from schemas.notice import Category
from services.push.format import topic
from tests.chaos.harness import (
    CHAOS_ENV,
    COMMUNE,
    ChaosVillage,
    Expected,
    delivered_in_full,
    eventually,
    new_tag,
    record,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

BACKOFF_S = 2.0  # CRIEUR_CHANNEL_BACKOFF_S (default)


def allowed_attempts(outage_s: float, concurrency: int) -> int:
    """What the kit's schedule allows: the whole sink waits base × 2^(n-1) after its n-th
    round of failures, and a round is at most `concurrency` sends at once."""
    rounds = 1 + math.floor(math.log2(outage_s / BACKOFF_S + 1))
    return concurrency * rounds


async def test_smtp_answering_421_then_451_for_a_while(village: ChaosVillage) -> None:
    village.smtp_faults([{"code": 421, "seconds": 4}, {"code": 451, "seconds": 10}])
    healed = time.time() + 10
    try:
        tag = new_tag()
        notice = await village.publish(Category.TRAVAUX, f"Travaux rue haute [{tag}]")
        email = village.expect("email", notice, tag)
        await delivered_in_full(email)
    finally:
        village.smtp_faults([])
    t = email.tally()
    record("3 SMTP 421/451 10 s", "email", t, healed)
    assert t.lost == 0 and t.duplicated == 0


async def test_fcm_answering_503_then_429_with_retry_after(village: ChaosVillage) -> None:
    fcm = village.fcm_sink()
    before = len(fcm.requests())
    retry_after = 3.0
    await village.standin("fcm-standin", "/_standin/faults",
                          {"status": 503, "times": 3, "path": "messages:send"})
    await village.standin("fcm-standin", "/_standin/faults",
                          {"status": 429, "times": 2, "path": "messages:send",
                           "retry_after": retry_after})
    tag = new_tag()
    notices = [await village.publish(Category.INFORMATION, f"Avis {i} [{tag}]")
               for i in range(10)]
    pushed = Expected("push", fcm, tag,
                      {(n["id"], topic(COMMUNE, Category.INFORMATION)) for n in notices})
    await delivered_in_full(pushed, within=300)
    requests = fcm.requests()[before:]
    refused = [r for r in requests if r["status"] in (429, 503)]
    limited = [r for r in requests if r["status"] == 429]
    # Retry-After honoured: after a 429 nothing is sent for that long (sends that were
    # already on their way, answered within half a second of it, aside).
    early = [r for r in requests for q in limited
             if 0.5 < _gap(q, r) < retry_after - 0.2]
    t = pushed.tally()
    record("3 FCM 503×3, 429×2 Retry-After 3 s", "push", t,
           max(_at(r) for r in refused) if refused else None,
           f"{len(refused)} refused, {len(early)} sent inside a Retry-After")
    assert len(limited) == 2 and len(refused) == 5
    assert early == []
    assert t.lost == 0 and t.duplicated == 0


async def test_sms_provider_failing_then_silent(village: ChaosVillage) -> None:
    sms = village.sms_sink()
    before = len(sms.requests())
    concurrency = int(CHAOS_ENV["CRIEUR_SMS_CONCURRENCY"])
    await village.standin("sms-standin", "/_standin/fail", {"status": 500, "seconds": 8})
    outage_from = time.time()
    tag = new_tag()
    notice = await village.publish(Category.ALERTE, f"Orage de grêle [{tag}]")
    alert = village.expect("sms", notice, tag)
    await asyncio.sleep(8.0)
    # Then silent: each request answered after 20 s, past the client's 15 s timeout.
    await village.standin("sms-standin", "/_standin/fail",
                          {"status": 503, "delay_s": 20, "times": concurrency})

    def silent_calls() -> int:
        return sum(1 for r in sms.requests()[before:] if r["status"] == 503)

    await eventually(lambda: silent_calls() >= 1, "a timed-out SMS", within=300, every=0.5)
    await village.standin("sms-standin", "/_standin/heal", {})
    healed = time.time()
    await delivered_in_full(alert)
    requests = sms.requests()[before:]
    failed = [r for r in requests if r["status"] != 201]
    allowed = allowed_attempts(healed - outage_from, concurrency)
    t = alert.tally()
    record("3 SMS 500 8 s, then silent", "sms", t, healed,
           f"{len(failed)} attempts during the outage (schedule allows {allowed})")
    assert t.lost == 0 and t.duplicated == 0
    assert len(failed) <= allowed


def _at(record: dict[str, object]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(record["at"])).timestamp()


def _gap(first: dict[str, object], then: dict[str, object]) -> float:
    return _at(then) - _at(first)
