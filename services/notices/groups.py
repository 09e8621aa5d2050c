"""Above the commune: groups of communes, and one publication for a whole group.

A group is an EPCI, a département or any named list of communes (bucket `groups`, key
`g.<group>`); its official lists come from geo.py, never typed in. A publication for a
group (a broadcast, key `b.<broadcast id>`) is one ordinary notice per registered commune
of the group, each made by the same path as a commune's own (lifecycle.create, the
commune's approval rules) and carrying the broadcast's id. The broadcast is corrected and
withdrawn as a whole; a commune's staff can neither correct nor withdraw their copy alone
(409 `broadcast_copy`): one text for the whole group, so residents of two neighbouring
communes never read two versions of one announcement.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Header, Request, Response
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crieur.natsx import bucket_keys
from schemas import NoticeDraft, NoticePatch, NoticeState
from schemas.versions import BUS_MODEL, read_message
from services.notices import errors, lifecycle
from services.notices.api import Ctx, Staff
from services.notices.application import (
    Attach,
    Context,
    find_latest,
    invalid,
    save,
    store_withdrawal,
    stored,
)
from services.notices.attachments import Resolver
from services.notices.errors import ApiError
from services.notices.store import StaffMember

log = structlog.get_logger("crieur.notices.groups")

GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
BROADCAST_RE = re.compile(r"^[a-z0-9]{8,32}$")
# Copies written at once: enough to publish to a département in a second or two, few enough
# not to flood the bus with in-flight publications.
PARALLEL = 32


class Group(BaseModel):
    """A named list of communes; `kind` and `code` say which official list it came from."""

    model_config = BUS_MODEL

    id: str = Field(pattern=GROUP_RE.pattern)
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="epci, departement or list")
    code: str | None = Field(default=None, description="The EPCI's SIREN or the département")
    communes: tuple[str, ...]
    created_at: datetime


class BroadcastCopy(BaseModel):
    model_config = ConfigDict(frozen=True)

    commune: str
    notice_id: str
    state: NoticeState | None = None


class Broadcast(BaseModel):
    """One publication for a group: which notice it became in each commune."""

    model_config = BUS_MODEL

    id: str
    group: str
    author: str
    created_at: datetime
    copies: tuple[BroadcastCopy, ...]
    skipped: tuple[str, ...] = Field(
        default=(), description="Communes of the group not registered in Crieur: no copy")
    reach: dict[str, Any] = Field(
        default_factory=dict,
        description="The copies' reach added up, per channel and outcome (as GET "
        ".../notices/{id}/reach counts each)")


class GroupRegistry:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put(self, group: Group) -> None:
        await self.kv.put(f"g.{group.id}", group.model_dump_json().encode())

    async def get(self, group_id: str) -> Group | None:
        if not GROUP_RE.match(group_id):
            return None
        try:
            entry = await self.kv.get(f"g.{group_id}")
        except KeyNotFoundError:
            return None
        return read_message(Group, entry.value or b"")

    async def all(self) -> list[Group]:
        found = [await self.get(k[2:]) for k in await bucket_keys(self.kv) if k.startswith("g.")]
        return sorted((g for g in found if g is not None), key=lambda g: g.id)

    async def put_broadcast(self, broadcast: Broadcast) -> None:
        await self.kv.put(f"b.{broadcast.id}", broadcast.model_dump_json().encode())

    async def broadcasts(self, group_id: str, limit: int = 50) -> list[Broadcast]:
        """The group's publications, most recent first (the staff pages list them)."""
        found = [await self.broadcast(k[2:]) for k in await bucket_keys(self.kv)
                 if k.startswith("b.")]
        mine = [b for b in found if b is not None and b.group == group_id]
        return sorted(mine, key=lambda b: b.created_at, reverse=True)[:limit]

    async def broadcast(self, broadcast_id: str) -> Broadcast | None:
        if not BROADCAST_RE.match(broadcast_id):
            return None
        try:
            entry = await self.kv.get(f"b.{broadcast_id}")
        except KeyNotFoundError:
            return None
        return read_message(Broadcast, entry.value or b"")


def copy_id(broadcast_id: str, insee: str) -> str:
    """The id of a commune's copy, derived, so a retried publication finds what it stored."""
    return hashlib.sha256(f"{broadcast_id}:{insee}".encode()).hexdigest()[:16]


T = TypeVar("T")


async def in_batches(items: Sequence[str], work: Callable[[str], Awaitable[T]]) -> list[T]:
    done: list[T] = []
    for start in range(0, len(items), PARALLEL):
        done.extend(await asyncio.gather(*(work(i) for i in items[start:start + PARALLEL])))
    return done


