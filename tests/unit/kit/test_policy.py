"""Who gets which event and whether a job still goes: exact answers of crieur.channel.policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crieur.channel import policy
from crieur.channel.policy import Action, Audience
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.notice import Category, Notice, NoticeState

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def notice(**fields: Any) -> Notice:
    data: dict[str, Any] = {
        "id": "abcdef0123456789", "commune": "70299", "category": Category.ALERTE,
        "title": "Tempête", "body": "Restez chez vous.", "author": "Mairie", "version": 1,
        "state": NoticeState.PUBLISHED, "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(hours=1),
    }
    return Notice.model_validate(data | fields)


def job(kind: EventKind = EventKind.PUBLISHED, version: int = 1) -> Job:
    return Job(channel=Channel.EMAIL, commune="70299", notice_id="abcdef0123456789",
               version=version, kind=kind, recipient="r1")


def test_a_publication_goes_to_subscribers_the_rest_to_earlier_recipients() -> None:
    assert policy.audience(EventKind.PUBLISHED) is Audience.SUBSCRIBERS
    assert policy.audience(EventKind.CORRECTED) is Audience.EARLIER_RECIPIENTS
    assert policy.audience(EventKind.WITHDRAWN) is Audience.EARLIER_RECIPIENTS


@pytest.mark.parametrize(("record", "event", "expected"), [
    ((EventKind.PUBLISHED, 1), (EventKind.CORRECTED, 2), True),
    ((EventKind.CORRECTED, 2), (EventKind.CORRECTED, 3), True),
    ((EventKind.PUBLISHED, 2), (EventKind.CORRECTED, 2), False),  # that version itself
    ((EventKind.PUBLISHED, 1), (EventKind.WITHDRAWN, 1), True),  # withdrawal keeps version
    ((EventKind.CORRECTED, 2), (EventKind.WITHDRAWN, 2), True),
    ((EventKind.WITHDRAWN, 1), (EventKind.WITHDRAWN, 1), False),  # told already
])
def test_who_counts_as_having_got_the_notice(record: tuple[EventKind, int],
                                             event: tuple[EventKind, int],
                                             expected: bool) -> None:
    assert policy.got_earlier(record[0], record[1], event[0], event[1]) is expected


def test_a_current_notice_is_sent() -> None:
    assert policy.verdict(job(), notice(), NOW) == policy.SEND


def test_a_notice_starting_later_is_still_announced_now() -> None:
    later = notice(starts_at=NOW + timedelta(days=7), ends_at=NOW + timedelta(days=8))
    assert policy.verdict(job(), later, NOW).action is Action.SEND


def test_withdrawn_expired_unknown_are_dropped() -> None:
    assert policy.verdict(job(), notice(state=NoticeState.WITHDRAWN), NOW) == policy.Verdict(
        Action.DROP, "withdrawn")
    assert policy.verdict(job(), notice(ends_at=NOW), NOW) == policy.Verdict(
        Action.DROP, "expired")
    assert policy.verdict(job(), None, NOW) == policy.Verdict(Action.DROP, "notice unknown")


def test_a_superseded_publication_becomes_a_publication_of_the_new_version() -> None:
    verdict = policy.verdict(job(), notice(version=3, state=NoticeState.CORRECTED), NOW)
    assert verdict.action is Action.DROP and verdict.reason == "superseded by version 3"
    assert verdict.instead == job(EventKind.PUBLISHED, 3)


def test_a_superseded_correction_is_dropped_for_the_next_one() -> None:
    verdict = policy.verdict(job(EventKind.CORRECTED, 2), notice(version=3), NOW)
    assert (verdict.action, verdict.instead) == (Action.DROP, None)


def test_a_withdrawal_goes_even_after_the_end_date() -> None:
    gone = notice(state=NoticeState.WITHDRAWN, ends_at=NOW - timedelta(hours=1),
                  starts_at=NOW - timedelta(hours=2))
    assert policy.verdict(job(EventKind.WITHDRAWN), gone, NOW) == policy.SEND


def test_follow_up_after_a_send_the_notice_moved_on() -> None:
    assert policy.follow_up(job(), notice()) is None
    assert policy.follow_up(job(), notice(version=2)) == job(EventKind.CORRECTED, 2)
    assert policy.follow_up(job(), notice(state=NoticeState.WITHDRAWN)) == job(
        EventKind.WITHDRAWN, 1)
    assert policy.follow_up(job(EventKind.WITHDRAWN), notice(state=NoticeState.WITHDRAWN)) is None


def test_backoff_doubles_up_to_the_cap_and_retry_after_wins() -> None:
    assert [policy.backoff_delay(n, 2, 300) for n in range(1, 10)] == [
        2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert policy.backoff_delay(1, 2, 300, retry_after=30) == 30
    assert policy.backoff_delay(4, 2, 300, retry_after=3) == 16
    assert policy.backoff_delay(1, 2, 300, retry_after=900) == 900
    assert 1.6 <= policy.backoff_delay(1, 2, 300, jitter=0.2) <= 2
