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
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

# The withdrawal is seen by each service over its live NOTICES subscription, a moment after
# the front door answers; sends already under way then finish. Generous on a loaded machine.
SEEN_WITHIN_S = 5.0


def recipients(deliveries: list[Delivery], key: str, kind: str) -> list[str]:
    return [d.recipient for d in deliveries if d.notice == key and d.kind == kind]


async def test_a_notice_withdrawn_mid_fanout_stops_and_is_taken_back(
        village: ChaosVillage) -> None:
    email, sms = village.email_sink(), village.sms_sink()
    tag = new_tag()
    notice = await village.publish(Category.EVENEMENT, f"Concert annulé ? [{tag}]")
    nid = notice["id"]
    want_email, want_sms = village.expected_email([nid]), village.expected_sms([tag])

    def started() -> bool:
        return (tally(email.deliveries(), want_email).delivered >= 200
                and tally(sms.deliveries(), want_sms).delivered >= 100)

    await eventually(started, "the first emails and SMS", within=300, every=0.05)
    await village.withdraw(nid)
    withdrawn_at = time.time()

    async def off_the_sign() -> bool:
        return nid not in {n["id"] for n in (await village.playlist())["notices"]}

    await eventually(off_the_sign, "the sign dropping it", within=60)
    await settle(lambda: len(email.deliveries()) + len(sms.deliveries()), quiet_s=8.0)

    for name, sink, key in (("email", email, nid), ("sms", sms, tag)):
        found = sink.deliveries()
        late = [d for d in found if d.notice == key and d.kind == "published"
                and d.at > withdrawn_at + SEEN_WITHIN_S]
        got = set(recipients(found, key, "published"))
        told = recipients(found, key, "withdrawn")
        # The withdrawal goes to exactly those who got the notice, once each.
        t = tally(found, {(key, r) for r in got}, kind="withdrawn")
        record("7 withdrawn mid fan-out", name, t, withdrawn_at,
               f"published to {len(got)} of {len(want_email if name == 'email' else want_sms)}"
               f" before; {len(late)} sent after the withdrawal was seen")
        assert late == [], f"{name}: {len(late)} sent after the withdrawal"
        assert len(got) < (len(want_email) if name == "email" else len(want_sms))
        assert set(told) == got and len(told) == len(got), name
    record("7 withdrawn mid fan-out", "panel", shown(1, 1), None, "dropped from the playlist")
