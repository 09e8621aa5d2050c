"""The bench-only path past the opt-in: confirmed subscribers written straight into the buckets.

    python -m bench.seed --commune 25056 --email 20000 --sms 100 \
        --categories information,alerte --prefix demo [--nats-url nats://127.0.0.1:4222]

seeds a running village (`make run`): the commune is registered if it is not, and the
recipient ids are keyed with the village's own secrets (CRIEUR_EMAIL_SECRET_KEY and
CRIEUR_SMS_SECRET_KEY, else those kept under CRIEUR_DATA_DIR, `var/` by default), as
its services read them.

Residents subscribe through the front door and confirm by a link (email) or a code (SMS);
100,000 of them cannot. The bench writes the very records the services read, with the
services' own models and keys, into `email_subscribers`, `sms_subscribers` and
`webpush_subscriptions` (services/email/subscribers.py, services/sms/subscribers.py,
services/webpush/subscriptions.py: browsers the Web Push stand-in made, so it can decrypt
what they are sent), as KV puts published asynchronously; each service's registry watch
indexes them live, and its /healthz says how many it holds. Communes are registered with
the call `crieur commune add` makes (CommuneRegistry.add), one staff token covers them
all (`crieur staff add`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js import JetStreamContext

from crieur.channel.recipients import Follow
from schemas.buckets import WEBPUSH_SUBSCRIPTIONS
from schemas.commune import INSEE_PATTERN
from schemas.notice import Category
from services.email import subscribers as email_subscribers
from services.email.format import normalise_address
from services.email.links import Links
from services.email.settings import EmailSettings
from services.notices.store import NatsStore
from services.sms import phones
from services.sms import subscribers as sms_subscribers
from services.sms.settings import SmsSettings
from services.webpush import subscriptions as webpush_subscriptions

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
               communes: Sequence[str], block: int, sms: bool = True, email: bool = True,
               categories: Sequence[Category] = (Category.ALERTE,),
               prefix: str | None = None) -> None:
    """Subscribers start..stop-1 of a block, each following `categories` (alerts unless
    told) of one commune (round robin over `communes`), for email (unless `email` is
    false) and SMS (unless `sms` is false). Addresses are `<prefix><i>@example.org`
    (prefix `b<block>h` unless given)."""
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
                if email:
                    address = normalise_address(email_address(prefix or f"b{block}h", i))
                    emails.append((links.recipient_id(address), email_subscribers.Subscriber(
                        email=address, confirmed=True, created_at=moment,
                        confirmed_at=moment,
                        follows=(email_subscribers.Follow(commune=commune,
                                                          categories=tuple(categories)),),
                    ).model_dump_json().encode()))
                if not sms:
                    continue
                number = phone_number(block, i)
                texts.append((phones.recipient_id(sms_secret, number), sms_subscribers.Subscriber(
                    phone=number, confirmed=True, created_at=moment, confirmed_at=moment,
                    follows=(sms_subscribers.Follow(commune=commune,
                                                    categories=tuple(categories)),),
                ).model_dump_json().encode()))
            await _put_all(js, email_subscribers.SUBSCRIBERS.name, emails)
            await _put_all(js, sms_subscribers.SUBSCRIBERS.name, texts)
    finally:
        await nc.close()


async def seed_webpush(nats_url: str, subscriptions: Sequence[dict[str, Any]], commune: str,
                       categories: Sequence[Category] = (Category.ALERTE,)) -> None:
    """Browsers' subscriptions (PushSubscription.toJSON(), as the Web Push stand-in makes
    them: it holds their keys and decrypts what is sent to them), each following
    `categories` of `commune`, written into `webpush_subscriptions` as the service's own
    routes write them (services/webpush/subscriptions.py)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=2000)
        await webpush_subscriptions.Registry.open(js)
        moment = datetime.now(UTC)
        follows = (Follow(commune=commune, categories=tuple(categories)),)
        records = []
        for browser in subscriptions:
            given = webpush_subscriptions.PushSubscription.model_validate(browser)
            records.append((webpush_subscriptions.recipient_id(given.endpoint),
                            webpush_subscriptions.Subscriber(
                                endpoint=given.endpoint, p256dh=given.keys.p256dh,
                                auth=given.keys.auth, follows=follows, created_at=moment,
                            ).model_dump_json().encode()))
        await _put_all(js, WEBPUSH_SUBSCRIPTIONS.name, records)
    finally:
        await nc.close()


