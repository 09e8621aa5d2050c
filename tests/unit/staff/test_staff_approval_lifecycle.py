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


def test_a_correction_keeps_it_pending_and_every_writer_of_its_text_out_of_approving() -> None:
    corrected = lifecycle.correct(held(), NoticePatch(title="Tempête ce soir"), author="Bruno",
                                  now=NOW)
    assert corrected.state is NoticeState.PENDING_APPROVAL
    assert corrected.version == 2 and corrected.sent_versions == ()
    assert corrected.author == "Bruno" and corrected.content_authors == ("Anne", "Bruno")
    # Anne wrote the body, Bruno the title: neither may approve what waits; Claire may.
    for author in ("Anne", "Bruno"):
        with pytest.raises(lifecycle.OwnApproval):
            lifecycle.approve(corrected, approver=author, now=NOW)
    approved = lifecycle.approve(corrected, approver="Claire", now=NOW)
    assert (approved.approved_by, approved.approved_version) == ("Claire", 2)
    assert approved.content_authors == ()


def test_who_only_moves_its_dates_leaves_the_text_to_its_author() -> None:
    later = NOW + timedelta(days=1)
    moved = lifecycle.correct(held(), NoticePatch(publish_at=later), author="Bruno", now=NOW)
    assert moved.author == "Bruno" and moved.content_authors == ("Anne",)
    with pytest.raises(lifecycle.OwnApproval):
        lifecycle.approve(moved, approver="Anne", now=NOW)
    assert lifecycle.approve(moved, approver="Bruno", now=NOW).state is NoticeState.SCHEDULED


def test_a_notice_stored_before_content_authors_names_its_last_writer() -> None:
    old = held().model_copy(update={"content_authors": ()})
    with pytest.raises(lifecycle.OwnApproval):
        lifecycle.approve(old, approver="Anne", now=NOW)
    moved = lifecycle.correct(old, NoticePatch(ends_at=NOW + timedelta(days=2)),
                              author="Bruno", now=NOW)
    assert moved.content_authors == ("Anne",)


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
    # An approved alert's dates may still be corrected at once (the text stays approved).
    alert = published("alerte")
    fixed = lifecycle.correct(alert, NoticePatch(ends_at=NOW + timedelta(days=1)),
                              author="Anne", now=NOW, approval_for=("alerte",))
    assert fixed.state is NoticeState.CORRECTED
    assert [v.version for v in fixed.sent_versions] == [1, 2]


def approved_alert(**draft: object) -> Notice:
    notice = held(DRAFT.model_copy(update=draft))
    return lifecycle.approve(notice, approver="Bruno", now=NOW)


def test_an_approved_sent_alert_rewritten_is_a_correction_waiting_for_approval() -> None:
    alert = approved_alert()
    assert (alert.approved_by, alert.approved_version) == ("Bruno", 1)
    waiting = lifecycle.correct(alert, NoticePatch(body="Sortez."), author="Anne", now=NOW,
                                approval_for=("alerte",))
    assert waiting.state is NoticeState.PENDING_APPROVAL and waiting.version == 2
    assert waiting.content_authors == ("Anne",)
    # Not sent: the sent versions and the approval still describe version 1.
    assert [v.version for v in waiting.sent_versions] == [1]
    assert (waiting.approved_by, waiting.approved_version) == ("Bruno", 1)
    assert lifecycle.waits_on(waiting, alert)
    assert not lifecycle.waits_on(alert, alert)
    with pytest.raises(lifecycle.OwnApproval):
        lifecycle.approve(waiting, approver="Anne", now=NOW)
    later = NOW + timedelta(minutes=10)
    sent = lifecycle.approve(waiting, approver="Bruno", now=later)
    assert sent.state is NoticeState.CORRECTED and sent.body == "Sortez."
    assert [v.version for v in sent.sent_versions] == [1, 2]
    assert sent.published_at == alert.published_at and sent.approved_version == 2
    assert type(lifecycle.event_for(sent, later)).__name__ == "NoticeCorrected"


def test_a_sent_alert_waiting_for_its_correction_cannot_move_its_publication() -> None:
    waiting = lifecycle.correct(approved_alert(), NoticePatch(title="Tempête"), author="Anne",
                                now=NOW, approval_for=("alerte",))
    with pytest.raises(lifecycle.InvalidTimes) as refused:
        lifecycle.correct(waiting, NoticePatch(publish_at=NOW + timedelta(days=1)),
                          author="Anne", now=NOW, approval_for=("alerte",))
    assert refused.value.field == "publish_at"


def test_each_content_field_of_an_approved_alert_waits_and_so_does_leaving_the_category() -> None:
    alert = approved_alert()
    for patch in (NoticePatch(title="Autre"), NoticePatch(body="Autre texte."),
                  NoticePatch(category="information"),
                  NoticePatch(links=({"url": "https://example.org/"},)),
                  NoticePatch(attachments=({"name": "Arrêté",
                                            "url": "https://example.org/a.pdf"},))):
        corrected = lifecycle.correct(alert, patch, author="Anne", now=NOW,
                                      approval_for=("alerte",))
        assert corrected.state is NoticeState.PENDING_APPROVAL, patch


def test_an_approved_scheduled_alert_rewritten_waits_and_null_publish_at_sends_nothing() -> None:
    scheduled = approved_alert(publish_at=NOW + timedelta(hours=3))
    assert scheduled.state is NoticeState.SCHEDULED
    rewritten = lifecycle.correct(scheduled, NoticePatch(body="Sortez."), author="Anne",
                                  now=NOW, approval_for=("alerte",))
    assert rewritten.state is NoticeState.PENDING_APPROVAL
    assert rewritten.content_authors == ("Anne",)
    now = lifecycle.correct(rewritten, NoticePatch(publish_at=None), author="Anne", now=NOW,
                            approval_for=("alerte",))
    assert now.state is NoticeState.PENDING_APPROVAL and now.published_at is None
    # Its dates alone move without a new approval.
    moved = lifecycle.correct(scheduled, NoticePatch(publish_at=NOW + timedelta(hours=4)),
                              author="Anne", now=NOW, approval_for=("alerte",))
    assert moved.state is NoticeState.SCHEDULED
