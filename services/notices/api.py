"""The front door's HTTP routes: staff publishing, public reading, and channel forwarding."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ConfigDict, Field

from schemas import Commune, Notice, NoticeDraft, NoticePatch, NoticeState, subjects
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
from services.notices import application, errors
from services.notices.application import Context as Context
from services.notices.application import (
    on_stream,
    registered_commune,
    staff_commune,
    stored,
)
from services.notices.atom import Paging, commune_feed
from services.notices.attachments import Resolver
from services.notices.caching import Rendered, answer, not_modified
from services.notices.cap import NotSent, notice_to_cap
from services.notices.errors import ApiError
from services.notices.store import StaffMember
from services.notices.view import went_out

# Paging of lists and feeds.
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 50, 200, 100_000


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
    member = await c.store.staff_registry.for_token(token.strip())
    if member is None:
        raise ApiError(errors.UNAUTHORIZED)
    return member


Staff = Annotated[StaffMember, Depends(staff_member)]


def shown(notice: Notice, now: datetime) -> Notice:
    """The notice as a reader sees it now (expiry is derived, not stored)."""
    return notice.model_copy(update={"state": notice.state_at(now)})


def notice_etag(notice: Notice, now: datetime) -> str:
    """`"<version>"`; a state that changes without a new version is told apart by a suffix."""
    state = notice.state_at(now)
    if state in (NoticeState.SCHEDULED, NoticeState.PENDING_APPROVAL, NoticeState.EXPIRED,
                 NoticeState.PROPOSED):
        return f'"{notice.version}-{state.value}"'
    return f'"{notice.version}"'


IfMatch = Annotated[str | None, Header(description='The ETag read, e.g. "3": 412 if it moved on')]


def notice_response(response: Response, notice: Notice, now: datetime) -> Notice:
    response.headers["ETag"] = notice_etag(notice, now)
    return shown(notice, now)


router = APIRouter(prefix="/api/v1")


@router.get("/communes", summary="Communes registered in Crieur")
async def list_communes(c: Ctx, request: Request) -> Response:
    communes = await c.store.commune_registry.all()
    body = b"[" + b",".join(x.model_dump_json().encode() for x in communes) + b"]"
    latest = max((x.created_at for x in communes), default=None)
    return answer(request, Rendered(body, "application/json", latest))


@router.get("/communes/{insee}", summary="One commune", response_model=Commune)
async def get_commune(c: Ctx, request: Request, insee: str) -> Response:
    commune = await c.store.commune_registry.get(insee) if INSEE_RE.match(insee) else None
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
    published = await application.publish(c, member, insee, draft, Resolver(request),
                                           idempotency_key)
    if published.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return written(response, published.notice, c.clock())


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
    corrected = await application.correct(c, member, insee, notice_id, patch,
                                          Resolver(request), if_match)
    return written(response, corrected, c.clock())


@router.post("/communes/{insee}/notices/{notice_id}/withdraw", summary="Withdraw a notice",
             responses={412: {"description": "If-Match names a version that moved on"}})
async def withdraw_notice(
    c: Ctx, member: Staff, insee: str, notice_id: str, response: Response,
    if_match: IfMatch = None,
) -> Notice:
    withdrawn = await application.withdraw(c, member, insee, notice_id, if_match)
    return notice_response(response, withdrawn, c.clock())


def written(response: Response, notice: Notice, now: datetime) -> Notice:
    """A notice just written, as a route answers it: 202 if it waits for approval."""
    if notice.state is NoticeState.PENDING_APPROVAL:
        # Accepted, not done: nothing goes out until another member of staff approves it.
        response.status_code = 202
    return notice_response(response, notice, now)

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