def registry(c: Context) -> GroupRegistry:
    return GroupRegistry(c.store.groups_kv)


async def member_group(c: Context, group_id: str, member: StaffMember) -> Group:
    group = await registry(c).get(group_id)
    if group is None:
        raise ApiError(errors.GROUP_NOT_FOUND)
    if group_id not in member.groups:
        raise ApiError(errors.GROUP_FORBIDDEN)
    structlog.contextvars.bind_contextvars(group=group_id, staff=member.id)
    return group


async def group_broadcast(c: Context, group: Group, broadcast_id: str) -> Broadcast:
    broadcast = await registry(c).broadcast(broadcast_id)
    if broadcast is None or broadcast.group != group.id:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    structlog.contextvars.bind_contextvars(broadcast_id=broadcast_id)
    return broadcast


def summed_reach(request: Request, copies: Sequence[BroadcastCopy]) -> dict[str, Any]:
    """Every copy's reach added up, channel by channel, outcome by outcome."""
    from services.notices.reach import ReachCounter

    counter: ReachCounter | None = getattr(request.app.state, "reach", None)
    total: dict[str, Any] = {}
    if counter is None:
        return total
    for copy in copies:
        reach = counter.reach_of(copy.commune, copy.notice_id).model_dump(
            exclude={"commune", "notice_id", "complete"})
        for channel, counts in reach.items():
            into = total.setdefault(channel, {})
            for outcome, value in counts.items():
                if isinstance(value, dict):  # push per topic: topics are per commune
                    into.setdefault(outcome, {}).update(value)
                elif isinstance(value, list):
                    into.setdefault(outcome, []).extend(value)
                elif isinstance(value, int | float):
                    into[outcome] = into.get(outcome, 0) + value
    return total


async def with_states(c: Context, request: Request, broadcast: Broadcast) -> Broadcast:
    async def state_of(copy: BroadcastCopy) -> BroadcastCopy:
        notice = await stored(c, copy.commune, copy.notice_id)
        now = c.clock()
        return copy.model_copy(update={"state": notice.state_at(now) if notice else None})

    copies = [await state_of(copy) for copy in broadcast.copies]
    return broadcast.model_copy(update={"copies": tuple(copies),
                                        "reach": summed_reach(request, copies)})


router = APIRouter(prefix="/api/v1", tags=["groups"])


@router.get("/groups", summary="Groups of communes (staff)")
async def list_groups(c: Ctx, member: Staff) -> list[Group]:
    return [g for g in await registry(c).all() if g.id in member.groups]


@router.post("/groups/{group}/notices", status_code=201, response_model=Broadcast,
             summary="Publish one notice for every registered commune of a group",
             responses={403: {"description": "The token is not scoped to this group"}})