async def register_communes(nats_url: str, communes: Sequence[tuple[str, str]],
                            group: str | None = None) -> str:
    """Each commune as `crieur commune add` registers it, and one staff token for them all;
    with `group`, a group of them all (as `crieur group add ID --communes` makes it) that
    the token is scoped to (`crieur staff add --group`)."""
    from services.notices.groups import Group, GroupRegistry

    store = await NatsStore.connect(nats_url, name="crieur-bench")
    try:
        for insee, name in communes:
            if await store.commune_registry.get(insee) is None:
                await store.commune_registry.add(insee, name)
        codes = tuple(c for c, _ in communes)
        if group is not None:
            await GroupRegistry(store.groups_kv).put(Group(
                id=group, name="Département du bench", kind="list", communes=codes,
                created_at=datetime.now(UTC)))
        _, token = await store.staff_registry.add("Préfecture (bench)", codes,
                                         (group,) if group is not None else ())
        return token
    finally:
        await store.close()


def prefix_block(prefix: str) -> int:
    """A block of phone numbers (0..999) of its own for each prefix."""
    return int(hashlib.sha256(prefix.encode()).hexdigest(), 16) % 1000


def prefixed_phone(prefix: str, i: int) -> str:
    """A French mobile number (+33 6...), distinct for each (prefix's block, i < 10^5)."""
    return f"+336{prefix_block(prefix):03d}{i:05d}"


def parse_categories(text: str) -> tuple[Category, ...]:
    try:
        return tuple(Category(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"categories among {', '.join(c.value for c in Category)}") from None


async def seed_commune(nats_url: str, *, commune: str, emails: int, texts: int,
                       categories: Sequence[Category], prefix: str, email_secret: str,
                       sms_secret: str) -> None:
    """`emails` and `texts` confirmed subscribers of one commune, following `categories`."""
    await register_communes(nats_url, [(commune, f"Commune {commune}")])
    await seed(nats_url, email_secret=email_secret, sms_secret=sms_secret, start=0,
               stop=emails, communes=[commune], block=0, sms=False, categories=categories,
               prefix=prefix)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=2000)
        await sms_subscribers.Registry.open(js)
        moment = datetime.now(UTC)
        follow = sms_subscribers.Follow(commune=commune, categories=tuple(categories))
        records = []
        for i in range(texts):
            number = prefixed_phone(prefix, i)
            records.append((phones.recipient_id(sms_secret, number), sms_subscribers.Subscriber(
                phone=number, confirmed=True, created_at=moment, confirmed_at=moment,
                follows=(follow,)).model_dump_json().encode()))
        await _put_all(js, sms_subscribers.SUBSCRIBERS.name, records)
    finally:
        await nc.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed",
        description="Confirmed subscribers of one commune, written into a running village.")
    parser.add_argument("--commune", required=True, help="INSEE code (registered if new)")
    parser.add_argument("--email", type=int, default=0, help="email subscribers")
    parser.add_argument("--sms", type=int, default=0, help="SMS subscribers (at most 100000)")
    parser.add_argument("--categories", type=parse_categories, default=(Category.ALERTE,),
                        help="categories they follow, comma-separated (default: alerte)")
    parser.add_argument("--prefix", default="seed",
                        help="addresses are <prefix><i>@example.org; numbers per prefix")
    parser.add_argument("--nats-url", default=None, help="default: CRIEUR_NATS_URL")
    args = parser.parse_args(argv)
    if not re.fullmatch(INSEE_PATTERN, args.commune):
        parser.error("--commune: an INSEE code, e.g. 25056")
    if not 0 <= args.sms <= 100_000 or args.email < 0:
        parser.error("--email must be at least 0, --sms between 0 and 100000")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,30}", args.prefix):
        parser.error("--prefix: lower-case letters, digits, dots and dashes")
    email, sms = EmailSettings(), SmsSettings()
    asyncio.run(seed_commune(args.nats_url or email.nats_url, commune=args.commune,
                             emails=args.email, texts=args.sms, categories=args.categories,
                             prefix=args.prefix, email_secret=email.secret_key(),
                             sms_secret=sms.secret_key()))
    print(f"{args.commune}: {args.email} email and {args.sms} SMS subscribers following "
          f"{','.join(args.categories)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
