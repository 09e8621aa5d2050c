"""Scenario 10: the email service killed (SIGKILL) while an alert waits behind a backlog.

The backlog: a `travaux` notice to the 2,000 email subscribers, under way. The email
service is killed, an alert is published meanwhile (queued behind what is left), and the
service started again: the alert's emails all go out while the backlog still has some to
send (its lane goes first), and neither loses a message.
"""

from __future__ import annotations

import signal

import pytest

from schemas.notice import Category
from services.email.format import normalise_address
from services.email.links import Links
from services.email.subscribers import SUBSCRIBERS, Follow, Registry, add_confirmed
from tests.chaos.harness import (
    COMMUNE,
    EMAIL_SECRET,
    ChaosVillage,
    Expected,
    delivered_in_full,
    new_tag,
    record,
    under_way,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(900)]

ALERTED = 40


async def test_an_alert_queued_behind_a_backlog_goes_first_after_a_kill(
        village: ChaosVillage) -> None:
    # Email subscribers of the commune's alerts only (the 2,000 follow travaux, evenement).
    nc = await village.connect()
    links = Links(EMAIL_SECRET, village.env["CRIEUR_PUBLIC_URL"], 3600)
    addresses = [normalise_address(f"alerte{i}@example.org") for i in range(ALERTED)]
    rids = [links.recipient_id(a) for a in addresses]
    registry = await Registry.open(nc.jetstream())
    for rid, address in zip(rids, addresses, strict=True):
        await add_confirmed(registry, rid, address,
                            (Follow(commune=COMMUNE, categories=(Category.ALERTE,)),))
    try:
        tag = new_tag()
        backlog = await village.publish(Category.TRAVAUX, f"Travaux, réseau d’eau [{tag}]")
        behind = village.expect("email", backlog, tag)
        await under_way(behind, 100, "the backlog's first emails")
        in_flight = await village.in_flight("email-worker")
        village.kill("email", signal.SIGKILL)
        alert_tag = new_tag()
        alert = await village.publish(Category.ALERTE, f"Crue de la Saône [{alert_tag}]")
        back = village.restart("email")

        first = Expected("email", village.email_sink(), alert["id"],
                         {(alert["id"], rid) for rid in rids})
        await delivered_in_full(first, behind, after="after the restart")
        sink = village.email_sink().deliveries()
        alert_last = max(d.at for d in sink if d.notice == alert["id"])
        after_alert = [d for d in sink if d.notice == backlog["id"] and d.at > alert_last]
        got, backlog_got = first.tally(), behind.tally()
        record("10 email SIGKILL, alert behind a backlog", "email", got, back,
               f"backlog emails after the alert's last: {len(after_alert)}")
        record("10 email SIGKILL, the backlog", "email", backlog_got, back,
               f"in flight at the kill {in_flight}")
        assert got.lost == 0 and backlog_got.lost == 0
        assert got.duplicated + backlog_got.duplicated <= in_flight
        # Alerts first: the backlog was still going out when the alert had all gone.
        assert after_alert, "the alert went out only after the whole backlog"
    finally:
        kv = await nc.jetstream().key_value(SUBSCRIBERS.name)
        for rid in rids:
            await kv.delete(rid)
        await nc.close()
