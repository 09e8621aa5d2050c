"""The email subscriber registry: NATS KV only, one key per recipient id, and a live index.

Key = recipient id (a keyed hash of the normalised address, `Links.recipient_id`), so a
second subscription of the same address lands on the same key. The value holds the
address (the only place it is kept), whether it is confirmed, what it follows, and its
hard bounces. Unsubscribing or "delete my data" purges the key: the address is gone.

The registry and its live index (ids by commune and category, and each active address,
for sends while the index is proven current) are the channel kit's
(crieur.channel.recipients); this file says what an email subscriber is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from crieur.bus import ensure_bucket
from crieur.channel.recipients import Change, Follow, RecipientRegistry, Topic, merge_follows
from schemas.buckets import EMAIL_SUBSCRIBERS

__all__ = ["SUBSCRIBERS", "Change", "Follow", "Registry", "Subscriber", "Topic",
           "add_confirmed", "merge_follows", "now"]

SUBSCRIBERS = EMAIL_SUBSCRIBERS


class Subscriber(BaseModel):
    # Stored state: read tolerantly, so a newer release can add fields.
    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str
    confirmed: bool = False
    follows: tuple[Follow, ...] = ()
    bounces: int = 0
    suspended: bool = False
    created_at: datetime
    confirmed_at: datetime | None = None
    # The last "you are already subscribed" email: kept here, not in memory, so that a
    # restart cannot let a stranger's repeated requests flood a confirmed mailbox.
    already_mailed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.confirmed and not self.suspended

    @property
    def contact(self) -> str:
        return self.email

    def follows_notice(self, commune: str, category: str) -> bool:
        return any(f.commune == commune and category in f.categories for f in self.follows)


class Registry(RecipientRegistry[Subscriber]):
    """Reads and writes email subscribers; `watch()` keeps `index` in step with the bucket."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv, Subscriber.model_validate_json, "email")

    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        return cls(await ensure_bucket(js, SUBSCRIBERS))


def now() -> datetime:
    return datetime.now(UTC)


async def add_confirmed(registry: Registry, rid: str, address: str,
                        follows: tuple[Follow, ...]) -> None:
    """A confirmed subscriber in one write: for seeding (bench, tests), not for residents."""
    moment = now()
    await registry.put(rid, Subscriber(email=address, confirmed=True, follows=follows,
                                       created_at=moment, confirmed_at=moment))
