"""OVHcloud's SMS API through the official `ovh` SDK: `POST /sms/{serviceName}/jobs`.

The SDK is synchronous (requests): each call runs in a worker thread. CRIEUR_SMS_API_URL
replaces the endpoint (the SDK knows only its named regions, so the base URL is set on
the client after it is made).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from crieur.channel.errors import Permanent, Transient
from services.sms.format import Encoding, Sms
from services.sms.sender import INVALID_NUMBER, Accepted, Receipt, Reply

try:  # An optional SDK: its absence is said clearly at start-up, not at import.
    import ovh
    import ovh.exceptions
except ImportError:  # pragma: no cover
    ovh = None

# OVHcloud delivery report codes (dlr): 1 delivered; 2, 16 failed; others are on the way.
DELIVERED = frozenset({"1"})
NOT_DELIVERED = frozenset({"2", "16"})


def payload(to: str, sms: Sms, sender: str) -> dict[str, Any]:
    """The job body (pure). Our own STOP mention is in the text: no second one from OVHcloud."""
    return {
        "message": sms.text,
        "receivers": [to],
        "sender": sender,
        "charset": "UTF-8",
        "coding": "7bit" if sms.encoding is Encoding.GSM7 else "8bit",
        "class": "phoneDisplay",
        "noStopClause": True,
        "priority": "high",
        "validityPeriod": 2880,
        "senderForResponse": False,
    }


def outcome(to: str, result: Any) -> Accepted:
    """A job's answer (pure): the number may be listed as invalid."""
    data = result if isinstance(result, dict) else {}
    if to in (data.get("invalidReceivers") or ()):
        raise Permanent(INVALID_NUMBER)
    ids = data.get("ids") or []
    if not ids:
        raise Transient("ovh: job accepted without an id")
    credits = data.get("totalCreditsRemoved")
    return Accepted(message_id=str(ids[0]), parts=int(credits) if isinstance(credits, int)
                    else None)


def error(exc: Exception) -> Exception:
    """An SDK exception as Transient or Permanent (pure)."""
    assert ovh is not None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", 0) or 0
    message = str(exc)[:200]
    if isinstance(exc, ovh.exceptions.HTTPError | ovh.exceptions.NetworkError |
                  ovh.exceptions.InvalidResponse):
        return Transient(f"ovh unreachable: {message}")
    if status == 429 or status >= 500:
        after = None
        if response is not None:
            try:
                after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                after = None
        return Transient(f"ovh {status}: {message}", retry_after=after)
    if isinstance(exc, ovh.exceptions.BadParametersError):
        if "receiver" in message.lower() or "number" in message.lower():
            return Permanent(INVALID_NUMBER)
        return Permanent(f"ovh 400: {message}")
    # Keys, rights, an unknown service name: our configuration, not this number.
    return Transient(f"ovh {status or type(exc).__name__}: {message}")


class OvhProvider:
    name: ClassVar[str] = "ovh"
    base_url: ClassVar[str] = "https://eu.api.ovh.com/1.0"

    def __init__(self, *, application_key: str, application_secret: str, consumer_key: str,
                 service_name: str, sender: str, base_url: str | None = None,
                 timeout_s: float = 15.0) -> None:
        if ovh is None:  # pragma: no cover
            raise RuntimeError("the `ovh` package is not installed (pip install ovh)")
        self._client = ovh.Client(endpoint="ovh-eu", application_key=application_key,
                                  application_secret=application_secret,
                                  consumer_key=consumer_key, timeout=timeout_s)
        if base_url:
            self._client._endpoint = base_url.rstrip("/")
        self._path = f"/sms/{service_name}/jobs"
        self._sender = sender

    async def send(self, to: str, sms: Sms) -> Accepted:
        assert ovh is not None
        try:
            result = await asyncio.to_thread(self._client.call, "POST", self._path,
                                             payload(to, sms, self._sender))
        except ovh.exceptions.APIError as exc:
            raise error(exc) from exc
        return outcome(to, result)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client._session.close)


def parse_receipt(query: dict[str, str]) -> Receipt | None:
    """OVHcloud's delivery callback (a GET with id and dlr in the query)."""
    message_id = query.get("id") or query.get("smsId")
    status = query.get("dlr") or query.get("status") or ""
    if not message_id or not status:
        return None
    return Receipt(message_id=message_id, delivered=status in DELIVERED, status=status[:50])


def parse_reply(query: dict[str, str]) -> Reply | None:
    """OVHcloud's incoming SMS callback (senderid and message in the query)."""
    sender = query.get("senderid") or query.get("sender")
    text = query.get("message")
    if not sender or text is None:
        return None
    return Reply(sender=sender, text=text)
