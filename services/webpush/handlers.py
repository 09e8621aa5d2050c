"""The Web Push channel on the kit (ChannelPort): one encrypted request per browser.

- recipients: subscribed browsers following the commune and category (the live index);
- prepare: the notification, built once per edition (a JSON the service worker reads);
- send: the subscription as it stands now (a removal wins), encrypted for it, with the TTL
  that ends at the notice's end, `Urgency: high` for alerts, and the notice id as the
  `Topic` (a push service replaces a pending message) and the notification's `tag` (the
  browser replaces the one shown); a withdrawal tells the service worker to close it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from crieur.channel.errors import Permanent, RecipientGone, Unsubscribed
from crieur.channel.port import Edition, PortDefaults
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Category, Notice
from services.push.format import texts, ttl_seconds
from services.webpush.sender import WebpushSender
from services.webpush.subscriptions import Registry


@dataclass(frozen=True)
class Draft:
    edition: Edition
    payload: bytes


def urgency(notice: Notice) -> Literal["high", "normal"]:
    return "high" if notice.category is Category.ALERTE else "normal"


def notification(edition: Edition, public_url: str) -> dict[str, str]:
    """What the service worker shows (or, `action: remove`, closes)."""
    notice = edition.notice
    title, body = texts(edition)
    shown = {"action": "remove" if edition.kind is EventKind.WITHDRAWN else "show",
             "kind": str(edition.kind), "tag": notice.id, "title": title, "body": body,
             "url": f"{public_url}/communes/{notice.commune}/notices/{notice.id}",
             "notice_id": notice.id, "version": str(notice.version),
             "commune": notice.commune, "category": notice.category.value}
    image = notice.image_url(public_url)
    if image is not None and edition.kind is not EventKind.WITHDRAWN:
        # The notification's large picture (the Notifications API's `image`).
        shown["image"] = image
    return shown


class WebpushChannel(PortDefaults):
    channel = Channel.WEBPUSH

    def __init__(self, registry: Registry, sender: WebpushSender, *, concurrency: int,
                 public_url: str, clock: Callable[[], datetime]) -> None:
        self.registry = registry
        self.sender = sender
        self.concurrency = concurrency
        self.rate_per_s: float | None = None
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        try:
            await asyncio.wait_for(self.registry.ready.wait(), 30)
        except TimeoutError:
            # Planning with a half-loaded index would skip people: fail, the kit retries.
            raise RuntimeError("Web Push subscriptions not loaded yet") from None
        for rid in self.registry.matching(notice.commune, str(notice.category)):
            yield rid

    async def prepare(self, edition: Edition) -> Draft:
        return Draft(edition, json.dumps(notification(edition, self.public_url),
                                         ensure_ascii=False).encode())

    async def send(self, job: Job, draft: Draft) -> str:
        cached = self.registry.cached(job.recipient)
        if cached is not None:
            contact = cached[0]
        else:
            found = await self.registry.get(job.recipient)
            if found is None:
                raise Unsubscribed("unsubscribed")
            contact = found[0].contact
        endpoint, p256dh, auth = contact.split(" ")
        notice = draft.edition.notice
        await self.sender.send(endpoint, p256dh, auth, draft.payload, urgency=urgency(notice),
                               ttl_s=ttl_seconds(notice, draft.edition.kind, self.clock()),
                               topic=notice.id)
        return job.recipient[:12]

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        if isinstance(error, RecipientGone):  # 404 or 410: the browser let it go
            await self.registry.forget(job.recipient)
