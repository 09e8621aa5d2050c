"""A notice's life as pure functions: draft -> published or scheduled -> corrected -> withdrawn.

No I/O here: the API turns each result into an event on the NOTICES stream.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from schemas import (
    Notice,
    NoticeCorrected,
    NoticeDraft,
    NoticePatch,
    NoticePublished,
    NoticeState,
    NoticeWithdrawn,
    SentVersion,
)


class LifecycleError(Exception):
    """A step that the notice's state does not allow (e.g. correcting a withdrawn notice)."""


class InvalidTimes(LifecycleError):
    """A date that makes no sense at this moment (a notice that would end before it is seen)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")
        self.message = message


def _check_times(notice: Notice, now: datetime, given: set[str]) -> None:
    """Refuse a notice that would end before anyone sees it; only dates just given are checked."""
    if "ends_at" in given and notice.ends_at is not None and notice.ends_at <= now:
        raise InvalidTimes("ends_at", "ends_at is in the past: to end a notice now, withdraw it")
    if (notice.state is NoticeState.SCHEDULED and notice.publish_at is not None
            and notice.ends_at is not None and notice.ends_at <= notice.publish_at):
        raise InvalidTimes("ends_at", "ends_at must be after publish_at: the notice would end "
                           "unseen")


def new_notice_id() -> str:
    # Lowercase alphanumerics only: the id is a NATS subject token and a URL segment.
    return secrets.token_hex(8)


def create(
    draft: NoticeDraft, *, notice_id: str, commune: str, author: str, now: datetime,
    approval_required: bool = False,
) -> Notice:
    """The notice a draft becomes: pending approval if the commune requires it for its
    category, else scheduled if `publish_at` is in the future, else published."""
    scheduled = draft.publish_at is not None and draft.publish_at > now
    held = scheduled or approval_required
    if approval_required:
        state = NoticeState.PENDING_APPROVAL
    else:
        state = NoticeState.SCHEDULED if scheduled else NoticeState.PUBLISHED
    notice = Notice(
        id=notice_id,
        commune=commune,
        author=author,
        version=1,
        state=state,
        created_at=now,
        updated_at=now,
        published_at=None if held else now,
        sent_versions=() if held else (SentVersion(version=1, sent_at=now),),
        content_authors=(author,) if approval_required else (),
        **draft.model_dump(),
    )
    _check_times(notice, now, set(draft.model_fields_set))
    return notice


def _sent_now(notice: Notice, now: datetime) -> Notice:
    """A scheduled notice (at whatever version it has reached) goes out: its first send."""
    return notice.model_copy(update={
        "state": NoticeState.PUBLISHED, "published_at": now,
        "sent_versions": (SentVersion(version=notice.version, sent_at=now),),
    })


class OwnApproval(LifecycleError):
    """Whoever wrote any of the text waiting for approval may not approve it: a second pair
    of eyes reads every word that goes out."""


def waiting_authors(notice: Notice) -> tuple[str, ...]:
    """Who wrote the text waiting for approval (none of them may approve it).

    A notice stored before `content_authors` existed names its last writer only.
    """
    return notice.content_authors or (notice.author,)


def is_sent(notice: Notice) -> bool:
    """Sent to the channels at least once: a change to it is a correction of what they have."""
    return notice.published_at is not None


def waits_on(held: Notice, sent: Notice) -> bool:
    """Whether `held`, kept aside under the id of the sent notice `sent`, is a correction of
    it waiting for approval; an older or equal version is what a crash between sending and
    unscheduling left behind, and a withdrawal ends whatever waited."""
    return (held.commune == sent.commune and held.state is NoticeState.PENDING_APPROVAL
            and held.version > sent.version and sent.state is not NoticeState.WITHDRAWN)


def approve(notice: Notice, *, approver: str, now: datetime) -> Notice:
    """The approved notice: scheduled if its `publish_at` is still ahead, else sent now.

    A correction waiting on a notice already sent goes out at once as its next version.
    """
    if notice.state is not NoticeState.PENDING_APPROVAL:
        raise LifecycleError(f"notice {notice.id} is {notice.state}, not pending approval")
    if approver in waiting_authors(notice):
        raise OwnApproval("who wrote the text waiting for approval cannot approve it")
    approved = notice.model_copy(update={
        "approved_by": approver, "approved_version": notice.version, "content_authors": (),
        "updated_at": now})
    if is_sent(notice):
        sent = (*notice.sent_versions, SentVersion(version=notice.version, sent_at=now))
        return approved.model_copy(update={"state": NoticeState.CORRECTED,
                                           "sent_versions": sent})
    if notice.publish_at is not None and notice.publish_at > now:
        return approved.model_copy(update={"state": NoticeState.SCHEDULED})
    return _sent_now(approved, now)


def publish_due(notice: Notice, now: datetime) -> NoticePublished:
    """A scheduled notice whose time has come goes out."""
    if notice.state is not NoticeState.SCHEDULED:
        raise LifecycleError(f"notice {notice.id} is {notice.state}, not scheduled")
    return NoticePublished(occurred_at=now, notice=_sent_now(notice, now))


# What a correction may not change, and what it does not count as a change.
_BOOKKEEPING = ("version", "state", "updated_at", "author")
# What a second member of staff approves: a change to any of these waits for approval again
# (dates only move when the same text goes out).
CONTENT = frozenset({"category", "title", "body", "links", "attachments"})


NEEDS_APPROVAL = ("the commune has this category approved by a second member of staff: "
                  "publish it as a new notice")


class NeedsApproval(InvalidTimes):
    """A sent notice moved into a category the commune approves first (a way around it)."""

    def __init__(self) -> None:
        super().__init__("category", NEEDS_APPROVAL)


def correct(notice: Notice, patch: NoticePatch, *, author: str, now: datetime,
            approval_for: tuple[str, ...] = ()) -> Notice:
    """A new version with the patch applied, validated again as a whole.

    Returns `notice` itself when the patch changes nothing (no new version). A scheduled
    notice whose `publish_at` is set to null or to a time already passed goes out now.

    Approval binds to the text: a change of content (CONTENT) to a notice whose category,
    before or after, is in `approval_for` (the commune's) waits for another member's
    approval. Unsent, the notice goes back to pending approval; sent, the result is a
    correction pending approval, which the caller keeps aside: what was sent stays as it
    was until it is approved. A sent notice moved into such a category is refused
    (NeedsApproval): its first send as an alert must be approved as a new notice.
    `notice` may itself be a correction waiting: the change joins it.
    """
    if notice.state is NoticeState.WITHDRAWN:
        raise LifecycleError("a withdrawn notice cannot be corrected")
    current = notice.model_dump()
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items()
               if current[k] != v}
    if not changes:
        return notice
    sent = is_sent(notice)
    if "publish_at" in changes and sent:
        raise InvalidTimes("publish_at", "publish_at cannot change: the notice is already "
                           "published")
    state = notice.state
    if state is NoticeState.PUBLISHED:
        state = NoticeState.CORRECTED
    data = current | changes | {
        "version": notice.version + 1,
        "state": state,
        "updated_at": now,
        "author": author,
    }
    # Validating the whole notice again catches a window made inverted by the patch.
    corrected = Notice.model_validate(data)
    _check_times(corrected, now, set(changes))
    moved_in = (corrected.category is not notice.category
                and corrected.category.value in approval_for)
    if moved_in and sent:
        raise NeedsApproval()
    rewritten = not CONTENT.isdisjoint(changes)
    if notice.state is NoticeState.PROPOSED:
        # An official alert's draft edited before it is published: still only proposed
        # (approval rules apply when it is published).
        return corrected
    if notice.state is NoticeState.PENDING_APPROVAL:
        # Still waits; whoever added to its text is one more who may not approve it, and
        # whoever only moved its dates is not (the text is not theirs).
        authors = waiting_authors(notice)
        if rewritten and author not in authors:
            authors = (*authors, author)
        return corrected.model_copy(update={"content_authors": authors})
    if rewritten and (notice.category.value in approval_for
                      or corrected.category.value in approval_for):
        return corrected.model_copy(update={"state": NoticeState.PENDING_APPROVAL,
                                            "content_authors": (author,)})
    if corrected.state is NoticeState.SCHEDULED:
        if corrected.publish_at is None or corrected.publish_at <= now:
            return _sent_now(corrected, now)
        return corrected
    sent_versions = (*notice.sent_versions,
                     SentVersion(version=corrected.version, sent_at=now))
    return corrected.model_copy(update={"sent_versions": sent_versions})


def withdraw(notice: Notice, *, author: str, now: datetime) -> NoticeWithdrawn:
    if notice.state is NoticeState.WITHDRAWN:
        raise LifecycleError("the notice is already withdrawn")
    withdrawn = notice.model_copy(
        update={"state": NoticeState.WITHDRAWN, "withdrawn_at": now, "updated_at": now,
                "author": author}
    )
    return NoticeWithdrawn(occurred_at=now, notice=withdrawn)


def event_for(notice: Notice, now: datetime) -> NoticePublished | NoticeCorrected:
    """The event that announces a (re)written notice that is not scheduled.

    The first version sent is a publication (CAP Alert) whatever its number: a notice
    corrected while scheduled is seen first at version 2 or more.
    """
    first_send = len(notice.sent_versions) == 1 if notice.sent_versions else notice.version == 1
    if first_send:
        return NoticePublished(occurred_at=now, notice=notice)
    return NoticeCorrected(occurred_at=now, notice=notice)
