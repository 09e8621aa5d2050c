"""The bench-only path past the opt-in: confirmed subscribers written straight into the buckets.

Residents subscribe through the front door and confirm by a link (email) or a code (SMS);
100,000 of them cannot. The bench writes the very records the services read, with the
services' own models and keys, into `email_subscribers` and `sms_subscribers`
(services/email/subscribers.py, services/sms/subscribers.py), as KV puts published
asynchronously; each service's registry watch indexes them live, and its /healthz says how
many it holds. Communes are registered with the call `crieur commune add` makes
(NatsStore.add_commune), one staff token covers them all (`crieur staff add`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import nats
from nats.js import JetStreamContext

from schemas.notice import Category
from services.email import subscribers as email_subscribers
from services.email.format import normalise_address
from services.email.links import Links
from services.notices.store import NatsStore
from services.sms import phones
from services.sms import subscribers as sms_subscribers

PUBLIC_URL = "https://crieur.example.fr"


def email_address(prefix: str, i: int) -> str:
    return f"{prefix}{i}@example.org"


def phone_number(block: int, i: int) -> str:
    """A French mobile number (+33 6 or 7...), distinct for each (block, i)."""
    return f"+33{6 + block}{i:08d}"


async def _put_all(js: JetStreamContext, bucket: str, records: list[tuple[str, bytes]]) -> None:
    for key, value in records:
        await js.publish_async(f"$KV.{bucket}.{key}", value)
    await js.publish_async_completed()


async def seed(nats_url: str, *, email_secret: str, sms_secret: str, start: int, stop: int,
               communes: Sequence[str], block: int, sms: bool = True) -> None:
    """Subscribers start..stop-1 of a block, each following one commune's alerts (round
    robin over `communes`), for email and (unless `sms` is false) for SMS."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=2000)
        await email_subscribers.Registry.open(js)  # the buckets, as the services make them
        await sms_subscribers.Registry.open(js)
        links = Links(email_secret, PUBLIC_URL, 3600)
        moment = datetime.now(UTC)
        for first in range(start, stop, 5000):
            emails, texts = [], []
            for i in range(first, min(stop, first + 5000)):
                commune = communes[i % len(communes)]
                address = normalise_address(email_address(f"b{block}h", i))
                emails.append((links.recipient_id(address), email_subscribers.Subscriber(
                    email=address, confirmed=True, created_at=moment, confirmed_at=moment,
                    follows=(email_subscribers.Follow(commune=commune,
                                                      categories=(Category.ALERTE,)),),
                ).model_dump_json().encode()))
                if not sms:
                    continue
                number = phone_number(block, i)
                texts.append((phones.recipient_id(sms_secret, number), sms_subscribers.Subscriber(
                    phone=number, confirmed=True, created_at=moment, confirmed_at=moment,
                    follows=(sms_subscribers.Follow(commune=commune,
                                                    categories=(Category.ALERTE,)),),
                ).model_dump_json().encode()))
            await _put_all(js, email_subscribers.SUBSCRIBERS.name, emails)
            await _put_all(js, sms_subscribers.SUBSCRIBERS.name, texts)
    finally:
        await nc.close()


async def register_communes(nats_url: str, communes: Sequence[tuple[str, str]]) -> str:
    """Each commune as `crieur commune add` registers it, and one staff token for them all."""
    store = await NatsStore.connect(nats_url, name="crieur-bench")
    try:
        for insee, name in communes:
            if await store.commune(insee) is None:
                await store.add_commune(insee, name)
        _, token = await store.add_staff("Préfecture (bench)", tuple(c for c, _ in communes))
        return token
    finally:
        await store.close()
