"""The front door's application layer: publish, correct, withdraw and approve.

Plain functions taking the member of staff and the draft (or the changes), raising ApiError,
whose kind (errors.py) is the one table of status and message. The JSON routes (api.py,
staff_api.py), the staff pages and the held withdrawals (undo.py) all call these, so a
script and a browser do exactly the same thing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from schemas import Commune, Notice, NoticeDraft, NoticePatch, NoticeState, NoticeWithdrawn
from schemas.commune import INSEE_RE
from services.notices import errors, lifecycle
from services.notices.archive import ArchiveIndex
from services.notices.caching import RenderCache
from services.notices.errors import ApiError
from services.notices.settings import NoticesSettings
from services.notices.store import ConcurrentChange, NatsStore, StaffMember

# What lifecycle.new_notice_id makes; anything else cannot be a notice (and must not reach
# NATS as a subject token: `*`, `>` or a space would be a wildcard or an invalid subject).
NOTICE_ID_RE = re.compile(r"^[a-z0-9]{8,32}$")

# A write that timed out reached the server, whose answer did not come back: it may be stored.
UNCONFIRMED = (NatsTimeoutError, TimeoutError)


@dataclass
class Context:
    """What every route needs; built once by app.py, replaced by tests."""

    store: NatsStore
    settings: NoticesSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    cache: RenderCache = field(default_factory=RenderCache)
    # Each registered commune's archive index, with the view's stamp and until when it holds.
    archives: dict[str, tuple[int, datetime | None, ArchiveIndex]] = field(default_factory=dict)


D = TypeVar("D", NoticeDraft, NoticePatch)


class Attach(Protocol):
    """Attachment ids in a draft replaced by the attachments they name (ApiError if unknown):
    attachments.Resolver, given by the caller, which knows where the bucket is opened."""

    async def __call__(self, commune: str, draft: D, /) -> D: ...


async def registered_commune(c: Context, insee: str) -> Commune:
    if not INSEE_RE.match(insee):
        raise ApiError(errors.INSEE_MALFORMED, insee=insee,
                       fields=[{"field": "insee", "message": "not an INSEE code"}])
    commune = await c.store.commune_registry.get(insee)
    if commune is None:
        raise ApiError(errors.COMMUNE_UNKNOWN, insee=insee,
                       fields=[{"field": "insee", "message": "commune not registered"}])
    structlog.contextvars.bind_contextvars(commune=insee)
    return commune


async def staff_commune(c: Context, insee: str, member: StaffMember) -> Commune:
    commune = await registered_commune(c, insee)
    if insee not in member.communes:
        raise ApiError(errors.COMMUNE_FORBIDDEN)
    structlog.contextvars.bind_contextvars(staff=member.id)
    return commune


def on_stream(c: Context, insee: str, notice_id: str) -> tuple[int, Notice] | None:
    """The notice as the stream has it; an id that cannot exist is simply not found."""
    if not NOTICE_ID_RE.match(notice_id):
        return None
    return c.store.get(insee, notice_id)


async def stored(c: Context, insee: str, notice_id: str) -> Notice | None:
    """The notice if it is on the stream or in the schedule, else None."""
    if not NOTICE_ID_RE.match(notice_id):
        return None
    found = c.store.get(insee, notice_id)
    if found is not None:
        return found[1]
    scheduled = await c.store.scheduled(notice_id)
    return scheduled if scheduled is not None and scheduled.commune == insee else None


async def find(c: Context, insee: str, notice_id: str) -> tuple[int, Notice]:
    """The notice and the stream sequence it was read at (0: scheduled, not on the stream yet)."""
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    found = on_stream(c, insee, notice_id)
    if found is not None:
        return found
    scheduled = await stored(c, insee, notice_id)
    if scheduled is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    return 0, scheduled


async def waiting_correction(c: Context, sent: Notice) -> Notice | None:
    """The correction of a sent notice that waits for approval, if there is one: kept in
    the schedule bucket under the notice's id, off the stream, so no channel sees it."""
    if sent.state is NoticeState.WITHDRAWN:
        return None
    held = await c.store.scheduled(sent.id)
    return held if held is not None and lifecycle.waits_on(held, sent) else None


async def find_latest(c: Context, insee: str, notice_id: str
                      ) -> tuple[int, Notice, Notice | None]:
    """`find`, and the correction waiting for approval on the notice found, if any."""
    seq, notice = await find(c, insee, notice_id)
    return seq, notice, await waiting_correction(c, notice) if seq else None


def refuse_broadcast_copy(notice: Notice) -> None:
    """A commune's copy of a group publication changes for the whole group only (groups.py)."""
    if notice.broadcast_id is not None:
        raise ApiError(errors.BROADCAST_COPY, group=notice.group or "?",
                       broadcast_id=notice.broadcast_id)


