"""The front door's HTTP routes: staff publishing, public reading, and channel forwarding."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import (
    Commune,
    Notice,
    NoticeDraft,
    NoticePatch,
    NoticeState,
    NoticeWithdrawn,
    subjects,
)
from schemas.channels import (
    CHANNEL_ROUTES,
    STAFF_ROUTES,
    ChannelHttpReply,
    ChannelHttpRequest,
    channel_for,
    takes_json,
)
from schemas.commune import INSEE_RE
from schemas.versions import read_message
from services.notices import errors, lifecycle
from services.notices.archive import ArchiveIndex
from services.notices.atom import Paging, commune_feed
from services.notices.caching import RenderCache, Rendered, answer, not_modified
from services.notices.cap import NotSent, notice_to_cap
from services.notices.errors import ApiError
from services.notices.settings import NoticesSettings
from services.notices.store import ConcurrentChange, NatsStore, StaffMember
from services.notices.view import went_out

# What lifecycle.new_notice_id makes; anything else cannot be a notice (and must not reach
# NATS as a subject token: `*`, `>` or a space would be a wildcard or an invalid subject).
NOTICE_ID_RE = re.compile(r"^[a-z0-9]{8,32}$")

# Paging of lists and feeds.
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 50, 200, 100_000


@dataclass
class Context:
    """What every route needs; built once by app.py, replaced by tests."""

    store: NatsStore
    settings: NoticesSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    cache: RenderCache = field(default_factory=RenderCache)
    # Each registered commune's archive index, with the view's stamp and until when it holds.
    archives: dict[str, tuple[int, datetime | None, ArchiveIndex]] = field(default_factory=dict)


def ctx(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


Ctx = Annotated[Context, Depends(ctx)]


class NoticeList(BaseModel):
    model_config = ConfigDict(frozen=True)

    commune: Commune
    notices: list[Notice]
    total: int = Field(description="How many notices are current, on every page")
    next: str | None = Field(default=None, description="The next page, if there is one")


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Notices per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Notices to skip")]


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


def on_stream(c: Context, insee: str, notice_id: str) -> tuple[int, Notice] | None:
    """The notice as the stream has it; an id that cannot exist is simply not found."""
    if not NOTICE_ID_RE.match(notice_id):
        return None
    return c.store.get(insee, notice_id)


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


async def stored(c: Context, insee: str, notice_id: str) -> Notice | None:
    """The notice if it is on the stream or in the schedule, else None."""
    if not NOTICE_ID_RE.match(notice_id):
        return None
    found = c.store.get(insee, notice_id)
    if found is not None:
        return found[1]
    scheduled = await c.store.scheduled(notice_id)
    return scheduled if scheduled is not None and scheduled.commune == insee else None


def refuse_broadcast_copy(notice: Notice) -> None:
    """A commune's copy of a group publication changes for the whole group only (groups.py)."""
    if notice.broadcast_id is not None:
        raise ApiError(errors.BROADCAST_COPY, group=notice.group or "?",
                       broadcast_id=notice.broadcast_id)


def notice_etag(notice: Notice, now: datetime) -> str:
    """`"<version>"`; a state that changes without a new version is told apart by a suffix."""
    state = notice.state_at(now)
    if state in (NoticeState.SCHEDULED, NoticeState.PENDING_APPROVAL, NoticeState.EXPIRED,
                 NoticeState.PROPOSED):
        return f'"{notice.version}-{state.value}"'
    return f'"{notice.version}"'


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


IfMatch = Annotated[str | None, Header(description='The ETag read, e.g. "3": 412 if it moved on')]


def notice_response(response: Response, notice: Notice, now: datetime) -> Notice:
    response.headers["ETag"] = notice_etag(notice, now)
    return shown(notice, now)


# A write that timed out reached the server, whose answer did not come back: it may be stored.
UNCONFIRMED = (NatsTimeoutError, TimeoutError)


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


D = TypeVar("D", NoticeDraft, NoticePatch)


async def resolved_attachments(request: Request, insee: str, draft: D) -> D:
    """Attachment ids in a draft replaced by the attachments they name (422 if unknown)."""
    from services.notices.attachments import resolve  # it imports this module

    return await resolve(request, insee, draft)


