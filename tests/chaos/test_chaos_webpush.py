"""Scenario 11: Web Push (issue 27), one encrypted request per browser, caught mid-fan-out.

The Web Push service SIGKILLed after 300 of its requests were accepted, then started again:
nothing lost, duplicates at most the jobs in flight at the kill. The push service answering
503 (Retry-After: 1) then 429 (Retry-After: 2), a round of the service's concurrency each:
nothing lost, nothing twice, and the sends paused for the Retry-After. What counts is the stand-in's record of the requests it
accepted and decrypted (webpush.jsonl), by notice and browser.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from schemas.notice import Category
from services.webpush.settings import WebpushSettings
from tests.chaos.harness import (
    WEBPUSH_COMMUNE,
    ChaosVillage,
    delivered_in_full,
    new_tag,
    record,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]


async def test_webpush_killed_mid_fanout_loses_nothing(village: ChaosVillage) -> None:
    await village.seed_webpush()
    tag = new_tag()
    notice = await village.publish(Category.TRAVAUX, f"Coupure d’eau [{tag}]",
                                   commune=WEBPUSH_COMMUNE)
    expected = village.expect("webpush", notice, tag)
    await under_way(expected, 300, "the first Web Push requests")
    in_flight = await village.in_flight("webpush-worker")
    village.kill("webpush", signal.SIGKILL)
    back = village.restart("webpush")
    await delivered_in_full(expected, after="after the restart")
    got = expected.tally()
    record("11 webpush SIGKILL", "webpush", got, back, f"in flight at the kill {in_flight}")
    assert got.expected == len(village.webpush_sids) > 300
    assert got.lost == 0 and got.unexpected == 0
    assert got.duplicated <= in_flight


async def test_push_service_answering_503_then_429(village: ChaosVillage) -> None:
    await village.seed_webpush()
    rounds = WebpushSettings().webpush_concurrency  # a round of the service's sends
    await village.standin("webpush-standin", "/_standin/fail",
                          {"status": 503, "times": rounds, "retry_after": 1})
    tag = new_tag()
    notice = await village.publish(Category.TRAVAUX, f"Travaux rue basse [{tag}]",
                                   commune=WEBPUSH_COMMUNE)
    expected = village.expect("webpush", notice, tag)
    # Accepted requests come after every 503 was served (the stand-in fails first).
    await under_way(expected, 1, "the first Web Push request past the 503s")
    await village.standin("webpush-standin", "/_standin/fail",
                          {"status": 429, "times": rounds, "retry_after": 2})
    limited_from = time.time()
    await delivered_in_full(expected, after="after the 429s")
    async with httpx.AsyncClient() as http:
        left = (await http.post(village.url("webpush-standin") + "/_standin/heal",
                                timeout=10)).json()["left"]
    got = expected.tally()
    # Retry-After honoured: the whole sink paused (the kit's word) once the 429s came, so
    # the accepted requests after them show a pause of about 2 s (those already past the
    # stand-in's check when it was told to fail aside: they are before it).
    after = sorted(d.at for d in expected.sink.deliveries()
                   if d.notice == notice["id"] and d.at >= limited_from)
    pause = max(b - a for a, b in zip([limited_from, *after], after, strict=False))
    record("11 push service 503×32, 429×32 Retry-After", "webpush", got, limited_from,
           f"failures not served: {left}; longest pause after the 429s {pause:.1f} s")
    assert left == 0  # the 429s were all answered, mid-fan-out
    assert pause >= 1.5
    assert got.expected == len(village.webpush_sids)
    assert got.lost == 0 and got.duplicated == 0 and got.unexpected == 0
