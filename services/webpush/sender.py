"""One notice to one browser: encrypted (RFC 8291, aes128gcm) and signed (RFC 8292, VAPID)
by http-ece and py-vapid, posted to its push service (RFC 8030) with httpx.

A push service's answer, for the kit: 2xx sent; 404 or 410 the subscription is gone
(RecipientGone: forgotten); 429 and 5xx try later, its Retry-After honoured (Transient);
anything else (a payload too large, a VAPID key the subscription was not made with)
Permanent for this subscription.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from crieur.channel.errors import Permanent, RecipientGone, Transient
from services.webpush.subscriptions import b64decode

# A VAPID token is valid up to 24 h (RFC 8292); one is signed per push service and reused
# for an hour: a signature per request would be most of a send's CPU.
TOKEN_LIFE_S = 12 * 3600
TOKEN_REUSE_S = 3600


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class WebpushSender:
    def __init__(self, vapid: Vapid02, subject: str, *, timeout_s: float,
                 concurrency: int) -> None:
        self.vapid = vapid
        self.subject = subject
        self.client = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency))
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str) -> str:
        url = urlsplit(endpoint)
        audience = f"{url.scheme}://{url.netloc}"
        now = time.time()
        signed = self._tokens.get(audience)
        if signed is None or now - signed[0] > TOKEN_REUSE_S:
            claims = {"sub": self.subject, "aud": audience, "exp": int(now) + TOKEN_LIFE_S}
            signed = (now, self.vapid.sign(claims)["Authorization"])
            self._tokens[audience] = signed
        return signed[1]

    async def send(self, endpoint: str, p256dh: str, auth: str, payload: bytes, *,
                   ttl_s: int, urgency: str, topic: str) -> None:
        body = http_ece.encrypt(payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                                dh=b64decode(p256dh), auth_secret=b64decode(auth),
                                version="aes128gcm")
        headers = {"TTL": str(ttl_s), "Urgency": urgency, "Topic": topic,
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Authorization": self.authorization(endpoint)}
        try:
            answer = await self.client.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise Transient(f"push service: {type(error).__name__}") from error
        status = answer.status_code
        if 200 <= status < 300:
            return
        reason = f"push service {status}: {answer.text[:120]}"
        if status in (404, 410):
            raise RecipientGone(reason)
        if status == 429 or status >= 500:
            raise Transient(reason, retry_after=retry_after(answer.headers.get("retry-after")))
        raise Permanent(reason)

    async def close(self) -> None:
        await self.client.aclose()
