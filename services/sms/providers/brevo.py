"""Brevo's transactional SMS API: `POST /v3/transactionalSMS/send`, `api-key` header.

Sent with httpcore, the HTTP engine under httpx, straight: httpx's client layers (request
building, auth, redirects, cookies, its Response model) were a third of the SMS service's
busy time in a py-spy profile of a bench fan-out, for features one fixed POST does not use.
The same connection pool, timeouts, certificates (certifi) and environment proxies as the
httpx client it replaces; each request leaves in one write, not httpcore's two
(services.sms.providers.coalescing).

Also the stand-in's language (crieur_dev.standins.sms speaks it for `make run` and tests).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any, ClassVar

import httpcore
import httpx

from crieur.channel.errors import Permanent, Transient
from services.sms.format import Encoding, Sms
from services.sms.providers.coalescing import CoalescingBackend
from services.sms.sender import INVALID_NUMBER, Accepted, Receipt, Reply

PATH = "/v3/transactionalSMS/send"
# Brevo's webhook events for an SMS that reached the phone, or never will.
DELIVERED = frozenset({"delivered", "accepted"})
NOT_DELIVERED = frozenset({"hardbounce", "hard_bounce", "softbounce", "soft_bounce",
                           "rejected", "blocked", "skip", "error"})


def payload(to: str, sms: Sms, sender: str, web_url: str | None = None) -> dict[str, Any]:
    """The request body (pure): Brevo wants the number with its country code, no '+'."""
    body: dict[str, Any] = {
        "sender": sender,
        "recipient": to.removeprefix("+"),
        "content": sms.text,
        "type": "transactional",
        "unicodeEnabled": sms.encoding is Encoding.UCS2,
    }
    if web_url:
        body["webUrl"] = web_url
    return body


def retry_after(headers: httpx.Headers) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


def outcome(status: int, headers: httpx.Headers, body: Any) -> Accepted:
    """What an answer means (pure): Accepted, or Transient / Permanent raised."""
    data = body if isinstance(body, dict) else {}
    message = str(data.get("message", ""))[:200]
    if 200 <= status < 300:
        return Accepted(message_id=str(data.get("messageId", "")),
                        parts=data.get("smsCount") if isinstance(data.get("smsCount"),
                                                                   int) else None)
    if status == 429 or status >= 500:
        raise Transient(f"brevo {status}: {message}", retry_after=retry_after(headers))
    if status in (401, 402, 403):
        # Our key or our credit, not this number: nothing is lost, it is retried, then
        # set aside as a dead letter for the operator.
        raise Transient(f"brevo {status} (account): {message}", retry_after=retry_after(headers))
    text = f"{data.get('code', '')} {message}".lower()
    if status == 400 and any(word in text for word in ("recipient", "number", "phone",
                                                        "mobile")):
        raise Permanent(INVALID_NUMBER)
    raise Permanent(f"brevo {status}: {message}")


# What httpx answers with a TransportError, as httpcore raises it.
_TRANSPORT_ERRORS = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
                     httpcore.UnsupportedProtocol)


def connection_pool(url: str, concurrency: int) -> httpcore.AsyncConnectionPool:
    """Keep-alive connections to `url`'s host, through the environment's proxy if it names
    one for it (HTTPS_PROXY, NO_PROXY...: what httpx's client honoured); each request goes
    out in one write (services.sms.providers.coalescing)."""
    limits: dict[str, Any] = {"max_connections": concurrency,
                              "max_keepalive_connections": concurrency,
                              "keepalive_expiry": 5.0,  # httpx's default
                              "network_backend": CoalescingBackend()}
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return httpcore.AsyncConnectionPool(**limits)
    through = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    auth = ((urllib.parse.unquote(through.username), urllib.parse.unquote(through.password or ""))
            if through.username else None)
    bare = through._replace(netloc=through.netloc.rpartition("@")[2]).geturl()
    return httpcore.AsyncHTTPProxy(proxy_url=bare, proxy_auth=auth, **limits)


class BrevoProvider:
    name: ClassVar[str] = "brevo"
    base_url: ClassVar[str] = "https://api.brevo.com"

    def __init__(self, api_key: str, sender: str, *, base_url: str | None = None,
                 timeout_s: float = 15.0, web_url: str | None = None,
                 concurrency: int = 4) -> None:
        self._sender = sender
        self._web_url = web_url
        url = (base_url or self.base_url).rstrip("/") + PATH
        self._url = httpcore.URL(url)
        # Built once: every request carries the same (Host and Content-Length are added).
        self._headers = [(b"api-key", api_key.encode()), (b"accept", b"application/json"),
                         (b"content-type", b"application/json"),
                         (b"user-agent", b"crieur-sms")]
        self._extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"),
                                                     timeout_s)}
        self._pool = connection_pool(url, concurrency)

    async def send(self, to: str, sms: Sms) -> Accepted:
        # Encoded as httpx's `json=` encodes it.
        content = json.dumps(payload(to, sms, self._sender, self._web_url),
                             ensure_ascii=False, separators=(",", ":"),
                             allow_nan=False).encode()
        try:
            answer = await self._pool.request("POST", self._url, headers=self._headers,
                                              content=content, extensions=self._extensions)
        except httpcore.TimeoutException as error:
            raise Transient(f"brevo timeout: {type(error).__name__}") from error
        except _TRANSPORT_ERRORS as error:
            raise Transient(f"brevo unreachable: {type(error).__name__}") from error
        try:
            body = json.loads(answer.content)
        except ValueError:
            body = None
        return outcome(answer.status, httpx.Headers(answer.headers), body)

    async def aclose(self) -> None:
        await self._pool.aclose()


def parse_receipt(body: Any) -> Receipt | None:
    """A Brevo SMS webhook event (JSON: messageId, event or msg_status)."""
    if not isinstance(body, dict) or "messageId" not in body:
        return None
    status = str(body.get("event") or body.get("msg_status") or body.get("status") or "")
    if status.lower() in ("replied", "reply", "unsubscribed"):
        return None
    return Receipt(message_id=str(body["messageId"]), delivered=status.lower() in DELIVERED,
                   status=status[:50])


def parse_reply(body: Any) -> Reply | None:
    """A Brevo reply event: the resident's number and text."""
    if not isinstance(body, dict):
        return None
    text = body.get("reply") or body.get("text") or body.get("message")
    sender = body.get("from") or body.get("to") or body.get("phone")
    if not isinstance(text, str) or not isinstance(sender, str):
        return None
    return Reply(sender=sender, text=text)
