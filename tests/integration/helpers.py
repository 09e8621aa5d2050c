"""What the integration tests of several services share: a mairie publishing on NOTICES the
way the front door does, what a channel reported, and a short polling wait."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client

from schemas import subjects
from schemas.commune import Commune
from schemas.deliveries import DeliveryReport
from schemas.events import NoticeCorrected, NoticePublished, NoticeWithdrawn
from schemas.notice import Notice, NoticeState
from tests.helpers import read_subject

# Codes handed out in this test session, and the demo commune's: all the tests share one
# nats-server, so a commune drawn twice mixed two tests' notices (a test that expected an
# empty commune found another's notice; seen once in CI).
_given = {"70299"}


def random_insee() -> str:
    """A commune code no other test of this session was given."""
    while True:
        code = f"{random.randint(1000, 95999):05d}"
        if code not in _given:
            _given.add(code)
            return code


@dataclass
class Mairie:
    """Publishes on NOTICES the way the front door does."""

    nc: Client
    # Trace headers put on every event, as the front door's (crieur.trace).
    trace: dict[str, str] | None = None

    async def register(self, insee: str, name: str) -> None:
        kv = await self.nc.jetstream().key_value("communes")
        await kv.put(insee, Commune(insee=insee, name=name,
                                    created_at=datetime.now(UTC)).model_dump_json().encode())

    async def _put(self, event: NoticePublished | NoticeCorrected | NoticeWithdrawn) -> None:
        await self.nc.jetstream().publish(
            subjects.notice(event.notice.commune, event.notice.id),
            event.model_dump_json().encode(), stream="NOTICES",
            headers={"Nats-Msg-Id": event.msg_id} | (self.trace or {}))

    async def publish(self, notice: Notice) -> Notice:
        await self._put(NoticePublished(occurred_at=datetime.now(UTC), notice=notice))
        return notice

    async def correct(self, notice: Notice, **changes: Any) -> Notice:
        new = notice.model_copy(update={"version": notice.version + 1,
                                        "state": NoticeState.CORRECTED, **changes})
        await self._put(NoticeCorrected(occurred_at=datetime.now(UTC), notice=new))
        return new

    async def withdraw(self, notice: Notice) -> Notice:
        gone = notice.model_copy(update={"state": NoticeState.WITHDRAWN,
                                         "withdrawn_at": datetime.now(UTC)})
        await self._put(NoticeWithdrawn(occurred_at=datetime.now(UTC), notice=gone))
        return gone


async def wait_for(condition: Callable[[], bool], within_s: float = 60.0,
                   what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def reports(nc: Client, channel: str, commune: str) -> list[DeliveryReport]:
    """Every delivery `channel` reported for `commune`, one per delivery."""
    found = await read_subject(nc.jetstream(), subjects.delivery(channel, commune), wait_s=0.5)
    # The worker reports a batch of jobs in one message.
    return [each for m in found for each in DeliveryReport.model_validate_json(m.data).each()]
