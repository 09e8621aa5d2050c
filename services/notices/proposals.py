"""Publishing what an official source proposed (capfeed.py): one member of staff, one click.

`POST /api/v1/communes/{insee}/notices/{id}/publish` publishes a proposed draft (state
`proposed`) as the member's own publication, or applies the correction or withdrawal the
source proposed for a notice already published. The commune's approval rules apply as to
any publication: an alert the commune approves first waits for a second member.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response
from pydantic import ValidationError

from schemas import Notice, NoticeDraft, NoticePatch, NoticeState
from services.notices import errors, lifecycle
from services.notices.api import Ctx, Staff, written
from services.notices.application import (
    UNCONFIRMED,
    Context,
    find_latest,
    invalid,
    save,
    staff_commune,
    stored,
)
from services.notices.capfeed import CapRecords, Proposal
from services.notices.errors import ApiError
from services.notices.notices import ConcurrentChange
from services.notices.store import StaffMember

router = APIRouter(prefix="/api/v1")


@router.post("/communes/{insee}/notices/{notice_id}/publish", response_model=Notice,
             summary="Publish an official alert proposed (or the correction or withdrawal "
             "its source proposes)",
             responses={202: {"description": "Held for a second member's approval: the "
                              "commune requires it for this category"},
                        409: {"description": "Nothing proposed for this notice"}})
async def publish_proposed(c: Ctx, member: Staff, insee: str, notice_id: str,
                           response: Response) -> Notice:
    published = await publish(c, member, insee, notice_id)
    return written(response, published, c.clock())


async def publish(c: Context, member: StaffMember, insee: str, notice_id: str) -> Notice:
    """The proposed notice published, or its source's correction or withdrawal applied."""
    commune = await staff_commune(c, insee, member)
    approval_for = commune.settings.approval_required_for
    records = CapRecords(c.store.cap_kv)
    known = await stored(c, insee, notice_id)
    if known is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    if known.state is NoticeState.PROPOSED:
        return await _publish_draft(c, member, known, approval_for)
    proposal = await records.proposal(notice_id)
    if proposal is None or proposal.commune != insee:
        raise ApiError(errors.NOT_PROPOSED)
    if proposal.kind == "withdraw":
        result = await _apply_withdrawal(c, member, insee, notice_id)
    else:
        result = await _apply_correction(c, member, insee, notice_id, proposal, approval_for)
    await records.drop_proposal(notice_id)
    structlog.get_logger().info("proposal_applied", kind=proposal.kind, state=result.state)
    return result


async def _publish_draft(c: Context, member: StaffMember, known: Notice,
                         approval_for: tuple[str, ...]) -> Notice:
    now = c.clock()
    try:
        draft = NoticeDraft.model_validate({
            "category": known.category, "title": known.title, "body": known.body,
            "starts_at": known.starts_at, "ends_at": known.ends_at,
            "links": [link.model_dump(mode="json") for link in known.links]})
        notice = lifecycle.create(draft, notice_id=known.id, commune=known.commune,
                                  author=member.name, now=now,
                                  approval_required=known.category.value in approval_for)
    except (ValidationError, lifecycle.InvalidTimes) as error:
        raise invalid(error) from error
    notice = notice.model_copy(update={"cap_identifier": known.cap_identifier})
    notice = await save(c, notice, 0, now, was_scheduled=True)
    structlog.get_logger().info("proposal_published", state=notice.state)
    return notice


async def _apply_withdrawal(c: Context, member: StaffMember, insee: str,
                            notice_id: str) -> Notice:
    seq, sent, waiting = await find_latest(c, insee, notice_id)
    try:
        event = lifecycle.withdraw(sent, author=member.name, now=c.clock())
        await c.store.append(event, seq)
    except lifecycle.LifecycleError as error:
        raise ApiError(errors.NOTICE_WITHDRAWN) from error
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error
    except UNCONFIRMED as error:
        raise ApiError(errors.BUS_TIMEOUT) from error
    if waiting is not None:
        await c.store.unschedule(notice_id)
    return event.notice


async def _apply_correction(c: Context, member: StaffMember, insee: str, notice_id: str,
                            proposal: Proposal, approval_for: tuple[str, ...]) -> Notice:
    now = c.clock()
    seq, sent, waiting = await find_latest(c, insee, notice_id)
    fields = {k: v for k, v in (("title", proposal.title), ("body", proposal.body),
                                ("category", proposal.category),
                                ("ends_at", proposal.ends_at)) if v is not None}
    try:
        patch = NoticePatch.model_validate(fields)
        result = lifecycle.correct(waiting or sent, patch, author=member.name, now=now,
                                   approval_for=approval_for)
    except (ValidationError, lifecycle.InvalidTimes) as error:
        raise invalid(error) from error
    except lifecycle.LifecycleError as error:
        raise ApiError(errors.NOTICE_WITHDRAWN) from error
    if result is not (waiting or sent):  # else the source changed nothing shown
        result = result.model_copy(update={"cap_identifier": proposal.cap_identifier})
        result = await save(c, result, seq, now)
    return result
