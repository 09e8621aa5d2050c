"""The read model: every notice's latest version, rebuilt from the NOTICES stream.

The stream is the only store; this view is what it says, kept in memory so reads
cost nothing. It is fed the last event of every notice at start-up, then each new one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from schemas import Category, Notice, NoticeEvent, NoticeState

# How long a withdrawn notice stays in the Atom feed, marked as withdrawn (less if its
# validity window ends sooner): a feed reader that polls daily still learns of it.
WITHDRAWN_VISIBLE = timedelta(days=7)


def _order(notice: Notice) -> tuple[bool, float, str]:
    """Alerts first, then the most recent first; the id makes the order total (for paging)."""
    return (notice.category is not Category.ALERTE,
            -(notice.published_at or notice.created_at).timestamp(), notice.id)


def withdrawal_visible_until(notice: Notice) -> datetime | None:
    """Until when a withdrawn notice stays in the feed; None if it never goes in (never sent)."""
    if notice.state is not NoticeState.WITHDRAWN or notice.published_at is None:
        return None
    until = (notice.withdrawn_at or notice.updated_at) + WITHDRAWN_VISIBLE
    return min(until, notice.ends_at) if notice.ends_at is not None else until


def went_out(found: tuple[int, Notice] | None) -> Notice | None:
    """The notice as residents may read it: None if it never went out.

    A notice withdrawn while scheduled or pending approval has its withdrawal on the stream
    but was never sent: to residents it never existed (staff may still read it back).
    """
    if found is None or found[1].published_at is None:
        return None
    return found[1]


class NoticeView:
    def __init__(self) -> None:
        self._by_commune: dict[str, dict[str, tuple[int, Notice]]] = defaultdict(dict)
        self._last_seq: dict[str, int] = {}

    def apply(self, seq: int, event: NoticeEvent) -> None:
        """Apply an event once, in stream order, whether it comes from our publish or the feed."""
        commune = event.notice.commune
        notices = self._by_commune[commune]
        known = notices.get(event.notice.id)
        if known is None or seq > known[0]:
            notices[event.notice.id] = (seq, event.notice)
            self._last_seq[commune] = max(seq, self._last_seq.get(commune, 0))

    def attachment_ids(self) -> set[str]:
        """Every attachment hosted here that the latest version of a notice names."""
        return {a.id for notices in self._by_commune.values() for _, notice in notices.values()
                for a in notice.attachments if a.id is not None}

    def get(self, commune: str, notice_id: str) -> tuple[int, Notice] | None:
        return self._by_commune.get(commune, {}).get(notice_id)

    def all(self, commune: str) -> list[Notice]:
        return [notice for _, notice in self._by_commune.get(commune, {}).values()]

    def stamp(self, commune: str) -> int:
        """Changes whenever an event of the commune is applied: what a cached answer keys on."""
        return self._last_seq.get(commune, 0)

    def current(self, commune: str, now: datetime) -> list[Notice]:
        """The commune's current notices: alerts first, then the most recent first."""
        return sorted((n for n in self.all(commune) if n.is_current(now)), key=_order)

    def in_feed(self, commune: str, now: datetime) -> list[Notice]:
        """What the Atom feed holds: the current notices and the recently withdrawn ones."""
        def shown(notice: Notice) -> bool:
            until = withdrawal_visible_until(notice)
            return notice.is_current(now) or (until is not None and now < until)

        return sorted((n for n in self.all(commune) if shown(n)), key=_order)

    def changed_at(self, commune: str, now: datetime) -> datetime | None:
        """The last time the commune's current notices or feed changed; never goes backwards.

        An event changes them, and so does time: a notice starting, ending, or a withdrawal
        leaving the feed. The latest such moment not after `now` is the answer.
        """
        moments = [m for n in self.all(commune) for m in _moments(n) if m <= now]
        return max(moments, default=None)

    def next_change(self, commune: str, now: datetime) -> datetime | None:
        """The next moment time alone changes what is current or in the feed (None: never)."""
        moments = [m for n in self.all(commune) for m in _moments(n) if m > now]
        return min(moments, default=None)

    def count(self) -> int:
        return sum(len(n) for n in self._by_commune.values())


def _moments(notice: Notice) -> list[datetime]:
    """The instants at which this notice changes what readers are shown."""
    moments = [notice.updated_at]
    if notice.state is NoticeState.WITHDRAWN:
        until = withdrawal_visible_until(notice)
        return moments + ([until] if until is not None else [])
    if notice.starts_at is not None:
        moments.append(notice.starts_at)
    if notice.ends_at is not None:
        moments.append(notice.ends_at)
    return moments
