"""Browsers' push subscriptions: bucket `webpush_subscriptions`, key = SHA-256 of the endpoint.

A subscription (the browser's PushSubscription: endpoint, p256dh, auth) is a capability:
its endpoint is kept only here and never logged. There is nothing to confirm: the browser
made it for this site when the resident allowed notifications. The registry and its live
index are the kit's (crieur.channel.recipients).

An endpoint is a URL the service will POST to, given by anyone: only https endpoints on the
known push services are taken (ALLOWED_HOSTS, ALLOWED_SUFFIXES), never an address (private
or loopback ones included), except the host:port pairs of CRIEUR_WEBPUSH_EXTRA_HOSTS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crieur.bus import ensure_bucket
from crieur.channel.recipients import Follow, RecipientRegistry
from schemas.buckets import WEBPUSH_SUBSCRIPTIONS

# The browsers' push services: Chrome and Edge (FCM), Firefox (Mozilla), Safari (Apple),
# and the old Edge (Windows).
ALLOWED_HOSTS = frozenset({"fcm.googleapis.com", "updates.push.services.mozilla.com"})
ALLOWED_SUFFIXES = (".push.apple.com", ".notify.windows.com")


def b64decode(value: str) -> bytes:
    """base64url with or without its padding."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def endpoint_problem(endpoint: str, extra_hosts: frozenset[str]) -> str | None:
    """Why the service must not POST to this endpoint, or None."""
    try:
        url = urlsplit(endpoint)
        host, port = (url.hostname or "").lower(), url.port
    except ValueError:
        return "not a URL"
    if url.scheme not in ("https", "http") or not host or url.username or url.password:
        return "not an https URL"
    if f"{host}:{port or (443 if url.scheme == 'https' else 80)}" in extra_hosts:
        return None
    if url.scheme != "https" or port not in (None, 443):
        return "a push service is reached over https, on its usual port"
    try:
        ipaddress.ip_address(host)
        return "an address is not a push service"
    except ValueError:
        pass
    if host in ALLOWED_HOSTS or host.endswith(ALLOWED_SUFFIXES):
        return None
    return "not a known push service (FCM, Mozilla, Apple, Windows)"


class Keys(BaseModel):
    model_config = ConfigDict(frozen=True)

    # The browser's P-256 public key (65 bytes, uncompressed) and its auth secret (16 bytes).
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64decode(value))
        except (ValueError, binascii.Error) as error:
            raise ValueError("not a P-256 public key in base64url") from error
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        try:
            if len(b64decode(value)) == 16:
                return value.rstrip("=")
        except (ValueError, binascii.Error):
            pass
        raise ValueError("not 16 bytes in base64url")


class PushSubscription(BaseModel):
    """PushSubscription.toJSON(), as the browser gives it."""

    model_config = ConfigDict(frozen=True)

    endpoint: str = Field(min_length=1, max_length=2000, pattern=r"^\S+$")
    expirationTime: float | None = None  # the browser's name
    keys: Keys


class Subscriber(BaseModel):
    """A stored browser (read tolerantly: a newer release may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    endpoint: str
    p256dh: str
    auth: str
    follows: tuple[Follow, ...]
    created_at: datetime
    # Nothing to confirm (the browser asked the resident): always active.
    confirmed: bool = True
    active: bool = True

    @property
    def contact(self) -> str:
        """What a send needs, in one string for the kit's index (no space in any part)."""
        return f"{self.endpoint} {self.p256dh} {self.auth}"


def recipient_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


class Registry(RecipientRegistry[Subscriber]):
    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        return cls(await ensure_bucket(js, WEBPUSH_SUBSCRIPTIONS),
                   Subscriber.model_validate_json, "webpush")
