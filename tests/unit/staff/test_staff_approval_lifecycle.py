"""Approval in a notice's life, as pure functions: held, approved, never by its author."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Notice, NoticeDraft, NoticePatch, NoticeState
from services.notices import lifecycle

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DRAFT = NoticeDraft(category="alerte", title="Tempête", body="Restez chez vous.")


def held(draft: NoticeDraft = DRAFT) -> Notice:
    return lifecycle.create(draft, notice_id="abcdef0123456789", commune="70299",
                            author="Anne", now=NOW, approval_required=True)


def test_a_notice_needing_approval_is_held_and_unsent() -> None:
    notice = held()
    assert notice.state is NoticeState.PENDING_APPROVAL
    assert notice.published_at is None and notice.sent_versions == ()
    assert not notice.is_current(NOW)
    assert notice.state_at(NOW + timedelta(days=400)) is NoticeState.PENDING_APPROVAL


def test_another_member_approves_it_and_it_goes_out_now() -> None:
    approved = lifecycle.approve(held(), approver="Bruno", now=NOW + timedelta(minutes=5))
    assert approved.state is NoticeState.PUBLISHED
    assert approved.approved_by == "Bruno"
    assert approved.published_at == NOW + timedelta(minutes=5)
    assert [v.version for v in approved.sent_versions] == [1]
    event = lifecycle.event_for(approved, NOW)
    assert type(event).__name__ == "NoticePublished"


def test_its_author_cannot_approve_it() -> None:
    with pytest.raises(lifecycle.OwnApproval):
        lifecycle.approve(held(), approver="Anne", now=NOW)


def test_only_a_pending_notice_is_approved() -> None:
    approved = lifecycle.approve(held(), approver="Bruno", now=NOW)
    with pytest.raises(lifecycle.LifecycleError):
        lifecycle.approve(approved, approver="Claire", now=NOW)


def test_approved_before_its_time_it_is_scheduled() -> None:
    later = NOW + timedelta(hours=3)
    notice = held(DRAFT.model_copy(update={"publish_at": later}))
    approved = lifecycle.approve(notice, approver="Bruno", now=NOW)
    assert approved.state is NoticeState.SCHEDULED and approved.published_at is None


def test_a_correction_keeps_it_pending_and_makes_its_corrector_the_author() -> None:
    corrected = lifecycle.correct(held(), NoticePatch(title="Tempête ce soir"), author="Bruno",
                                  now=NOW)
    assert corrected.state is NoticeState.PENDING_APPROVAL
    assert corrected.version == 2 and corrected.sent_versions == ()
    # Bruno wrote this version: Anne may now approve it, Bruno may not.
    with pytest.raises(lifecycle.OwnApproval):
        lifecycle.approve(corrected, approver="Bruno", now=NOW)
    assert lifecycle.approve(corrected, approver="Anne", now=NOW).approved_by == "Anne"


def test_its_publication_time_may_still_change_while_pending() -> None:
    later = NOW + timedelta(days=1)
    corrected = lifecycle.correct(held(), NoticePatch(publish_at=later), author="Anne", now=NOW)
    assert corrected.publish_at == later and corrected.state is NoticeState.PENDING_APPROVAL


def test_without_approval_required_nothing_changes() -> None:
    notice = lifecycle.create(DRAFT, notice_id="abcdef0123456789", commune="70299",
                              author="Anne", now=NOW)
    assert notice.state is NoticeState.PUBLISHED


def published(category: str = "information") -> Notice:
    draft = NoticeDraft(category=category, title=DRAFT.title, body=DRAFT.body)
    return lifecycle.create(draft, notice_id="abcdef0123456789", commune="70299",
                            author="Anne", now=NOW)


def test_approval_cannot_be_walked_around_by_correcting_the_category() -> None:
    # Sent as information, then made an alert: refused, the alert would go out unapproved.
    with pytest.raises(lifecycle.NeedsApproval) as refused:
        lifecycle.correct(published(), NoticePatch(category="alerte"), author="Anne", now=NOW,
                          approval_for=("alerte",))
    assert refused.value.field == "category"
    # Scheduled as information, then made an alert: it now waits for approval.
    later = NOW + timedelta(days=1)
    scheduled = lifecycle.create(NoticeDraft(category="information", title="Tempête",
                                             body="Restez chez vous.", publish_at=later),
                                 notice_id="abcdef0123456789", commune="70299",
                                 author="Anne", now=NOW)
    held_now = lifecycle.correct(scheduled, NoticePatch(category="alerte"), author="Anne",
                                 now=NOW, approval_for=("alerte",))
    assert held_now.state is NoticeState.PENDING_APPROVAL
    # An approved alert's text may still be corrected (its category does not change).
    alert = published("alerte")
    fixed = lifecycle.correct(alert, NoticePatch(body="Restez à l'abri."), author="Anne",
                              now=NOW, approval_for=("alerte",))
    assert fixed.state is NoticeState.CORRECTED