def check_if_match(if_match: str | None, *current: Notice) -> None:
    """RFC 9110 If-Match: refuse (412) a change made from a version that is no longer current
    (any of `current`: a withdrawal may be made from the version sent or the one waiting)."""
    if if_match is None:
        return
    tags = {t.strip() for t in if_match.split(",")}
    if "*" in tags:
        return
    # The version is what a correction is made from; a derived state (expired) does not count.
    versions = {t.removeprefix("W/").strip('"').split("-")[0] for t in tags}
    if not versions & {str(n.version) for n in current}:
        raise ApiError(errors.NOTICE_MOVED_ON)


def invalid(error: ValidationError | lifecycle.InvalidTimes) -> ApiError:
    """A 422 naming each field, for errors found past the request's own validation."""
    if isinstance(error, lifecycle.InvalidTimes):
        fields = [{"field": error.field, "message": error.message}]
    else:
        fields = errors.field_errors(error.errors())
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(errors.INVALID, message=message, fields=fields)


async def save(c: Context, notice: Notice, read_seq: int, now: datetime,
               was_scheduled: bool = False) -> Notice:
    """Store a new or corrected notice: on the stream, or in the schedule until its time
    (or until approved: a correction of a sent notice waits there too, beside it)."""
    try:
        if notice.state in (NoticeState.SCHEDULED, NoticeState.PENDING_APPROVAL,
                            NoticeState.PROPOSED):
            await c.store.schedule(notice)
            return notice
        await c.store.append(lifecycle.event_for(notice, now), read_seq)
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error
    except UNCONFIRMED as error:
        raise ApiError(errors.BUS_TIMEOUT) from error
    if was_scheduled:
        await c.store.unschedule(notice.id)
    return notice


async def store_withdrawal(c: Context, event: NoticeWithdrawn, seq: int,
                           waiting: bool) -> None:
    """A withdrawal on the stream, after `seq` (0: never sent); what waits goes with it."""
    try:
        # A scheduled notice is withdrawn on the stream too, so its record stays.
        await c.store.append(event, seq)
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error
    except UNCONFIRMED as error:
        raise ApiError(errors.BUS_TIMEOUT) from error
    if seq == 0 or waiting:
        # Unsent, or with a correction waiting: what waits goes with the withdrawal.
        await c.store.unschedule(event.notice.id)


# -- publish ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    notice: Notice
    replayed: bool = False  # an Idempotency-Key seen before: what the first attempt stored


async def publish(c: Context, member: StaffMember, insee: str, draft: NoticeDraft,
                  attach: Attach, idempotency_key: str | None = None) -> Published:
    """A new notice, published, scheduled or held for approval as the commune requires."""
    commune = await staff_commune(c, insee, member)
    approval = draft.category.value in commune.settings.approval_required_for
    now = c.clock()
    notice_id = lifecycle.new_notice_id()
    if idempotency_key:
        scoped_key = f"{member.id}:{insee}:{idempotency_key}"
        key = hashlib.sha256(scoped_key.encode()).hexdigest()
        request_hash = hashlib.sha256(draft.model_dump_json().encode()).hexdigest()
        held = await c.store.idempotency.claim(key, {"notice_id": notice_id,
                                                     "request": request_hash})
        if held is not None:
            if held["request"] != request_hash:
                raise ApiError(errors.IDEMPOTENCY_KEY_REUSED)
            notice_id = held["notice_id"]
            if (known := await stored(c, insee, notice_id)) is not None:
                return Published(known, replayed=True)
            # The first attempt has not stored it (still in flight, or it crashed): go on
            # with its id; Nats-Msg-Id and the expected sequence keep it to one notice.
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    draft = await attach(insee, draft)
    try:
        notice = lifecycle.create(draft, notice_id=notice_id, commune=insee,
                                  author=member.name, now=now, approval_required=approval)
    except lifecycle.InvalidTimes as error:
        raise invalid(error) from error
    try:
        notice = await save(c, notice, 0, now)
    except ApiError as error:
        # A retry with the same key that lost the race: answer with what the first stored.
        lost_race = error.kind is errors.NOTICE_CHANGED and idempotency_key
        if not lost_race or (first := c.store.get(insee, notice_id)) is None:
            raise
        notice = first[1]
    structlog.get_logger().info("notice_created", state=notice.state, category=notice.category)
    return Published(notice)


# -- correct ----------------------------------------------------------------------------------

