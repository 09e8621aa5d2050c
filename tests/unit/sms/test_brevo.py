"""Brevo: the exact request body, and what each answer means (table-driven)."""

from __future__ import annotations

import httpx
import pytest

from crieur.channel.errors import Permanent, Transient
from services.sms.format import prepare_text
from services.sms.providers import brevo
from services.sms.sender import INVALID_NUMBER, Accepted


def test_payload_is_brevo_s_transactional_sms() -> None:
    assert brevo.payload("+33612345678", prepare_text("Route fermée"), "Crieur",
                         "https://x/webhooks/sms/s/receipts") == {
        "sender": "Crieur", "recipient": "33612345678", "content": "Route fermée",
        "type": "transactional", "unicodeEnabled": False,
        "webUrl": "https://x/webhooks/sms/s/receipts"}
    assert brevo.payload("+33612345678", prepare_text("Tempête", False), "Crieur")[
        "unicodeEnabled"] is True


# (status, headers, body, expected: Accepted, or (error class, reason start, retry_after))
TABLE = [
    (201, {}, {"messageId": 1511882900176220}, Accepted("1511882900176220")),
    (201, {}, {"messageId": 7, "smsCount": 2}, Accepted("7", 2)),
    (429, {"retry-after": "12"}, {"message": "slow down"}, (Transient, "brevo 429", 12.0)),
    (500, {}, {"message": "oops"}, (Transient, "brevo 500", None)),
    (503, {}, None, (Transient, "brevo 503", None)),
    (401, {}, {"code": "unauthorized"}, (Transient, "brevo 401 (account)", None)),
    (402, {}, {"code": "not_enough_credits"}, (Transient, "brevo 402 (account)", None)),
    (400, {}, {"code": "invalid_parameter", "message": "Invalid recipient phone number"},
     (Permanent, INVALID_NUMBER, None)),
    (400, {}, {"code": "missing_parameter", "message": "content is missing"},
     (Permanent, "brevo 400", None)),
]


@pytest.mark.parametrize(("status", "headers", "body", "expected"), TABLE)
def test_outcome(status: int, headers: dict[str, str], body: object, expected: object) -> None:
    if isinstance(expected, Accepted):
        assert brevo.outcome(status, httpx.Headers(headers), body) == expected
        return
    assert isinstance(expected, tuple)
    kind, reason, after = expected
    with pytest.raises(kind) as caught:
        brevo.outcome(status, httpx.Headers(headers), body)
    assert caught.value.reason.startswith(reason)
    if kind is Transient:
        assert caught.value.retry_after == after
        assert not isinstance(caught.value, Permanent)


def test_webhook_events() -> None:
    receipt = brevo.parse_receipt({"messageId": 12, "event": "delivered"})
    assert receipt is not None and receipt.delivered and receipt.message_id == "12"
    failed = brevo.parse_receipt({"messageId": 12, "event": "hardBounce"})
    assert failed is not None and not failed.delivered
    assert brevo.parse_receipt({"event": "replied", "messageId": 3, "reply": "STOP"}) is None
    reply = brevo.parse_reply({"event": "replied", "from": "33612345678", "reply": "Stop"})
    assert reply is not None and (reply.sender, reply.text) == ("33612345678", "Stop")


def test_the_pool_goes_through_the_environment_s_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpcore

    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert type(brevo.connection_pool("https://api.brevo.com/v3/x", 4)) is \
        httpcore.AsyncConnectionPool
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s%40cret@proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    proxied = brevo.connection_pool("https://api.brevo.com/v3/x", 4)
    assert isinstance(proxied, httpcore.AsyncHTTPProxy)
    assert proxied._proxy_url.host == b"proxy.example" and proxied._proxy_url.port == 3128
    # user:s@cret, Basic-encoded
    assert proxied._proxy_headers == [(b"Proxy-Authorization", b"Basic dXNlcjpzQGNyZXQ=")]
    assert type(brevo.connection_pool("https://localhost:8443/v3/x", 4)) is \
        httpcore.AsyncConnectionPool
