"""Numbers never confirmed are purged after CRIEUR_SMS_UNCONFIRMED_MAX_AGE_S, as email does
with addresses: on the session's nats-server, through the real subscription route, with a
clock the test moves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from crieur_dev.standins.sms import SmsStandin
from services.sms.phones import recipient_id
from services.sms.subscribers import Follow, Subscriber
from tests.integration.sms.helpers import (
    Clock,
    Mairie,
    StartSms,
    call,
    number,
    random_insee,
    wait_for,
)

pytestmark = pytest.mark.integration

KEY = "k" * 40
WEEK = timedelta(days=7)


async def test_numbers_never_confirmed_are_swept_once_idle_for_a_week(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    start = datetime.now(UTC)
    clock = Clock(start)
    service = await start_sms(clock=clock)
    registry = service.registry
    assert registry is not None
    commune = random_insee()
    await Mairie(nc).register(commune, "Lavoncourt")
    first = random.randrange(1_000_000, 9_000_000)
    typed, confirmed, stale = number(first), number(first + 1), number(first + 2)
    rid = {n: recipient_id(KEY, n) for n in (typed, confirmed, stale)}
    follows = (Follow(commune=commune, categories=("alerte",)),)
    # Typed on the form just now: a code is on its way (valid 15 minutes).
    status, _ = await call(nc, "POST", "/api/v1/subscriptions/sms",
                           {"phone": typed, "follows": [f.model_dump() for f in follows]})
    assert status == 202
    # Confirmed long ago; and typed eight days ago, never confirmed, its code long dead.
    await registry.put(rid[confirmed], Subscriber(
        phone=confirmed, confirmed=True, follows=follows, created_at=start - 3 * WEEK,
        confirmed_at=start - 3 * WEEK))
    await registry.put(rid[stale], Subscriber(phone=stale, follows=follows,
                                              created_at=start - timedelta(days=8)))
    await wait_for(lambda: rid[typed] in registry.index.unconfirmed
                   and rid[stale] in registry.index.unconfirmed, what="the index")

    await service.sweep()
    assert await registry.get(rid[stale]) is None, "a week without confirming: gone"
    assert await registry.get(rid[typed]) is not None, "typed just now: kept"
    assert await registry.get(rid[confirmed]) is not None

    # A week after it was typed, but its code expired only 15 minutes after that.
    clock.at = start + WEEK + timedelta(minutes=1)
    await service.sweep()
    assert await registry.get(rid[typed]) is not None, "a week since its last code: not yet"

    clock.at = start + WEEK + timedelta(minutes=16)
    await service.sweep()
    assert await registry.get(rid[typed]) is None, "the number is gone from storage"
    found = await registry.get(rid[confirmed])
    assert found is not None and found[0].confirmed, "a confirmed subscriber stays"
