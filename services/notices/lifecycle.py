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
)


class LifecycleError(Exception):
    """A step that the notice's state does not allow (e.g. correcting a withdrawn notice)."""


def new_notice_id() -> str:
    # Lowercase alphanumerics only: the id is a NATS subject token and a URL segment.
    return secrets.token_hex(8)


def create(
    draft: NoticeDraft, *, notice_id: str, commune: str, author: str, now: datetime
) -> Notice:
    """The notice a draft becomes: scheduled if `publish_at` is in the future, else published."""
    scheduled = draft.publish_at is not None and draft.publish_at > now
    return Notice(
        id=notice_id,
        commune=commune,
        author=author,
        version=1,
        state=NoticeState.SCHEDULED if scheduled else NoticeState.PUBLISHED,
        created_at=now,
        updated_at=now,
        published_at=None if scheduled else now,
        **draft.model_dump(),
    )


def publish_due(notice: Notice, now: datetime) -> NoticePublished:
    """A scheduled notice whose time has come goes out."""
    if notice.state is not NoticeState.SCHEDULED:
        raise LifecycleError(f"notice {notice.id} is {notice.state}, not scheduled")
    published = notice.model_copy(update={"state": NoticeState.PUBLISHED, "published_at": now})
    return NoticePublished(occurred_at=now, notice=published)


def correct(notice: Notice, patch: NoticePatch, *, author: str, now: datetime) -> Notice:
    """A new version with the patch applied; validated again as a whole."""
    if notice.state is NoticeState.WITHDRAWN:
        raise LifecycleError("a withdrawn notice cannot be corrected")
    changes = patch.model_dump(exclude_unset=True)
    if "publish_at" in changes and notice.state is not NoticeState.SCHEDULED:
        raise LifecycleError("publish_at cannot change: the notice is already published")
    state = notice.state
    if state is NoticeState.PUBLISHED:
        state = NoticeState.CORRECTED
    data = notice.model_dump() | changes | {
        "version": notice.version + 1,
        "state": state,
        "updated_at": now,
        "author": author,
    }
    # Validating the whole notice again catches a window made inverted by the patch.
    return Notice.model_validate(data)


def withdraw(notice: Notice, *, author: str, now: datetime) -> NoticeWithdrawn:
    if notice.state is NoticeState.WITHDRAWN:
        raise LifecycleError("the notice is already withdrawn")
    withdrawn = notice.model_copy(
        update={"state": NoticeState.WITHDRAWN, "withdrawn_at": now, "updated_at": now,
                "author": author}
    )
    return NoticeWithdrawn(occurred_at=now, notice=withdrawn)


def event_for(notice: Notice, now: datetime) -> NoticePublished | NoticeCorrected:
    """The event that announces a (re)written notice that is not scheduled."""
    if notice.version == 1:
        return NoticePublished(occurred_at=now, notice=notice)
    return NoticeCorrected(occurred_at=now, notice=notice)
