"""Helpers for the SMS channel's tests: a mairie on NATS, a clock, request-reply calls."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client

from schemas import subjects
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.commune import Commune
from schemas.deliveries import DeliveryReport
from schemas.events import NoticeCorrected, NoticePublished, NoticeWithdrawn
from schemas.notice import Category, Notice, NoticeState
from services.sms.app import SmsService
from tests.helpers import read_subject

SECRET = "webhook-secret-0123456789"

StartSms = Callable[..., Awaitable[SmsService]]


def random_insee() -> str:
    return f"{random.randint(1000, 95999):05d}"


def number(i: int) -> str:
    return f"+3361{i:07d}"


def make_notice(commune: str, **fields: Any) -> Notice:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "id": uuid.uuid4().hex[:16], "commune": commune, "category": Category.ALERTE,
        "title": "Tempête : restez chez vous", "body": "Vents à 120 km/h attendus cette nuit.",
        "author": "Mairie", "version": 1, "state": NoticeState.PUBLISHED,
        "created_at": now - timedelta(minutes=1), "updated_at": now, "published_at": now,
    }
    return Notice.model_validate(data | fields)


@dataclass
class Mairie:
    """Publishes on NOTICES the way the front door does."""

    nc: Client

    async def register(self, insee: str, name: str) -> None:
        kv = await self.nc.jetstream().key_value("communes")
        await kv.put(insee, Commune(insee=insee, name=name,
                                    created_at=datetime.now(UTC)).model_dump_json().encode())

    async def _put(self, event: NoticePublished | NoticeCorrected | NoticeWithdrawn) -> None:
        await self.nc.jetstream().publish(
            subjects.notice(event.notice.commune, event.notice.id),
            event.model_dump_json().encode(), stream="NOTICES",
            headers={"Nats-Msg-Id": event.msg_id})

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


class Clock:
    """A clock a test moves (quiet hours)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


async def wait_for(condition: Callable[[], bool], within_s: float = 60.0,
                   what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def reports(nc: Client, commune: str) -> list[DeliveryReport]:
    found = await read_subject(nc.jetstream(), subjects.delivery("sms", commune), wait_s=0.5)
    # One per delivery: the worker reports a batch of jobs in one message.
    return [each for m in found for each in DeliveryReport.model_validate_json(m.data).each()]


async def call(nc: Client, method: str, path: str, body: Any = None, query: str = "",
               client_ip: str = "192.0.2.1") -> tuple[int, Any]:
    """One HTTP request as the front door forwards it to the SMS channel."""
    request = ChannelHttpRequest(method=method, path=path, query=query,
                                 headers={"content-type": "application/json"},
                                 body=json.dumps(body) if body is not None else "",
                                 client_ip=client_ip)
    msg = await nc.request(subjects.channel_http("sms"), request.model_dump_json().encode(),
                           timeout=10)
    reply = ChannelHttpReply.model_validate_json(msg.data)
    return reply.status, json.loads(reply.body) if reply.body else None
