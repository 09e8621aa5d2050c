"""One French formatter for every channel: dates, numbers, counts (exact values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crieur import french
from schemas.notice import Category, Notice, NoticeState
from services.email.format import french_date as email_date
from services.notices.atom import _withdrawal_note
from services.notices.pages import french_date as site_date


def withdrawn_notice(withdrawn_at: datetime) -> Notice:
    moment = withdrawn_at - timedelta(days=1)
    return Notice(id="n0tice0001", commune="70279", category=Category.INFORMATION,
                  title="Fermeture de la mairie", body="La mairie sera fermée lundi.",
                  author="secretariat", version=2, state=NoticeState.WITHDRAWN,
                  created_at=moment, updated_at=withdrawn_at, published_at=moment,
                  withdrawn_at=withdrawn_at)


def plain(text: str) -> str:
    return text.replace(french.NBSP, " ")


def test_dates_read_the_same_on_the_site_in_emails_and_in_the_feed() -> None:
    nine = datetime(2026, 12, 19, 8, 0, tzinfo=UTC)  # 9 h 00 in Paris
    assert plain(site_date(nine)) == "19 décembre 2026 à 9 h 00"
    assert plain(email_date(nine)) == "samedi 19 décembre 2026 à 9 h 00"
    assert plain(french.date_time(datetime(2026, 12, 1, 18, 15, tzinfo=UTC))) == (
        "1er décembre 2026 à 19 h 15")


def test_the_feed_says_a_withdrawal_date_in_words() -> None:
    withdrawn = datetime(2026, 12, 7, 18, 15, tzinfo=UTC)
    note = plain(_withdrawal_note(withdrawn_notice(withdrawn)))
    assert note.startswith("Cet avis a été retiré par la mairie le 7 décembre 2026 à 19 h 15.")
    assert "/" not in note.split(".")[0]


@pytest.mark.parametrize(("value", "said"), [
    (18.2, "18,2"), (18.25, "18,2"), (3.0, "3"), (0.5, "0,5"), (1250, "1 250"), (12.0, "12"),
])
def test_numbers_take_a_decimal_comma(value: float, said: str) -> None:
    assert plain(french.number(value)) == said


def test_seconds_and_counts() -> None:
    assert plain(french.seconds(18.2)) == "18,2 s"
    assert plain(french.counted(0, "abonné")) == "0 abonné"
    assert plain(french.counted(1, "abonné")) == "1 abonné"
    assert plain(french.counted(2, "abonné")) == "2 abonnés"
    assert plain(french.counted(1, "téléphone")) == "1 téléphone"
    assert plain(french.counted(3, "SMS", "SMS")) == "3 SMS"