def invalid(error: ValidationError | lifecycle.InvalidTimes) -> ApiError:
    """A 422 naming each field, for errors found past the request's own validation."""
    if isinstance(error, lifecycle.InvalidTimes):
        fields = [{"field": error.field, "message": error.message}]
    else:
        fields = errors.field_errors(error.errors())
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(errors.INVALID, message=message, fields=fields)


router = APIRouter(prefix="/api/v1")


@router.get("/communes", summary="Communes registered in Crieur")
async def list_communes(c: Ctx, request: Request) -> Response:
    communes = await c.store.communes()
    body = b"[" + b",".join(x.model_dump_json().encode() for x in communes) + b"]"
    latest = max((x.created_at for x in communes), default=None)
    return answer(request, Rendered(body, "application/json", latest))


@router.get("/communes/{insee}", summary="One commune", response_model=Commune)
async def get_commune(c: Ctx, request: Request, insee: str) -> Response:
    commune = await c.store.commune(insee) if INSEE_RE.match(insee) else None
    if commune is None:
        raise ApiError(errors.COMMUNE_NOT_FOUND)
    return answer(request, Rendered(commune.model_dump_json().encode(), "application/json",
                                    commune.created_at))


@router.post("/communes/{insee}/notices", status_code=201, summary="Publish (or schedule) a notice",
             responses={202: {"description": "Held until another member of staff approves it "
                              "(state pending_approval): the commune requires it"}})
