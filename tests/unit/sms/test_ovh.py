"""OVHcloud: the exact job body, and what each answer or SDK error means (table-driven)."""

from __future__ import annotations

from types import SimpleNamespace

import ovh.exceptions
import pytest

from crieur.channel.errors import Permanent, Transient
from services.sms.format import prepare_text
from services.sms.providers import ovh as provider
from services.sms.sender import INVALID_NUMBER, Accepted


def test_payload_is_an_ovh_sms_job() -> None:
    assert provider.payload("+33612345678", prepare_text("Route fermée"), "Crieur") == {
        "message": "Route fermée", "receivers": ["+33612345678"], "sender": "Crieur",
        "charset": "UTF-8", "coding": "7bit", "class": "phoneDisplay", "noStopClause": True,
        "priority": "high", "validityPeriod": 2880, "senderForResponse": False}
    assert provider.payload("+33612345678", prepare_text("Tempête", False), "C")[
        "coding"] == "8bit"


def test_outcome() -> None:
    to = "+33612345678"
    assert provider.outcome(to, {"ids": [42], "validReceivers": [to], "invalidReceivers": [],
                                 "totalCreditsRemoved": 2}) == Accepted("42", 2)
    with pytest.raises(Permanent, match=INVALID_NUMBER):
        provider.outcome(to, {"ids": [], "validReceivers": [], "invalidReceivers": [to]})
    with pytest.raises(Transient):
        provider.outcome(to, {"ids": []})


def _response(status: int, retry_after: str = "") -> SimpleNamespace:
    return SimpleNamespace(status_code=status, headers={"Retry-After": retry_after}
                           if retry_after else {})


ERRORS = [
    (ovh.exceptions.HTTPError("Low HTTP request failed error"), Transient, "ovh unreachable"),
    (ovh.exceptions.NetworkError(), Transient, "ovh unreachable"),
    (ovh.exceptions.APIError("Too many", response=_response(429, "5")), Transient, "ovh 429"),
    (ovh.exceptions.APIError("Internal", response=_response(502)), Transient, "ovh 502"),
    (ovh.exceptions.BadParametersError("Invalid receiver +3361",
                                       response=_response(400)), Permanent, INVALID_NUMBER),
    (ovh.exceptions.BadParametersError("Invalid sender", response=_response(400)),
     Permanent, "ovh 400"),
    (ovh.exceptions.InvalidCredential("bad", response=_response(403)), Transient, "ovh 403"),
    (ovh.exceptions.ResourceNotFoundError("no service", response=_response(404)),
     Transient, "ovh 404"),
]


@pytest.mark.parametrize(("exc", "kind", "reason"), ERRORS)
def test_sdk_errors(exc: Exception, kind: type, reason: str) -> None:
    mapped = provider.error(exc)
    assert type(mapped) is kind
    assert mapped.reason.startswith(reason)  # type: ignore[attr-defined]


def test_retry_after_is_kept() -> None:
    mapped = provider.error(ovh.exceptions.APIError("x", response=_response(429, "5")))
    assert isinstance(mapped, Transient) and mapped.retry_after == 5.0


def test_callbacks() -> None:
    receipt = provider.parse_receipt({"id": "99", "dlr": "1"})
    assert receipt is not None and receipt.delivered
    reply = provider.parse_reply({"senderid": "0033612345678", "message": "STOP"})
    assert reply is not None and reply.text == "STOP"
