"""The front door's HTTP routes: staff publishing, public reading, and channel forwarding."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas import (
    Commune,
    Notice,
    NoticeDraft,
    NoticePatch,
    NoticeState,
    NoticeWithdrawn,
    subjects,
)
from schemas.channels import CHANNEL_ROUTES, ChannelHttpReply, ChannelHttpRequest, channel_for
from schemas.commune import INSEE_RE
from schemas.versions import read_message
from services.notices import errors, lifecycle
from services.notices.atom import commune_feed
from services.notices.cap import notice_to_cap
from services.notices.errors import ApiError
from services.notices.settings import NoticesSettings
from services.notices.store import ConcurrentChange, NatsStore, StaffMember


@dataclass
class Context:
    """What every route needs; built once by app.py, replaced by tests."""

    store: NatsStore
    settings: NoticesSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def ctx(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


Ctx = Annotated[Context, Depends(ctx)]


class NoticeList(BaseModel):
    model_config = ConfigDict(frozen=True)

    commune: Commune
    notices: list[Notice]


async def staff_member(
    c: Ctx, authorization: Annotated[str | None, Header()] = None
) -> StaffMember:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(errors.UNAUTHORIZED)
    member = await c.store.staff_for_token(token.strip())
    if member is None:
        raise ApiError(errors.UNAUTHORIZED)
    return member


Staff = Annotated[StaffMember, Depends(staff_member)]


async def registered_commune(c: Context, insee: str) -> Commune:
    if not INSEE_RE.match(insee):
        raise ApiError(errors.INSEE_MALFORMED, insee=insee,
                       fields=[{"field": "insee", "message": "not an INSEE code"}])
    commune = await c.store.commune(insee)
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


def shown(notice: Notice, now: datetime) -> Notice:
    """The notice as a reader sees it now (expiry is derived, not stored)."""
    return notice.model_copy(update={"state": notice.state_at(now)})


async def find(c: Context, insee: str, notice_id: str) -> tuple[int, Notice]:
    """The notice and the stream sequence it was read at (0: scheduled, not on the stream yet)."""
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    found = c.store.get(insee, notice_id)
    if found is not None:
        return found
    scheduled = await stored(c, insee, notice_id)
    if scheduled is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    return 0, scheduled


async def stored(c: Context, insee: str, notice_id: str) -> Notice | None:
    """The notice if it is on the stream or in the schedule, else None."""
    found = c.store.get(insee, notice_id)
    if found is not None:
        return found[1]
    scheduled = await c.store.scheduled(notice_id)
    return scheduled if scheduled is not None and scheduled.commune == insee else None


async def save(c: Context, notice: Notice, read_seq: int, now: datetime) -> Notice:
    """Store a new or corrected notice: on the stream, or in the schedule until its time."""
    try:
        if notice.state is NoticeState.SCHEDULED:
            if notice.publish_at is not None and notice.publish_at <= now:
                event = lifecycle.publish_due(notice, now)
                await c.store.append(event, read_seq)
                await c.store.unschedule(notice.id)
                return event.notice
            await c.store.schedule(notice)
            return notice
        await c.store.append(lifecycle.event_for(notice, now), read_seq)
        return notice
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error


router = APIRouter(prefix="/api/v1")


@router.get("/communes", summary="Communes registered in Crieur")
async def list_communes(c: Ctx) -> list[Commune]:
    return await c.store.communes()


@router.get("/communes/{insee}", summary="One commune")
async def get_commune(c: Ctx, insee: str) -> Commune:
    commune = await c.store.commune(insee) if INSEE_RE.match(insee) else None
    if commune is None:
        raise ApiError(errors.COMMUNE_NOT_FOUND)
    return commune


@router.post("/communes/{insee}/notices", status_code=201, summary="Publish (or schedule) a notice")
async def publish_notice(
    c: Ctx, member: Staff, insee: str, draft: NoticeDraft, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Notice:
    await staff_commune(c, insee, member)
    now = c.clock()
    notice_id = lifecycle.new_notice_id()
    if idempotency_key:
        scoped_key = f"{member.id}:{insee}:{idempotency_key}"
        key = hashlib.sha256(scoped_key.encode()).hexdigest()
        request_hash = hashlib.sha256(draft.model_dump_json().encode()).hexdigest()
        held = await c.store.claim(key, {"notice_id": notice_id, "request": request_hash})
        if held is not None:
            if held["request"] != request_hash:
                raise ApiError(errors.IDEMPOTENCY_KEY_REUSED)
            notice_id = held["notice_id"]
            if (known := await stored(c, insee, notice_id)) is not None:
                response.headers["Idempotent-Replayed"] = "true"
                return shown(known, now)
            # The first attempt has not stored it (still in flight, or it crashed): go on
            # with its id; Nats-Msg-Id and the expected sequence keep it to one notice.
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    notice = lifecycle.create(draft, notice_id=notice_id, commune=insee, author=member.name,
                              now=now)
    try:
        notice = await save(c, notice, 0, now)
    except ApiError:
        # A retry with the same key that lost the race: answer with what the first stored.
        if not idempotency_key or (first := c.store.get(insee, notice_id)) is None:
            raise
        notice = first[1]
    structlog.get_logger().info("notice_created", state=notice.state, category=notice.category)
    return shown(notice, now)


@router.patch("/communes/{insee}/notices/{notice_id}", summary="Correct a notice (new version)")
async def correct_notice(
    c: Ctx, member: Staff, insee: str, notice_id: str, patch: NoticePatch
) -> Notice:
    await staff_commune(c, insee, member)
    now = c.clock()
    seq, notice = await find(c, insee, notice_id)
    try:
        corrected = lifecycle.correct(notice, patch, author=member.name, now=now)
    except lifecycle.LifecycleError as error:
        kind = errors.NOTICE_WITHDRAWN if notice.state is NoticeState.WITHDRAWN else errors.INVALID
        raise ApiError(kind, message=str(error)) from error
    except ValidationError as error:
        fields = errors.field_errors(error.errors())
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        raise ApiError(errors.INVALID, message=message, fields=fields) from error
    saved = await save(c, corrected, seq, now)
    structlog.get_logger().info("notice_corrected", version=saved.version)
    return shown(saved, now)


@router.post("/communes/{insee}/notices/{notice_id}/withdraw", summary="Withdraw a notice")
async def withdraw_notice(c: Ctx, member: Staff, insee: str, notice_id: str) -> Notice:
    await staff_commune(c, insee, member)
    now = c.clock()
    seq, notice = await find(c, insee, notice_id)
    try:
        event: NoticeWithdrawn = lifecycle.withdraw(notice, author=member.name, now=now)
    except lifecycle.LifecycleError as error:
        raise ApiError(errors.NOTICE_WITHDRAWN) from error
    try:
        # A scheduled notice is withdrawn on the stream too, so its record stays.
        await c.store.append(event, seq)
    except ConcurrentChange as error:
        raise ApiError(errors.NOTICE_CHANGED) from error
    if seq == 0:
        await c.store.unschedule(notice_id)
    structlog.get_logger().info("notice_withdrawn", version=notice.version)
    return shown(event.notice, now)


@router.get("/communes/{insee}/notices", summary="The commune's current notices (public)")
async def list_notices(c: Ctx, insee: str) -> NoticeList:
    commune = await registered_commune(c, insee)
    now = c.clock()
    return NoticeList(commune=commune, notices=c.store.view.current(insee, now))


@router.get("/communes/{insee}/notices/{notice_id}",
            summary="One notice (public once published; with a staff token, scheduled too)")
async def get_notice(
    c: Ctx, insee: str, notice_id: str, authorization: Annotated[str | None, Header()] = None
) -> Notice:
    await registered_commune(c, insee)
    found = c.store.get(insee, notice_id)
    if found is not None:
        return shown(found[1], c.clock())
    if authorization is not None:
        # Staff may read back what they scheduled; residents see it once it is out.
        await staff_commune(c, insee, await staff_member(c, authorization))
        scheduled = await stored(c, insee, notice_id)
        if scheduled is not None:
            return shown(scheduled, c.clock())
    raise ApiError(errors.NOTICE_NOT_FOUND)


class AtomResponse(Response):
    media_type = "application/atom+xml; charset=utf-8"


class CapResponse(Response):
    media_type = "application/cap+xml; charset=utf-8"


@router.get("/communes/{insee}/feed.atom", response_class=AtomResponse,
            summary="The commune's current notices as an Atom feed")
async def atom_feed(c: Ctx, insee: str) -> AtomResponse:
    commune = await registered_commune(c, insee)
    now = c.clock()
    feed = commune_feed(insee, commune.name, c.store.view.current(insee, now), now,
                        c.settings.public_url)
    return AtomResponse(feed)


@router.get("/communes/{insee}/notices/{notice_id}/cap.xml", response_class=CapResponse,
            summary="One notice as a CAP 1.2 alert (Alert, Update or Cancel)")
async def cap_alert(c: Ctx, insee: str, notice_id: str) -> CapResponse:
    commune = await registered_commune(c, insee)
    found = c.store.get(insee, notice_id)
    if found is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    return CapResponse(notice_to_cap(found[1], commune.name, c.settings.public_url))


# -- channel routes: answered by the channel that owns them, over NATS request-reply ----------

# Not passed on: hop-by-hop headers (RFC 9110, 7.6.1), what the front door recomputes, and
# staff credentials, which never leave the front door.
NOT_FORWARDED = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "host", "content-length", "authorization", "cookie", "proxy-authorization",
})
# Not given back from a channel's reply: the server sets them for the body it sends.
NOT_RETURNED = frozenset({"content-length", "transfer-encoding", "connection"})


def forwarded_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name not in NOT_FORWARDED:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def forward_to_channel(request: Request) -> Response:
    """Hand the request to its channel; the front door keeps none of the channel's data."""
    c = ctx(request)
    channel = channel_for(request.url.path)
    if channel is None:  # only routes of CHANNEL_ROUTES lead here
        raise ApiError(errors.NOT_FOUND)
    body = await request.body()
    message = ChannelHttpRequest(
        method=request.method,
        path=request.url.path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=forwarded_headers(request),
        body=body.decode("utf-8", errors="replace"),
        body_b64=base64.b64encode(body).decode("ascii"),
        client_ip=request.client.host if request.client else "",
    )
    try:
        reply_msg = await c.store.nc.request(
            subjects.channel_http(channel), message.model_dump_json().encode(),
            timeout=c.settings.channel_timeout_s,
        )
    except NoRespondersError as error:
        raise ApiError(errors.CHANNEL_UNAVAILABLE, channel=channel) from error
    except NatsTimeoutError as error:
        raise ApiError(errors.CHANNEL_TIMEOUT, channel=channel) from error
    try:
        reply = read_message(ChannelHttpReply, reply_msg.data)
        content = reply.body_bytes()
    except ValueError as error:  # not JSON, not a reply, a newer version, bad base64
        structlog.get_logger("crieur.notices.channels").error(
            "channel_reply_unreadable", channel=channel, error=str(error)[:300])
        raise ApiError(errors.CHANNEL_BAD_REPLY, channel=channel) from error
    headers = {k: v for k, v in reply.headers.items() if k.lower() not in NOT_RETURNED}
    return Response(content, status_code=reply.status, headers=headers)


REST_PARAMETER = {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "The rest of the path, as the channel defines it"}


def channel_router() -> APIRouter:
    forwarded = APIRouter()
    for prefix, channel in CHANNEL_ROUTES.items():
        for path in (prefix, prefix + "/{rest:path}"):
            # The endpoint reads the raw request, so FastAPI does not see {rest}: declare it.
            extra = {"parameters": [REST_PARAMETER]} if "{rest:path}" in path else None
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                slug = re.sub(r"[^a-z]+", "_", f"{method} {path}".lower()).strip("_")
                forwarded.add_api_route(
                    path, forward_to_channel, methods=[method], operation_id=slug,
                    summary=f"Answered by the {channel} channel", tags=[f"channel: {channel}"],
                    openapi_extra=extra,
                )
    return forwarded


def not_found_json(_: Request, __: Any) -> JSONResponse:
    return JSONResponse(errors.error_body(errors.NOT_FOUND.code, errors.NOT_FOUND.message), 404)