async def publish_notice(
    c: Ctx, member: Staff, insee: str, draft: NoticeDraft, response: Response, request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Notice:
    commune = await staff_commune(c, insee, member)
    approval = draft.category.value in commune.settings.approval_required_for
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
                if known.state is NoticeState.PENDING_APPROVAL:
                    response.status_code = 202
                return notice_response(response, known, now)
            # The first attempt has not stored it (still in flight, or it crashed): go on
            # with its id; Nats-Msg-Id and the expected sequence keep it to one notice.
    structlog.contextvars.bind_contextvars(notice_id=notice_id)
    draft = await resolved_attachments(request, insee, draft)
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
    if notice.state is NoticeState.PENDING_APPROVAL:
        # Accepted, not done: nothing goes out until another member of staff approves it.
        response.status_code = 202
    return notice_response(response, notice, now)


@router.patch("/communes/{insee}/notices/{notice_id}", summary="Correct a notice (new version)",
              responses={202: {"description": "The new version waits for another member of "
                               "staff's approval (state pending_approval): its text changed "
                               "and the commune requires approval for its category. If the "
                               "notice was sent, what was sent stays until it is approved"},
                         412: {"description": "If-Match names a version that moved on"}})
async def correct_notice(
    c: Ctx, member: Staff, insee: str, notice_id: str, patch: NoticePatch, response: Response,
    request: Request, if_match: IfMatch = None,
) -> Notice:
    now = c.clock()
    seq, notice, corrected = await corrected_version(c, member, insee, notice_id, patch,
                                                     request, if_match)
    if corrected is not notice:
        corrected = await save(c, corrected, seq, now, was_scheduled=seq == 0)
        structlog.get_logger().info("notice_corrected", version=corrected.version,
                                    state=corrected.state)
    # else nothing changed: no new version, nothing sent.
    if corrected.state is NoticeState.PENDING_APPROVAL:
        # Accepted, not done: this version goes out only once another member approves it.
        response.status_code = 202
    return notice_response(response, corrected, now)


async def corrected_version(
    c: Context, member: StaffMember, insee: str, notice_id: str, patch: NoticePatch,
    request: Request, if_match: str | None = None,
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
    patch = await resolved_attachments(request, insee, patch)
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


@router.post("/communes/{insee}/notices/{notice_id}/withdraw", summary="Withdraw a notice",
             responses={412: {"description": "If-Match names a version that moved on"}})
async def withdraw_notice(
    c: Ctx, member: Staff, insee: str, notice_id: str, response: Response,
    if_match: IfMatch = None,
) -> Notice:
    await staff_commune(c, insee, member)
    now = c.clock()
    seq, notice, waiting = await find_latest(c, insee, notice_id)
    refuse_broadcast_copy(notice)
    check_if_match(if_match, notice, *([waiting] if waiting else []))
    try:
        event: NoticeWithdrawn = lifecycle.withdraw(notice, author=member.name, now=now)
    except lifecycle.LifecycleError as error:
        raise ApiError(errors.NOTICE_WITHDRAWN) from error
    await store_withdrawal(c, event, seq, waiting is not None)
    structlog.get_logger().info("notice_withdrawn", version=notice.version)
    return notice_response(response, event.notice, now)


def page_url(request: Request, limit: int, offset: int) -> str:
    """This route's URL at another page, as the client reached it (behind CRIEUR_PUBLIC_URL)."""
    base = ctx(request).settings.public_url.rstrip("/")
    return f"{base}{request.url.path}?{urlencode({'limit': limit, 'offset': offset})}"


@router.get("/communes/{insee}/notices", summary="The commune's current notices (public), paged",
            response_model=NoticeList)
async def list_notices(
    c: Ctx, request: Request, insee: str, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Response:
    commune = await registered_commune(c, insee)
    now = c.clock()

    async def render() -> tuple[Rendered, datetime | None]:
        current = c.store.view.current(insee, now)
        more = offset + limit < len(current)
        page = NoticeList(
            commune=commune, total=len(current),
            notices=[shown(n, now) for n in current[offset:offset + limit]],
            next=page_url(request, limit, offset + limit) if more else None,
        )
        headers = {"Link": f'<{page.next}>; rel="next"'} if page.next else {}
        changed = c.store.view.changed_at(insee, now) or commune.created_at
        rendered = Rendered(page.model_dump_json().encode(), "application/json", changed,
                            headers=headers)
        return rendered, c.store.view.next_change(insee, now)

    rendered = await c.cache.get(("notices", insee, commune, limit, offset),
                                 c.store.view.stamp(insee), now, render)
    return answer(request, rendered)


@router.get("/communes/{insee}/notices/{notice_id}",
            summary="One notice (public once published; with a staff token, scheduled too)",
            response_model=Notice)
async def get_notice(
    c: Ctx, request: Request, insee: str, notice_id: str,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    await registered_commune(c, insee)
    now = c.clock()
    notice = went_out(on_stream(c, insee, notice_id))
    if notice is None and authorization is not None:
        # Staff may read back what they scheduled; residents see it once it is out.
        await staff_commune(c, insee, await staff_member(c, authorization))
        notice = await stored(c, insee, notice_id)
    if notice is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    etag = notice_etag(notice, now)
    # Expiry changes what is shown without a new version: it counts as a modification.
    modified = notice.updated_at
    if notice.state_at(now) is NoticeState.EXPIRED and notice.ends_at is not None:
        modified = max(modified, notice.ends_at)
    if not_modified(request, etag, modified):
        return Response(status_code=304, headers={"ETag": etag})
    body = shown(notice, now).model_dump_json().encode()
    return answer(request, Rendered(body, "application/json", modified, etag=etag,
                                    etag_per_encoding=False))


ATOM = "application/atom+xml; charset=utf-8"
CAP = "application/cap+xml; charset=utf-8"


class AtomResponse(Response):
    media_type = ATOM


class CapResponse(Response):
    media_type = CAP


@router.get("/communes/{insee}/feed.atom", response_class=AtomResponse,
            summary="The commune's current and recently withdrawn notices as an Atom feed, paged")
async def atom_feed(
    c: Ctx, request: Request, insee: str, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Response:
    commune = await registered_commune(c, insee)
    now = c.clock()

    async def render() -> tuple[Rendered, datetime | None]:
        view = c.store.view
        entries = view.in_feed(insee, now)
        last_offset = max(0, (len(entries) - 1) // limit * limit)
        paging = Paging(
            current=page_url(request, limit, offset),
            first=page_url(request, limit, 0),
            last=page_url(request, limit, last_offset),
            previous=page_url(request, limit, max(0, offset - limit)) if offset > 0 else None,
            next=page_url(request, limit, offset + limit) if offset + limit < len(entries)
            else None,
        )
        changed = view.changed_at(insee, now)
        feed = commune_feed(insee, commune.name, entries[offset:offset + limit], now,
                            c.settings.public_url, updated=changed or commune.created_at,
                            paging=paging)
        return Rendered(feed, ATOM, changed or commune.created_at), view.next_change(insee, now)

    rendered = await c.cache.get(("atom", insee, commune, limit, offset),
                                 c.store.view.stamp(insee), now, render)
    return answer(request, rendered)


@router.get("/communes/{insee}/notices/{notice_id}/cap.xml", response_class=CapResponse,
            summary="One notice as a CAP 1.2 alert (Alert, Update or Cancel)")
async def cap_alert(c: Ctx, request: Request, insee: str, notice_id: str) -> Response:
    commune = await registered_commune(c, insee)
    found = on_stream(c, insee, notice_id)
    if found is None:
        raise ApiError(errors.NOTICE_NOT_FOUND)
    notice = found[1]
    try:
        document = notice_to_cap(notice, commune.name, c.settings.public_url)
    except NotSent as error:
        raise ApiError(errors.NOTICE_NOT_SENT) from error
    return answer(request, Rendered(document, CAP, notice.updated_at))


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


def is_json(content_type: str) -> bool:
    """`application/json`, or a `+json` type, with or without parameters (charset)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json"))


async def forward_to_channel(request: Request) -> Response:
    """Hand the request to its channel; the front door keeps none of the channel's data."""
    c = ctx(request)
    channel = channel_for(request.url.path)
    if channel is None:  # only routes of CHANNEL_ROUTES lead here
        raise ApiError(errors.NOT_FOUND)
    body = await request.body()
    # A hostile page can post text/plain (a JSON text inside) from a visitor's browser
    # without asking; application/json it cannot, so only that type is read as JSON.
    if body and takes_json(request.method, request.url.path) and not is_json(
            request.headers.get("content-type", "")):
        raise ApiError(errors.JSON_REQUIRED)
    message = ChannelHttpRequest(
        method=request.method,
        path=request.url.path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=forwarded_headers(request),
        body=body.decode("utf-8", errors="replace"),
        body_b64=base64.b64encode(body).decode("ascii"),
        client_ip=request.client.host if request.client else "",
    )
    reply = await ask_channel(c, channel, message)
    headers = {k: v for k, v in reply.headers.items() if k.lower() not in NOT_RETURNED}
    return Response(reply.body_bytes(), status_code=reply.status, headers=headers)


async def ask_channel(c: Context, channel: str, message: ChannelHttpRequest) -> ChannelHttpReply:
    """A channel's answer to one HTTP request, over request-reply; ApiError if there is none."""
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
        reply.body_bytes()  # a body that does not decode makes the reply unreadable too
    except ValueError as error:  # not JSON, not a reply, a newer version, bad base64
        structlog.get_logger("crieur.notices.channels").error(
            "channel_reply_unreadable", channel=channel, error=str(error)[:300])
        raise ApiError(errors.CHANNEL_BAD_REPLY, channel=channel) from error
    return reply


REST_PARAMETER = {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "The rest of the path, as the channel defines it"}


def channel_router() -> APIRouter:
    forwarded = APIRouter()
    for prefix, channel in CHANNEL_ROUTES.items():
        for path in (prefix, prefix + "/{rest:path}"):
            # The endpoint reads the raw request, so FastAPI does not see {rest}: declare it.
            extra = {"parameters": [REST_PARAMETER]} if "{rest:path}" in path else None
            staff = [Depends(staff_member)] if prefix in STAFF_ROUTES else None
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                slug = re.sub(r"[^a-z]+", "_", f"{method} {path}".lower()).strip("_")
                forwarded.add_api_route(
                    path, forward_to_channel, methods=[method], operation_id=slug,
                    summary=f"Answered by the {channel} channel", tags=[f"channel: {channel}"],
                    openapi_extra=extra, dependencies=staff,
                )
    return forwarded
