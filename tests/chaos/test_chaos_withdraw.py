"""Scenario 7: a notice withdrawn in the middle of its fan-out.

No email or SMS of it goes out once the withdrawal is seen (a send already started may
finish), those who got it are told it is withdrawn (exactly them), and the sign drops it.
"""

from __future__ import annotations

import time

import pytest

from schemas.notice import Category
from tests.chaos.harness import (
    ChaosVillage,
    Delivery,
    eventually,
    new_tag,
    record,
    settle,
    shown,
    tally,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

# The withdrawal is seen by each service over its live NOTICES subscription, a moment after
# the front door answers; sends already under way then finish. Generous on a loaded machine.
SEEN_WITHIN_S = 5.0


def recipients(deliveries: list[Delivery], key: str, kind: str) -> list[str]:
    return [d.recipient for d in deliveries if d.notice == key and d.kind == kind]


async def test_a_notice_withdrawn_mid_fanout_stops_and_is_taken_back(
        village: ChaosVillage) -> None:
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Concert annulé ? [{tag}]")
    nid = notice["id"]
    email, sms = village.expect("email", notice, tag), village.expect("sms", notice, tag)
    await under_way(email, 200, "the first emails")
    await under_way(sms, 100, "the first SMS")
    await village.withdraw(nid)
    withdrawn_at = time.time()

    async def off_the_sign() -> bool:
        return not await village.on_sign(nid)

    await eventually(off_the_sign, "the sign dropping it", within=60)
    await settle(lambda: len(email.sink.deliveries()) + len(sms.sink.deliveries()), quiet_s=8.0)

    for e in (email, sms):
        found = e.sink.deliveries()
        late = [d for d in found if d.notice == e.key and d.kind == "published"
                and d.at > withdrawn_at + SEEN_WITHIN_S]
        got = set(recipients(found, e.key, "published"))
        told = recipients(found, e.key, "withdrawn")
        # The withdrawal goes to exactly those who got the notice, once each.
        t = tally(found, {(e.key, r) for r in got}, kind="withdrawn")
        record("7 withdrawn mid fan-out", e.channel, t, withdrawn_at,
               f"published to {len(got)} of {len(e.want)}"
               f" before; {len(late)} sent after the withdrawal was seen")
        assert late == [], f"{e.channel}: {len(late)} sent after the withdrawal"
        assert len(got) < len(e.want)
        assert set(told) == got and len(told) == len(got), e.channel
    record("7 withdrawn mid fan-out", "panel", shown(1, 1), None, "dropped from the playlist")
