"""A notice's life, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import NoticeDraft, NoticePatch, NoticeState
from services.notices import lifecycle
from services.notices.view import NoticeView

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def draft(**changes: object) -> NoticeDraft:
    base = {"category": "travaux", "title": "Route fermée", "body": "Du 2 au 4."}
    return NoticeDraft.model_validate(base | changes)


def test_a_draft_without_publish_at_is_published_at_once() -> None:
    n = lifecycle.create(draft(), notice_id="aaaaaaaaaaaaaaaa", commune="70299",
                         author="S", now=NOW)
    assert n.state is NoticeState.PUBLISHED and n.published_at == NOW and n.version == 1


def test_a_future_publish_at_schedules_and_publish_due_releases_it() -> None:
    later = NOW + timedelta(hours=1)
    n = lifecycle.create(draft(publish_at=later), notice_id="aaaaaaaaaaaaaaaa",
                         commune="70299", author="S", now=NOW)
    assert n.state is NoticeState.SCHEDULED and n.published_at is None
    event = lifecycle.publish_due(n, later)
    assert event.kind == "published" and event.notice.published_at == later


def test_a_correction_is_a_new_version_and_keeps_what_it_does_not_change() -> None:
    n = lifecycle.create(draft(), notice_id="aaaaaaaaaaaaaaaa", commune="70299",
                         author="S", now=NOW)
    fixed = lifecycle.correct(n, NoticePatch(title="Route rouverte"), author="M",
                              now=NOW + timedelta(minutes=1))
    assert (fixed.version, fixed.state, fixed.title, fixed.body, fixed.author) == (
        2, NoticeState.CORRECTED, "Route rouverte", "Du 2 au 4.", "M")
    assert lifecycle.event_for(fixed, NOW).kind == "corrected"


def test_a_correction_cannot_invert_the_window_or_touch_a_withdrawn_notice() -> None:
    n = lifecycle.create(draft(starts_at=NOW, ends_at=NOW + timedelta(days=1)),
                         notice_id="aaaaaaaaaaaaaaaa", commune="70299", author="S", now=NOW)
    with pytest.raises(ValidationError):
        lifecycle.correct(n, NoticePatch(ends_at=NOW - timedelta(days=1)), author="S", now=NOW)
    gone = lifecycle.withdraw(n, author="S", now=NOW).notice
    with pytest.raises(lifecycle.LifecycleError):
        lifecycle.correct(gone, NoticePatch(title="x"), author="S", now=NOW)
    with pytest.raises(lifecycle.LifecycleError):
        lifecycle.withdraw(gone, author="S", now=NOW)


def test_the_view_keeps_the_latest_event_whatever_the_order_it_hears_them() -> None:
    n = lifecycle.create(draft(), notice_id="aaaaaaaaaaaaaaaa", commune="70299",
                         author="S", now=NOW)
    published = lifecycle.event_for(n, NOW)
    withdrawn = lifecycle.withdraw(n, author="S", now=NOW)
    view = NoticeView()
    view.apply(2, withdrawn)
    view.apply(1, published)  # our own publish ack racing the feed
    found = view.get("70299", n.id)
    assert found is not None and found[1].state is NoticeState.WITHDRAWN
    assert view.current("70299", NOW) == []
