"""The front door's contract with channels: HTTP routes forwarded over NATS request-reply.

The notices service holds no channel's data: device registration, subscriptions and
provider webhooks are answered by the channel that owns them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.deliveries import Channel
from schemas.versions import BUS_MODEL

# Path prefix -> the channel that answers it. Longest prefix wins.
CHANNEL_ROUTES: dict[str, Channel] = {
    "/api/v1/devices": Channel.PUSH,
    "/api/v1/subscriptions/email": Channel.EMAIL,
    "/api/v1/subscriptions/sms": Channel.SMS,
    "/webhooks/sms": Channel.SMS,
    # Staff preview of an SMS (encoding, parts): the code that sends is the code that previews.
    "/api/v1/previews/sms": Channel.SMS,
    "/webhooks/email": Channel.EMAIL,
}


def channel_for(path: str) -> Channel | None:
    for prefix in sorted(CHANNEL_ROUTES, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return CHANNEL_ROUTES[prefix]
    return None


class ChannelHttpRequest(BaseModel):
    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    client_ip: str = ""


class ChannelHttpReply(BaseModel):
    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
