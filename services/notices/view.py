"""The read model: every notice's latest version, rebuilt from the NOTICES stream.

The stream is the only store; this view is what it says, kept in memory so reads
cost nothing. It is fed the last event of every notice at start-up, then each new one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from schemas import Category, Notice, NoticeEvent


class NoticeView:
    def __init__(self) -> None:
        self._by_commune: dict[str, dict[str, tuple[int, Notice]]] = defaultdict(dict)

    def apply(self, seq: int, event: NoticeEvent) -> None:
        """Apply an event once, in stream order, whether it comes from our publish or the feed."""
        notices = self._by_commune[event.notice.commune]
        known = notices.get(event.notice.id)
        if known is None or seq > known[0]:
            notices[event.notice.id] = (seq, event.notice)

    def get(self, commune: str, notice_id: str) -> tuple[int, Notice] | None:
        return self._by_commune.get(commune, {}).get(notice_id)

    def all(self, commune: str) -> list[Notice]:
        return [notice for _, notice in self._by_commune.get(commune, {}).values()]

    def current(self, commune: str, now: datetime) -> list[Notice]:
        """The commune's current notices: alerts first, then the most recent first."""
        current = [n for n in self.all(commune) if n.is_current(now)]
        return sorted(current, key=lambda n: (n.category is not Category.ALERTE,
                                              -(n.published_at or n.created_at).timestamp()))

    def count(self) -> int:
        return sum(len(n) for n in self._by_commune.values())