async def publish_for_group(
    c: Ctx, member: Staff, group: str, draft: NoticeDraft, request: Request,
    response: Response, idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Broadcast:
    published = await publish(c, member, group, draft, Resolver(request), idempotency_key)
    if published.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if published.existed:
        response.status_code = 200
    return await with_states(c, request, published.broadcast)


@dataclass(frozen=True)
class Published:
    broadcast: Broadcast
    replayed: bool  # an Idempotency-Key seen before
    existed: bool  # ... whose first attempt had stored the publication: nothing new


async def publish(c: Context, member: StaffMember, group: str, draft: NoticeDraft,
                  attach: Attach, idempotency_key: str | None = None) -> Published:
    """One notice for every registered commune of the group, each its commune's copy."""
    found = await member_group(c, group, member)
    groups = registry(c)
    broadcast_id = lifecycle.new_notice_id()
    replayed = False
    if idempotency_key:
        # Same rules as a commune's publication, the key scoped to member and group.
        key = hashlib.sha256(f"{member.id}:group:{group}:{idempotency_key}".encode()).hexdigest()
        request_hash = hashlib.sha256(draft.model_dump_json().encode()).hexdigest()
        held = await c.store.idempotency.claim(key, {"notice_id": broadcast_id,
                                                     "request": request_hash})
        if held is not None:
            if held["request"] != request_hash:
                raise ApiError(errors.IDEMPOTENCY_KEY_REUSED)
            broadcast_id = held["notice_id"]
            replayed = True
            # A first attempt cut short is finished below: each copy's id is derived.
    existing = await groups.broadcast(broadcast_id)
    if existing is not None:
        return Published(existing, replayed, existed=True)
    structlog.contextvars.bind_contextvars(broadcast_id=broadcast_id)
    now = c.clock()
    registered = {x.insee: x for x in await c.store.commune_registry.all()}
    targets = [i for i in found.communes if i in registered]
    skipped = tuple(i for i in found.communes if i not in registered)
    # Attachments are uploaded to one commune; a group's draft names files elsewhere.
    draft = await attach(targets[0], draft) if targets else draft

    async def publish_one(insee: str) -> BroadcastCopy:
        notice_id = copy_id(broadcast_id, insee)
        approval = draft.category.value in registered[insee].settings.approval_required_for
        try:
            notice = lifecycle.create(draft, notice_id=notice_id, commune=insee,
                                      author=member.name, now=now, approval_required=approval)
        except lifecycle.InvalidTimes as error:
            raise invalid(error) from error
        notice = notice.model_copy(update={"broadcast_id": broadcast_id, "group": group})
        if await stored(c, insee, notice_id) is None:
            try:
                notice = await save(c, notice, 0, now)
            except ApiError as error:
                if error.kind is not errors.NOTICE_CHANGED:  # else a retry stored it first
                    raise
        return BroadcastCopy(commune=insee, notice_id=notice_id, state=notice.state)

    copies = await in_batches(targets, publish_one)
    broadcast = Broadcast(id=broadcast_id, group=group, author=member.name, created_at=now,
                          copies=tuple(copies), skipped=skipped)
    await groups.put_broadcast(broadcast)
    log.info("broadcast_published", copies=len(copies), skipped=len(skipped))
    return Published(broadcast, replayed, existed=False)


@router.get("/groups/{group}/notices/{broadcast_id}", response_model=Broadcast,
            summary="A group publication: each commune's copy, its state, the reach summed")
async def get_broadcast(c: Ctx, member: Staff, group: str, broadcast_id: str,
                        request: Request) -> Broadcast:
    found = await member_group(c, group, member)
    return await with_states(c, request, await group_broadcast(c, found, broadcast_id))


@router.patch("/groups/{group}/notices/{broadcast_id}", response_model=Broadcast,
              summary="Correct a group publication: every commune's copy at once")
async def correct_broadcast(c: Ctx, member: Staff, group: str, broadcast_id: str,
                            patch: NoticePatch, request: Request) -> Broadcast:
    found = await member_group(c, group, member)
    broadcast = await group_broadcast(c, found, broadcast_id)
    now = c.clock()
    registered = {x.insee: x for x in await c.store.commune_registry.all()}

    async def correct_one(insee: str) -> None:
        commune = registered.get(insee)
        approval_for = commune.settings.approval_required_for if commune else ()
        seq, sent, waiting = await find_latest(c, insee, copy_id(broadcast_id, insee))
        notice = waiting or sent
        if notice.state is NoticeState.WITHDRAWN:
            return
        try:
            corrected = lifecycle.correct(notice, patch, author=member.name, now=now,
                                          approval_for=approval_for)
        except lifecycle.InvalidTimes as error:
            raise invalid(error) from error
        except (lifecycle.LifecycleError, ValidationError) as error:
            raise ApiError(errors.INVALID, message=str(error)) from error
        if corrected is not notice:
            await save(c, corrected, seq, now, was_scheduled=seq == 0)

    patch = await Resolver(request)(broadcast.copies[0].commune, patch) \
        if broadcast.copies else patch
    await in_batches([x.commune for x in broadcast.copies], correct_one)
    log.info("broadcast_corrected", copies=len(broadcast.copies))
    return await with_states(c, request, broadcast)


@router.post("/groups/{group}/notices/{broadcast_id}/withdraw", response_model=Broadcast,
             summary="Withdraw a group publication: every commune's copy at once")
async def withdraw_broadcast(c: Ctx, member: Staff, group: str, broadcast_id: str,
                             request: Request) -> Broadcast:
    found = await member_group(c, group, member)
    broadcast = await group_broadcast(c, found, broadcast_id)
    now = c.clock()

    async def withdraw_one(insee: str) -> None:
        notice_id = copy_id(broadcast_id, insee)
        seq, notice, waiting = await find_latest(c, insee, notice_id)
        if notice.state is NoticeState.WITHDRAWN:
            return  # a withdrawal retried after a cut: what is done stays done
        event = lifecycle.withdraw(notice, author=member.name, now=now)
        await store_withdrawal(c, event, seq, waiting is not None)

    await in_batches([x.commune for x in broadcast.copies], withdraw_one)
    log.info("broadcast_withdrawn", copies=len(broadcast.copies))
    return await with_states(c, request, broadcast)

