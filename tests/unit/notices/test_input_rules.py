"""What staff may send (strict) against what a stored notice may hold (read as written)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import Notice, NoticeDraft, NoticePatch, NoticeState
from services.notices import lifecycle

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BASE = {"category": "travaux", "title": "Route fermée", "body": "Du 2 au 4."}


def draft(**changes: object) -> NoticeDraft:
    return NoticeDraft.model_validate(BASE | changes)


def test_a_stored_notice_with_text_the_door_now_refuses_is_still_readable() -> None:
    stored = {
        "id": "aaaaaaaaaaaaaaaa", "commune": "70299", "category": "information",
        "title": "\u200b", "body": "x", "author": "S", "version": 1, "state": "published",
        "created_at": "2026-01-01T10:00:00+01:00", "updated_at": "2026-01-01T10:00:00+01:00",
        "published_at": "2026-01-01T10:00:00+01:00",
        "starts_at": "1026-12-01T10:00:00+00:09:21",  # written before dates were checked
        "attachments": [{"name": "a", "url": "https://a.fr/a", "media_type": ""}],
    }
    notice = Notice.model_validate(stored)
    assert notice.starts_at is not None and notice.starts_at.year == 1026
    with pytest.raises(ValidationError):
        draft(title="\u200b")


def test_the_repeated_hour_compares_by_instant_not_by_wall_clock() -> None:
    first, second = "2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00"
    window = draft(starts_at=first, ends_at=second)
    assert window.ends_at is not None and window.starts_at is not None
    assert window.ends_at - window.starts_at == timedelta(hours=1)
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        draft(starts_at=second, ends_at=first)


def test_a_scheduled_notice_patched_to_publish_now_goes_out_as_its_first_version() -> None:
    scheduled = lifecycle.create(draft(publish_at=NOW + timedelta(days=1)),
                                 notice_id="aaaaaaaaaaaaaaaa", commune="70299", author="S", now=NOW)
    retitled = lifecycle.correct(scheduled, NoticePatch(title="Route rouverte"), author="S",
                                 now=NOW)
    assert retitled.state is NoticeState.SCHEDULED and retitled.sent_versions == ()
    now = lifecycle.correct(retitled, NoticePatch.model_validate({"publish_at": None}),
                            author="S", now=NOW)
    assert now.state is NoticeState.PUBLISHED and now.published_at == NOW
    assert [v.version for v in now.sent_versions] == [3]
    assert lifecycle.event_for(now, NOW).kind == "published", "the first anyone sees"
    later = lifecycle.correct(now, NoticePatch(body="Jusqu'au 5."), author="S", now=NOW)
    assert lifecycle.event_for(later, NOW).kind == "corrected"
    assert [v.version for v in later.sent_versions] == [3, 4]


def test_a_patch_that_changes_nothing_is_the_same_notice() -> None:
    notice = lifecycle.create(draft(), notice_id="aaaaaaaaaaaaaaaa", commune="70299",
                              author="S", now=NOW)
    for patch in (NoticePatch(), NoticePatch(title="Route fermée"), NoticePatch(links=())):
        assert lifecycle.correct(notice, patch, author="Autre", now=NOW) is notice


def test_publish_at_of_a_published_notice_cannot_change() -> None:
    notice = lifecycle.create(draft(), notice_id="aaaaaaaaaaaaaaaa", commune="70299",
                              author="S", now=NOW)
    with pytest.raises(lifecycle.InvalidTimes) as caught:
        lifecycle.correct(notice, NoticePatch(publish_at=NOW + timedelta(days=1)), author="S",
                          now=NOW)
    assert caught.value.field == "publish_at"
