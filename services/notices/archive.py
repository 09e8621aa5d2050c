"""Past notices, searched: the public archive of a commune and the staff list's filters.

Pure: notices and a clock in, notices out. The notices are the read model's, already in
memory (services/notices/view.py); nothing here reads NATS. What a request may cost is
bounded: a search looks at the `SEARCH_LIMIT` most recent notices and at most
`MAX_WORDS` words, and the words are matched against a folded copy of each notice's
text made once per change of the commune's notices (`ArchiveIndex`), not per request.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from crieur import french
from schemas import Category, Notice, NoticeState

# A village publishes a few hundred notices a year: this covers decades of them, and keeps
# one search below a few milliseconds whatever a hostile client asks.
SEARCH_LIMIT = 5000
MAX_WORDS = 8
MAX_QUERY_CHARS = 100
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def fold(text: str) -> str:
    """Lower case, accents off: `Défilé` finds `defile`, `ÉCOLE` finds `école`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(query: str) -> list[str]:
    """The words of a query, folded; punctuation separates words, as in the text."""
    return re.findall(r"\w+", fold(query[:MAX_QUERY_CHARS]))[:MAX_WORDS]


def month_of_moment(moment: datetime) -> str:
    """`2026-11`: the month of a moment, in Paris time."""
    return moment.astimezone(french.PARIS).strftime("%Y-%m")


def month_of(notice: Notice) -> str:
    """The month the notice went out (or was written, if it has not gone out)."""
    return month_of_moment(notice.published_at or notice.created_at)


def month_label(month: str) -> str:
    """`novembre 2026` for `2026-11`."""
    year, number = month.split("-")
    return f"{french.MONTHS[int(number) - 1]} {year}"


def is_archived(notice: Notice, now: datetime) -> bool:
    """What residents may read among past notices: sent, then ended. A withdrawn notice
    is not shown: the mairie took it back, so it is not the village's record to read."""
    return notice.published_at is not None and notice.state_at(now) is NoticeState.EXPIRED


@dataclass(frozen=True)
class Filters:
    """What a reader asked for; each part optional. Built by `Filters.read` from a query."""

    words: tuple[str, ...] = ()
    month: str = ""
    category: Category | None = None
    state: NoticeState | None = None

    @classmethod
    def read(cls, params: dict[str, str], *, with_state: bool = False) -> Filters:
        """From query parameters `q`, `mois`, `categorie` (and `etat`); unknown values are
        ignored rather than refused, so a bookmarked search keeps working."""
        month = params.get("mois", "")
        category = params.get("categorie", "")
        state = params.get("etat", "") if with_state else ""
        return cls(
            words=tuple(words(params.get("q", ""))),
            month=month if MONTH_RE.match(month) else "",
            category=Category(category) if category in Category._value2member_map_ else None,
            state=NoticeState(state) if state in NoticeState._value2member_map_ else None,
        )

    @property
    def any(self) -> bool:
        return bool(self.words or self.month or self.category or self.state)

    def query(self) -> dict[str, str]:
        """The filters as query parameters, for the links to other pages of the results."""
        values = {"q": " ".join(self.words), "mois": self.month,
                  "categorie": self.category.value if self.category else "",
                  "etat": self.state.value if self.state else ""}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Entry:
    notice: Notice
    text: str  # title and body, folded
    month: str


def entry(notice: Notice) -> Entry:
    return Entry(notice, fold(f"{notice.title}\n{notice.body}"), month_of(notice))


def matches(item: Entry, filters: Filters) -> bool:
    """Whether a notice is one the filters ask for (all but the state: a notice's state
    depends on the clock and on a correction waiting, which the caller knows)."""
    if filters.month and item.month != filters.month:
        return False
    if filters.category is not None and item.notice.category is not filters.category:
        return False
    return all(word in item.text for word in filters.words)


class ArchiveIndex:
    """A commune's past notices, most recent first, with their folded text."""

    def __init__(self, notices: Iterable[Notice], now: datetime) -> None:
        past = [n for n in notices if is_archived(n, now)]
        # Most recently ended first: what a resident remembers having seen lately.
        past.sort(key=lambda n: (-(n.ends_at or n.updated_at).timestamp(), n.id))
        self.total = len(past)
        self.entries = [entry(n) for n in past[:SEARCH_LIMIT]]
        self.months = sorted({e.month for e in self.entries}, reverse=True)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.entries)

    def search(self, filters: Filters) -> list[Notice]:
        return [e.notice for e in self.entries if matches(e, filters)]
