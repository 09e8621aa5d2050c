"""What the sign's unit tests share: a commune, a noon, a hand-moved clock, notices and events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas import Category, Notice, NoticePublished, NoticeState, NoticeWithdrawn
from schemas.notice import PARIS

COMMUNE = "70299"
# Noon in Paris on an ordinary winter day: outside any blank hours used here.
NOON = datetime(2025, 12, 2, 12, 0, tzinfo=PARIS)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def notice(nid: str, category: Category = Category.INFORMATION, *, version: int = 1,
           published: datetime = NOON - timedelta(hours=1), **fields: Any) -> Notice:
    data: dict[str, Any] = {
        "id": nid, "commune": COMMUNE, "category": category, "title": f"Avis {nid}",
        "body": "Texte.", "author": "Secrétariat", "version": version,
        "state": NoticeState.PUBLISHED if version == 1 else NoticeState.CORRECTED,
        "created_at": published, "updated_at": published, "published_at": published,
    }
    return Notice.model_validate(data | fields)


def published(n: Notice) -> NoticePublished:
    return NoticePublished(occurred_at=n.updated_at, notice=n)


def withdrawn(n: Notice) -> NoticeWithdrawn:
    gone = n.model_copy(update={"state": NoticeState.WITHDRAWN, "withdrawn_at": NOON})
    return NoticeWithdrawn(occurred_at=NOON, notice=gone)
