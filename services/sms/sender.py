"""The provider port: one small interface, one file per provider (services/sms/providers/).

A provider sends one SMS to one number in E.164 and returns what it accepted, or raises
`crieur.channel.errors.Transient` (timeouts, 429, 5xx: try later) or `Permanent` (an
invalid number: `INVALID_NUMBER`, the subscriber is flagged). It also reads its own
webhooks: delivery receipts and replies (STOP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from services.sms.format import Sms

# The reason a Permanent carries when the number cannot receive SMS.
INVALID_NUMBER = "invalid number"


@dataclass(frozen=True)
class Accepted:
    """The provider took the SMS: its id (for delivery receipts) and the parts it counts."""

    message_id: str
    parts: int | None = None


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: the provider's message id, and whether the phone got it."""

    message_id: str
    delivered: bool
    status: str


@dataclass(frozen=True)
class Reply:
    """An SMS a resident sent back (STOP...): the number as the provider gives it."""

    sender: str
    text: str


class Provider(Protocol):
    name: ClassVar[str]
    # The provider's own base URL (CRIEUR_SMS_API_URL replaces it).
    base_url: ClassVar[str]

    async def send(self, to: str, sms: Sms) -> Accepted:
        """Send `sms` to `to` (E.164); raises Transient or Permanent."""
        ...

    async def aclose(self) -> None: ...


def read_receipt(query: dict[str, str], body: Any) -> Receipt | None:
    """A receipt in either provider's shape (Brevo posts JSON, OVHcloud calls a GET URL)."""
    from services.sms.providers import brevo, ovh

    return brevo.parse_receipt(body) or ovh.parse_receipt(query)


def read_reply(query: dict[str, str], body: Any) -> Reply | None:
    from services.sms.providers import brevo, ovh

    return brevo.parse_reply(body) or ovh.parse_reply(query)
