"""What the push tests share: a resident's HTTP request over request-reply, FCM-like tokens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client

from schemas import subjects
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from services.push.service import PushService

FAST = {"channel_ack_wait_s": 3.0, "channel_backoff_s": 0.2, "channel_backoff_max_s": 3.0,
        "channel_batch": 64, "channel_drain_s": 10.0}

StartPush = Callable[..., Awaitable[PushService]]


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


async def http(nc: Client, method: str, path: str, body: Any = None,
               client_ip: str | None = None) -> Reply:
    """A resident's request, forwarded the way the front door forwards it."""
    request = ChannelHttpRequest(method=method, path=path,
                                 body="" if body is None else json.dumps(body),
                                 headers={"content-type": "application/json"},
                                 client_ip=client_ip or f"10.0.{uuid.uuid4().int % 250}.1")
    msg = await nc.request(subjects.channel_http("push"), request.model_dump_json().encode(),
                           timeout=30)
    reply = ChannelHttpReply.model_validate_json(msg.data)
    return Reply(reply.status, json.loads(reply.body) if reply.body else None, reply.headers)


def phone_token(name: str) -> str:
    """A token shaped like FCM's (instance id, colon, a long base64url part)."""
    return f"{name}{uuid.uuid4().hex[:8]}:APA91b{uuid.uuid4().hex}{uuid.uuid4().hex}"
