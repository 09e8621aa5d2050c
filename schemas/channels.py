"""The front door's contract with channels: HTTP routes forwarded over NATS request-reply.

The notices service holds no channel's data: device registration, subscriptions and
provider webhooks are answered by the channel that owns them.
"""

from __future__ import annotations

import base64

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
    "/api/v1/subscriptions/webpush": Channel.WEBPUSH,
    # The VAPID key, the service worker, the page's script and the web app manifest.
    "/api/v1/webpush": Channel.WEBPUSH,
}

# Every path a channel answers, as its Router declares it (crieur.channel.http_bridge refuses
# a route under CHANNEL_ROUTES that is not listed here). The front door matches a forwarded
# path against these to log it with its secret parameters redacted.
CHANNEL_PATHS: tuple[str, ...] = (
    "/api/v1/devices",
    "/api/v1/devices/{token}",
    "/api/v1/subscriptions/email",
    "/api/v1/subscriptions/email/confirm/{token}",
    "/api/v1/subscriptions/email/unsubscribe/{token}",
    "/api/v1/subscriptions/email/manage/{token}",
    "/api/v1/subscriptions/email/manage/{token}/delete",
    "/api/v1/subscriptions/email/manage/{token}/links",
    "/api/v1/subscriptions/sms",
    "/api/v1/subscriptions/sms/confirm",
    "/api/v1/subscriptions/sms/delete",
    "/api/v1/subscriptions/sms/manage",
    "/webhooks/sms/inbound",
    "/webhooks/sms/receipts",
    # The first webhook form, the secret in the path; kept while providers move to the header.
    "/webhooks/sms/{secret}/inbound",
    "/webhooks/sms/{secret}/receipts",
    "/api/v1/previews/sms",
    "/api/v1/subscriptions/webpush",
    "/api/v1/subscriptions/webpush/current",
    "/api/v1/subscriptions/webpush/delete",
    "/api/v1/webpush/key",
    "/api/v1/webpush/{asset}",
    "/api/v1/webpush/manifest/{commune}",
)
# Path parameters that are secrets (a device's FCM token, a signed email link, the webhook
# secret): never written to a log line.
SECRET_PARAMETERS = frozenset({"token", "secret"})
REDACTED = "[redacted]"


# Forwarded paths whose body is not JSON: the email pages' forms (below the prefix, not
# the prefix itself) and providers' webhooks, in whatever format a provider posts. Every
# other forwarded POST, PUT and PATCH must say it is JSON: a browser sends that type
# cross-site only after a CORS preflight, which the front door never grants.
NOT_JSON_PREFIXES: tuple[str, ...] = ("/api/v1/subscriptions/email/", "/webhooks/")
# Forwarded routes for staff only: the front door checks the staff token, as for its own
# staff routes, since credentials are never passed on to a channel.
STAFF_ROUTES: frozenset[str] = frozenset({"/api/v1/previews/sms"})


def takes_json(method: str, path: str) -> bool:
    """Whether a forwarded request's body (if any) must be `Content-Type: application/json`."""
    return method.upper() in ("POST", "PUT", "PATCH") and not path.startswith(
        NOT_JSON_PREFIXES)


def channel_for(path: str) -> Channel | None:
    for prefix in sorted(CHANNEL_ROUTES, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return CHANNEL_ROUTES[prefix]
    return None


def _decoded(b64: str) -> bytes:
    """Strict base64: a malformed body is an error (binascii.Error), not silently dropped."""
    return base64.b64decode(b64, validate=True)


class ChannelHttpRequest(BaseModel):
    """One HTTP request for a channel, as the front door received it.

    `body_b64` holds the exact bytes (a provider's webhook signature is computed over them);
    `body` the same decoded as UTF-8 for convenience (undecodable bytes replaced). Header
    names are lower case; repeated headers are joined with ", " (RFC 9110, 5.3); hop-by-hop
    headers and staff credentials (Authorization, Cookie) are not passed on.
    """

    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    # Added without a version bump: a front door that predates it sends only `body`.
    body_b64: str = ""
    client_ip: str = ""

    def body_bytes(self) -> bytes:
        """The exact body bytes (from `body` if the sender predates `body_b64`)."""
        return _decoded(self.body_b64) if self.body_b64 else self.body.encode()


class ChannelHttpReply(BaseModel):
    """A channel's answer; `body_b64`, when set, is the exact body and wins over `body`."""

    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    body_b64: str = ""

    def body_bytes(self) -> bytes:
        return _decoded(self.body_b64) if self.body_b64 else self.body.encode()
