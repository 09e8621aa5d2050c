"""What the sign shows, as a pure function of the notices it was told about and the time.

Fed with the events of the NOTICES stream (each carrying the whole notice), a `Playlist`
keeps the latest version of every notice of its commune and answers, for any instant,
what is current and in which order the sign cycles through it. No I/O, no clock of its
own: every question takes `now`, so tests drive time by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from itertools import chain
from typing import Any

from schemas.events import NoticeEvent, NoticeWithdrawn
from schemas.notice import CATEGORY_LABELS, PARIS, Category, Notice, NoticeState

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
           "nov.", "déc.")


@dataclass(frozen=True)
class BlankHours:
    """Local (Europe/Paris) hours when the sign stays dark, alerts excepted; may span midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> BlankHours | None:
        """'23:00-06:00' -> BlankHours; '' -> None (never dark)."""
        if not text.strip():
            return None
        match = _HOURS.match(text)
        if match is None:
            raise ValueError(f"blank hours must look like 23:00-06:00, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1, m1), time(h2, m2)  # raises on 25:00
        if start == end:
            raise ValueError("blank hours start and end at the same time: leave it empty instead")
        return cls(start, end)

    def contains(self, now: datetime) -> bool:
        # Wall-clock time in the village: 23:00 is 23:00 in winter and in summer alike.
        local = now.astimezone(PARIS).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def is_alert(notice: Notice) -> bool:
    return notice.category is Category.ALERTE


def heading(notice: Notice) -> str:
    """The category as the sign's top line says it; an alert shouts."""
    label = CATEGORY_LABELS[notice.category]
    return label.upper() if is_alert(notice) else label


def _french_date(moment: datetime) -> str:
    local = moment.astimezone(PARIS)
    clock = f"{local.hour} h" if local.minute == 0 else f"{local.hour} h {local.minute:02d}"
    return f"{local.day} {_MONTHS[local.month - 1]} {clock}"


def sign_text(notice: Notice) -> str:
    """The scrolling line: the title, and until when if the notice says so."""
    if notice.ends_at is None:
        return notice.title
    return f"{notice.title} — jusqu’au {_french_date(notice.ends_at)}"


def _date(notice: Notice) -> datetime:
    # "By date": when the notice became valid, else when it went out.
    return notice.starts_at or notice.published_at or notice.created_at


def _newest_first(notices: list[Notice]) -> list[Notice]:
    return sorted(notices, key=lambda n: (_date(n), n.id), reverse=True)


class Playlist:
    """The latest known version of every notice of one commune, and what is current."""

    def __init__(self, commune: str, blank_hours: BlankHours | None = None) -> None:
        self.commune = commune
        self.blank_hours = blank_hours
        self._notices: dict[str, Notice] = {}
        # Withdrawn notices are remembered by version so a late or replayed older event
        # cannot bring one back.
        self._withdrawn: dict[str, int] = {}
        # Bumped on every change, so watchers can tell "something changed" cheaply.
        self.generation = 0

    # -- feeding ---------------------------------------------------------------------

    def apply(self, event: NoticeEvent) -> bool:
        """Take an event into account; True if what the playlist knows changed."""
        notice = event.notice
        if isinstance(event, NoticeWithdrawn):
            notice = notice.model_copy(update={"state": NoticeState.WITHDRAWN})
        return self.apply_notice(notice)

    def apply_notice(self, notice: Notice) -> bool:
        if notice.commune != self.commune:
            return False
        withdrawn_at = self._withdrawn.get(notice.id)
        if withdrawn_at is not None and notice.version <= withdrawn_at:
            return False
        known = self._notices.get(notice.id)
        if notice.state is NoticeState.WITHDRAWN:
            # Same version as the published one: a withdrawal does not bump the version.
            if known is not None and known.version > notice.version:
                return False
            self._withdrawn[notice.id] = notice.version
            self._notices.pop(notice.id, None)
            self.generation += 1
            return True
        if known is not None and known.version >= notice.version:
            return False  # a replay, or an older version arriving late
        self._notices[notice.id] = notice
        self.generation += 1
        return True

    def retain(self, notice_ids: set[str]) -> bool:
        """Forget every notice not in `notice_ids` (the stream's truth after a full replay)."""
        gone = [nid for nid in self._notices if nid not in notice_ids]
        for nid in gone:
            del self._notices[nid]
        if gone:
            self.generation += 1
        return bool(gone)

    def forget_expired(self, now: datetime) -> list[str]:
        """Drop notices past their end: they can only come back with a new event."""
        gone = [n.id for n in self._notices.values() if n.ends_at is not None and n.ends_at <= now]
        for nid in gone:
            del self._notices[nid]
        if gone:
            self.generation += 1
        return gone

    # -- reading -----------------------------------------------------------------------

    def known(self) -> list[Notice]:
        """Every live notice known, current or not (future ones included)."""
        return list(self._notices.values())

    def get(self, notice_id: str) -> Notice | None:
        return self._notices.get(notice_id)

    def is_blank(self, now: datetime) -> bool:
        return self.blank_hours is not None and self.blank_hours.contains(now)

    def current(self, now: datetime) -> list[Notice]:
        """What the sign may show now, each notice once: alerts first, then newest first."""
        live = [n for n in self._notices.values() if n.is_current(now)]
        alerts = _newest_first([n for n in live if is_alert(n)])
        if self.is_blank(now):
            return alerts
        return alerts + _newest_first([n for n in live if not is_alert(n)])

    def items(self, now: datetime) -> list[Notice]:
        """One cycle of the sign: every current notice, with an alert between every other one.

        Round i shows alert i (round robin) then other notice i, for as many rounds as
        the longer list needs: every notice appears, alerts at least every other slide.
        """
        current = self.current(now)
        alerts = [n for n in current if is_alert(n)]
        others = [n for n in current if not is_alert(n)]
        if not alerts or not others:
            return alerts or others
        rounds = max(len(alerts), len(others))
        return [
            n
            for i in range(rounds)
            for n in (alerts[i % len(alerts)], others[i] if i < len(others) else None)
            if n is not None
        ]

    def shows(self, notice_id: str, version: int, now: datetime) -> bool:
        """Is this version of this notice still meant to be on the sign?"""
        return any(n.id == notice_id and n.version == version for n in self.current(now))

    def next_change(self, now: datetime) -> datetime | None:
        """The next instant a notice starts or ends (blank hours are checked by the caller)."""
        moments = [
            m for m in chain.from_iterable((n.starts_at, n.ends_at) for n in self._notices.values())
            if m is not None and m > now
        ]
        return min(moments, default=None)

    # -- persistence (the caller does the I/O) --------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "commune": self.commune,
            "notices": [n.model_dump(mode="json") for n in self._notices.values()],
            "withdrawn": dict(self._withdrawn),
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore a dump made by `dump` (the sign's memory across a restart without network)."""
        if data.get("commune") != self.commune:
            return
        for nid, version in dict(data.get("withdrawn", {})).items():
            self._withdrawn[str(nid)] = int(version)
        for raw in data.get("notices", []):
            self.apply_notice(Notice.model_validate(raw))
