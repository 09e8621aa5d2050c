"""The subscriber index is ready only once the bucket's initial values are all in.

nats-py's KV watch puts None ("the initial values are all in") first when its
consumer-info request finds nothing pending before its callback counted a message,
which happens when the server pushed every value before answering: the chaos suite
(scenario 7) met that race in the sent records. Here the watch is a fake that does it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from nats.js.kv import KeyValue

from crieur.channel.recipients import Follow
from services.email.subscribers import Registry, Subscriber, now
from tests.helpers import sizes_when_ready

FOLLOWS = (Follow.model_validate({"commune": "70299", "categories": ["alerte"]}),)


class RacyBucket:
    """A bucket of `count` subscribers whose watch says "all in" before the first one."""

    def __init__(self, count: int, stored: list[int] | None = None) -> None:
        self.count = count
        # What stream_info says, call after call (the count if not given).
        self.stored = stored
        self._stream = "KV_email_subscribers"
        self._js = SimpleNamespace(stream_info=self._stream_info)

    async def _stream_info(self, stream: str) -> Any:
        messages = self.stored.pop(0) if self.stored else self.count
        return SimpleNamespace(state=SimpleNamespace(messages=messages))

    async def watchall(self) -> AsyncIterator[KeyValue.Entry | None]:
        async def updates() -> AsyncIterator[KeyValue.Entry | None]:
            yield None  # the race: before any value
            for i in range(self.count):
                value = Subscriber(email=f"r{i}@example.org", confirmed=True, follows=FOLLOWS,
                                   created_at=now(), updated_at=now()).model_dump_json()
                yield KeyValue.Entry(bucket="email_subscribers", key=f"rid{i:013d}",
                                     value=value.encode(), revision=i + 1,
                                     delta=self.count - i - 1, created=None, operation=None)
                await asyncio.sleep(0)
            await asyncio.sleep(3600)  # a watch goes on until closed
        return updates()


async def test_ready_waits_for_the_value_after_which_nothing_is_pending() -> None:
    registry = Registry(RacyBucket(50))  # type: ignore[arg-type]
    assert await sizes_when_ready(registry, 5) == [50]
    assert len(registry.matching("70299", "alerte")) == 50


async def test_an_empty_bucket_is_ready_at_once() -> None:
    assert await sizes_when_ready(Registry(RacyBucket(0)), 5) == [0]  # type: ignore[arg-type]


async def test_a_bucket_emptied_before_the_watch_began_is_ready_too() -> None:
    # 3 values when asked first, expired before the watch began: it delivers none.
    registry = Registry(RacyBucket(0, stored=[3, 0]))  # type: ignore[arg-type]
    assert await sizes_when_ready(registry, 5) == [0]
