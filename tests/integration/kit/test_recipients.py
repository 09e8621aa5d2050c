"""A channel's live subscriber index answers sends only while it is proven current."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest

from crieur.channel.recipients import CURRENT_WITHIN_S, Follow
from services.email.subscribers import Registry, add_confirmed
from tests.helpers import sizes_when_ready
from tests.integration.kit.conftest import wait_for

pytestmark = pytest.mark.integration

FOLLOWS = (Follow.model_validate({"commune": "70299", "categories": ["alerte"]}),)


async def test_the_index_answers_sends_only_while_it_is_current(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    registry = await Registry.open(nc.jetstream())
    tasks = [asyncio.create_task(registry.watch()), asyncio.create_task(registry.keep_current())]
    try:
        await add_confirmed(registry, "cachetest0000001", "cache@example.org", FOLLOWS)
        await wait_for(lambda: registry.cached("cachetest0000001") is not None, what="cached")
        assert registry.cached("cachetest0000001") == (
            "cache@example.org", frozenset({("70299", "alerte")}))
        await registry.forget("cachetest0000001")
        await wait_for(lambda: registry.cached("cachetest0000001") is None, within_s=5,
                       what="an unsubscribe seen by the index")

        await add_confirmed(registry, "cachetest0000002", "stale@example.org", FOLLOWS)
        await wait_for(lambda: registry.cached("cachetest0000002") is not None, what="cached")
        tasks[0].cancel()  # the watch stops: the index can no longer prove it is current
        await add_confirmed(registry, "cachetest0000003", "other@example.org", FOLLOWS)
        await asyncio.sleep(CURRENT_WITHIN_S + 0.5)
        assert registry.cached("cachetest0000002") is None, "a stale index is not trusted"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


async def test_the_index_stays_usable_while_subscribers_keep_changing(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    registry = await Registry.open(nc.jetstream())
    tasks = [asyncio.create_task(registry.watch()), asyncio.create_task(registry.keep_current())]
    try:
        await add_confirmed(registry, "cachetest0000010", "busy@example.org", FOLLOWS)
        await wait_for(lambda: registry.cached("cachetest0000010") is not None, what="cached")
        # Writes every few milliseconds: each probe is caught up with, so the index keeps
        # answering (a probe replaced at each round would never be caught up with).
        answered = 0
        for n in range(150):
            await add_confirmed(registry, f"cachetest1{n:06d}", f"b{n}@example.org", FOLLOWS)
            answered += registry.cached("cachetest0000010") is not None
            await asyncio.sleep(0.01)
        assert answered > 75, answered
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


async def test_the_index_is_ready_only_once_every_subscriber_is_in(nats_url: str) -> None:
    """On the real server, each watch is ready with every subscriber in (the race behind
    this, nats-py's "all in" before the first value, is forced in
    tests/unit/kit/test_registry_watch.py: it did not show here in 60 tries)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    bucket = f"regtest_{uuid.uuid4().hex[:8]}"
    kv = await js.create_key_value(bucket=bucket)
    try:
        seeding = Registry(kv)
        await asyncio.gather(*(add_confirmed(seeding, f"ready{i:011d}", f"r{i}@example.org",
                                             FOLLOWS) for i in range(30)))
        for _ in range(20):
            assert await sizes_when_ready(Registry(kv)) == [30]
    finally:
        await js.delete_key_value(bucket)
        await nc.close()
