"""The SMS subscriber registry: NATS KV only (bucket `sms_subscribers`), and a live index.

Key = recipient id (a keyed hash of the E.164 number), so subscribing twice makes one
subscription. The value holds the number (the only place it is kept), whether it is
confirmed, what it follows, a pending confirmation code (hashed), and whether the
provider called the number invalid. STOP or "delete my data" purges the key, and so does
the hourly sweep of numbers never confirmed (CRIEUR_SMS_UNCONFIRMED_MAX_AGE_S).

The registry and its live index (ids by commune and category, no numbers in logs) are the
channel kit's (crieur.channel.recipients); the number is read again at send time, so a
STOP wins over a job already queued.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from crieur.bus import ensure_bucket
from crieur.channel.recipients import Follow, RecipientRegistry, Topic, merge_follows
from schemas.buckets import SMS_MESSAGES, SMS_SUBSCRIBERS

__all__ = ["MESSAGES", "SUBSCRIBERS", "Follow", "PendingCode", "Purpose", "Registry",
           "Subscriber", "Topic", "merge_follows"]

SUBSCRIBERS = SMS_SUBSCRIBERS
MESSAGES = SMS_MESSAGES


class Purpose(StrEnum):
    SUBSCRIBE = "subscribe"
    DELETE = "delete"
    # What one commune sends to the number is replaced by the code's follows; none left:
    # the number is forgotten (the web page that changes categories or stops, issue 26).
    MANAGE = "manage"


class PendingCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    hash: str
    purpose: Purpose
    follows: tuple[Follow, ...] = ()
    # MANAGE: the commune whose categories `follows` replaces (none: stop it).
    commune: str | None = None
    expires_at: datetime
    attempts: int = 0


class Subscriber(BaseModel):
    # Stored state: read tolerantly, so a newer release can add fields.
    model_config = ConfigDict(frozen=True, extra="ignore")

    phone: str
    confirmed: bool = False
    follows: tuple[Follow, ...] = ()
    # The provider said this number cannot get SMS: nothing more is sent to it.
    invalid: bool = False
    code: PendingCode | None = None
    created_at: datetime
    confirmed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.confirmed and not self.invalid

    @property
    def contact(self) -> str:
        return self.phone


class Registry(RecipientRegistry[Subscriber]):
    """Reads and writes SMS subscribers; `watch()` keeps `index` in step with the bucket."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv, Subscriber.model_validate_json, "sms")

    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        return cls(await ensure_bucket(js, SUBSCRIBERS))

    def unconfirmed_since(self, subscriber: Subscriber) -> datetime:
        # A code asked for later, even by someone who is not the number's owner, keeps the
        # number until that code has expired too.
        code = subscriber.code
        return max(subscriber.created_at, code.expires_at) if code else subscriber.created_at
