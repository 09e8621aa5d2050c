"""Helpers for the SMS channel's tests: a mairie on NATS, a clock, request-reply calls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client

from schemas import subjects
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.deliveries import DeliveryReport
from schemas.notice import Category, Notice, NoticeState
from services.sms.service import SmsService

# Shared with the other channels' tests; the SMS tests import them from here.
from tests.integration.helpers import Mairie as Mairie
from tests.integration.helpers import random_insee as random_insee
from tests.integration.helpers import reports as channel_reports
from tests.integration.helpers import wait_for as wait_for

SECRET = "webhook-secret-0123456789"

StartSms = Callable[..., Awaitable[SmsService]]


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


class Clock:
    """A clock a test moves (quiet hours)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


async def reports(nc: Client, commune: str) -> list[DeliveryReport]:
    return await channel_reports(nc, "sms", commune)


async def call(nc: Client, method: str, path: str, body: Any = None, query: str = "",
               client_ip: str = "192.0.2.1", headers: dict[str, str] | None = None,
               ) -> tuple[int, Any]:
    """One HTTP request as the front door forwards it to the SMS channel."""
    request = ChannelHttpRequest(method=method, path=path, query=query,
                                 headers={"content-type": "application/json",
                                          **(headers or {})},
                                 body=json.dumps(body) if body is not None else "",
                                 client_ip=client_ip)
    msg = await nc.request(subjects.channel_http("sms"), request.model_dump_json().encode(),
                           timeout=10)
    reply = ChannelHttpReply.model_validate_json(msg.data)
    return reply.status, json.loads(reply.body) if reply.body else None