async def corrected_version(
    c: Context, member: StaffMember, insee: str, notice_id: str, patch: NoticePatch,
    attach: Attach, if_match: str | None = None,
) -> tuple[int, Notice, Notice]:
    """(its stream sequence, the latest version, the version the patch makes), nothing stored:
    the correction itself, and what the staff pages show before it is confirmed."""
    commune = await staff_commune(c, insee, member)
    now = c.clock()
    seq, sent, waiting = await find_latest(c, insee, notice_id)
    # A correction waiting for approval is the latest version: changes join it.
    notice = waiting or sent
    refuse_broadcast_copy(notice)
    check_if_match(if_match, notice)
    patch = await attach(insee, patch)
    try:
        corrected = lifecycle.correct(notice, patch, author=member.name, now=now,
                                      approval_for=commune.settings.approval_required_for)
    except lifecycle.InvalidTimes as error:
        raise invalid(error) from error
    except lifecycle.LifecycleError as error:
        kind = errors.NOTICE_WITHDRAWN if notice.state is NoticeState.WITHDRAWN else errors.INVALID
        raise ApiError(kind, message=str(error)) from error
    except ValidationError as error:
        raise invalid(error) from error
    return seq, notice, corrected


async def correct(c: Context, member: StaffMember, insee: str, notice_id: str,
                  patch: NoticePatch, attach: Attach, if_match: str | None = None) -> Notice:
    """The notice's next version, stored (or the notice itself if the patch changes nothing);
    pending approval if its text changed and the commune requires it."""
    now = c.clock()
    seq, notice, corrected = await corrected_version(c, member, insee, notice_id, patch,
                                                     attach, if_match)
    if corrected is notice:  # nothing changed: no new version, nothing sent
        return notice
    corrected = await save(c, corrected, seq, now, was_scheduled=seq == 0)
    structlog.get_logger().info("notice_corrected", version=corrected.version,
                                state=corrected.state)
    return corrected


# -- withdraw ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal checked, not stored: the staff pages show it, or hold it a minute."""

    seq: int
    current: Notice  # as sent (or scheduled): its version is what the pages confirm from
    waiting: Notice | None
    event: NoticeWithdrawn


async def withdrawal(c: Context, member: StaffMember, insee: str, notice_id: str,
                     if_match: str | None = None) -> Withdrawal:
    """The withdrawal the member would make now, with every check made, nothing stored."""
    await staff_commune(c, insee, member)
    seq, notice, waiting = await find_latest(c, insee, notice_id)
    refuse_broadcast_copy(notice)
    check_if_match(if_match, notice, *([waiting] if waiting else []))
    try:
        event: NoticeWithdrawn = lifecycle.withdraw(notice, author=member.name, now=c.clock())
    except lifecycle.LifecycleError as error:
        raise ApiError(errors.NOTICE_WITHDRAWN) from error
    return Withdrawal(seq, notice, waiting, event)


async def withdraw(c: Context, member: StaffMember, insee: str, notice_id: str,
                   if_match: str | None = None) -> Notice:
    """The notice withdrawn, on the stream; a correction waiting on it goes too."""
    checked = await withdrawal(c, member, insee, notice_id, if_match)
    await store_withdrawal(c, checked.event, checked.seq, checked.waiting is not None)
    structlog.get_logger().info("notice_withdrawn", version=checked.current.version)
    return checked.event.notice


# -- approve ----------------------------------------------------------------------------------

async def approve(c: Context, member: StaffMember, insee: str, notice_id: str) -> Notice:
    """Approve a pending notice: it goes out now, or at its publish_at if still ahead; a
    sent notice's correction waiting for approval goes out now as its next version."""
    await staff_commune(c, insee, member)
    now = c.clock()
    seq, sent, waiting = await find_latest(c, insee, notice_id)
    # A sent notice's correction waiting for approval is what is approved, and goes out.
    notice = waiting or sent
    try:
        approved = lifecycle.approve(notice, approver=member.name, now=now)
    except lifecycle.OwnApproval as error:
        raise ApiError(errors.OWN_APPROVAL) from error
    except lifecycle.LifecycleError as error:
        kind = errors.NOTICE_WITHDRAWN if notice.state is NoticeState.WITHDRAWN \
            else errors.NOTICE_NOT_PENDING
        raise ApiError(kind) from error
    try:
        if approved.state is NoticeState.SCHEDULED:
            await c.store.schedule(approved)
        else:
            await c.store.append(lifecycle.event_for(approved, now), seq)
            await c.store.unschedule(notice_id)
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error
    except UNCONFIRMED as error:
        raise ApiError(errors.BUS_TIMEOUT) from error
    structlog.get_logger().info("notice_approved", notice_id=notice_id, state=approved.state)
    return approved
