"""Staff-only JSON routes: every notice of a commune in every state, and approval.

The staff pages (staff_pages.py) call the same functions, so the browser and a script see
and do the same things.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from schemas import Commune, Notice, NoticeState
from services.notices import application, archive, lifecycle
from services.notices.api import (
    Ctx,
    Limit,
    Offset,
    Staff,
    notice_response,
    page_url,
    shown,
)
from services.notices.application import Context, staff_commune
from services.notices.capfeed import CapRecords, Proposal
from services.notices.reach import ReachCounter

# Waiting for someone first, then what is still to come, then the rest, most recent first.
# An official alert proposed comes before all (issue 29): it is the most urgent to read.
_STATE_RANK = {NoticeState.PROPOSED: -1, NoticeState.PENDING_APPROVAL: 0,
               NoticeState.SCHEDULED: 1}


def every_notice(c: Context, insee: str, now: datetime) -> list[tuple[Notice, Notice | None]]:
    """The commune's notices in every state, as staff see them (expiry derived), each with
    the correction waiting for approval on it, if any: such a notice waits for someone, so
    it comes first with the pending ones."""
    on_stream = {n.id: shown(n, now) for n in c.store.view.all(insee)}
    held: list[Notice] = []
    waiting: dict[str, Notice] = {}
    for n in c.store.all_scheduled():
        if n.commune != insee:
            continue
        sent = on_stream.get(n.id)
        if sent is None:
            held.append(n)
        elif lifecycle.waits_on(n, sent):
            waiting[n.id] = n
    notices = [*on_stream.values(), *held]

    def rank(n: Notice) -> int:
        return 0 if n.id in waiting else _STATE_RANK.get(n.state, 2)

    ordered = sorted(notices, key=lambda n: (rank(n), -n.updated_at.timestamp(), n.id))
    return [(n, waiting.get(n.id)) for n in ordered]


Reach = dict[str, Any]


def reach_of(request: Request, insee: str, notices: Sequence[Notice]) -> dict[str, Reach]:
    """Each notice's reach per channel, counted from DELIVERIES in memory (reach.py)."""
    counter: ReachCounter | None = getattr(request.app.state, "reach", None)
    if counter is None:
        return {n.id: {} for n in notices}
    counted = counter.reach_of_many(insee, [n.id for n in notices])
    return {notice_id: r.model_dump(exclude={"commune", "notice_id"})
            for notice_id, r in counted.items()}


class StaffNotice(BaseModel):
    model_config = ConfigDict(frozen=True)

    notice: Notice
    pending_correction: Notice | None = Field(
        default=None, description="A correction of this sent notice waiting for another "
        "member's approval (state pending_approval); `notice` is what was sent, and stays "
        "so until the correction is approved")
    proposal: Proposal | None = Field(
        default=None, description="A correction or withdrawal of this published notice that "
        "its official source proposes (CAP Update or Cancel): POST .../notices/{id}/publish "
        "applies it")
    reach: Reach = Field(description="Per channel, what DELIVERIES counted for this notice, "
                         "as GET .../notices/{id}/reach answers it (push: sent and phones "
                         "per topic; email: sent, bounced; sms: sent, delivered; panel: "
                         "shown_seconds)")


class StaffNoticeList(BaseModel):
    model_config = ConfigDict(frozen=True)

    commune: Commune
    notices: list[StaffNotice]
    total: int = Field(description="How many notices match, on every page")
    next: str | None = Field(default=None, description="The next page, if there is one")


async def proposals_for(c: Context, notices: Sequence[Notice]) -> dict[str, Proposal]:
    """What the official source proposes for these notices (CAP Update or Cancel), by id.

    Only a notice made from an official alert, published and not withdrawn, can have one.
    """
    records = CapRecords(c.store.cap_kv)
    found: dict[str, Proposal] = {}
    for n in notices:
        if n.cap_identifier and n.state not in (NoticeState.PROPOSED, NoticeState.WITHDRAWN):
            proposal = await records.proposal(n.id)
            if proposal is not None and proposal.commune == n.commune:
                found[n.id] = proposal
    return found


async def listing(request: Request, c: Context, commune: Commune, now: datetime, limit: int,
                  offset: int, state: NoticeState | None = None,
                  filters: archive.Filters | None = None,
                  ) -> tuple[list[StaffNotice], int]:
    notices = every_notice(c, commune.insee, now)
    proposed = await proposals_for(c, [n for n, _ in notices])
    if proposed:
        # A correction or withdrawal an official source proposes is as urgent to read as
        # an alert proposed: it comes first too (sorted() keeps the rest in order).
        notices = sorted(notices, key=lambda item: item[0].id not in proposed)
    if state is not None:
        # A notice whose correction waits is pending approval too: an approver finds it.
        notices = [(n, w) for n, w in notices
                   if n.state is state or (w is not None and w.state is state)]
    if filters is not None and filters.any:
        # Staff read their own commune's list, a few hundred notices: folded per request.
        notices = [(n, w) for n, w in notices[:archive.SEARCH_LIMIT]
                   if archive.matches(archive.entry(n), filters)]
    page = notices[offset:offset + limit]
    reach = reach_of(request, commune.insee, [n for n, _ in page])
    return [StaffNotice(notice=n, pending_correction=w, proposal=proposed.get(n.id),
                        reach=reach.get(n.id, {}))
            for n, w in page], len(notices)


staff_router = APIRouter(prefix="/api/v1")


@staff_router.get("/communes/{insee}/staff/notices", response_model=StaffNoticeList,
                  summary="Every notice of the commune, in every state, with its reach (staff)")
async def staff_notices(
    c: Ctx, member: Staff, request: Request, insee: str, limit: Limit = 50, offset: Offset = 0,
    state: Annotated[NoticeState | None, Query(description="Only notices in this state")] = None,
) -> StaffNoticeList:
    commune = await staff_commune(c, insee, member)
    items, total = await listing(request, c, commune, c.clock(), limit, offset, state)
    following = None
    if offset + limit < total:
        # The next page keeps the filter.
        following = page_url(request, limit, offset + limit) + (
            f"&state={state.value}" if state is not None else "")
    return StaffNoticeList(commune=commune, notices=items, total=total, next=following)


@staff_router.post("/communes/{insee}/notices/{notice_id}/approve",
                   summary="Approve a notice pending approval (not its own author)",
                   responses={403: {"description": "The author cannot approve their own"},
                              409: {"description": "The notice is not pending approval"}})
async def approve_notice(
    c: Ctx, member: Staff, insee: str, notice_id: str, response: Response,
) -> Notice:
    approved = await application.approve(c, member, insee, notice_id)
    return notice_response(response, approved, c.clock())
