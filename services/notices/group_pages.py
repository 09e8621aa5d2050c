"""The staff pages for a group of communes (/staff/groups/...), in French, without JavaScript.

A member scoped to a group (`crieur staff add --group`) publishes one notice for every
registered commune of the group, and corrects or withdraws it for all of them at once. Each
action calls the same function as the JSON API (groups.py), so each commune's approval
rules apply as there: a commune that approves its alerts first holds its copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from schemas import NoticeDraft, NoticePatch, NoticeState
from services.notices import api, application, errors, groups
from services.notices.api import ctx
from services.notices.attachments import Resolver
from services.notices.auth import same
from services.notices.errors import ApiError
from services.notices.staff_pages import (
    FIELD_LABELS,
    LINK_ROWS,
    SignedIn,
    api_failure,
    draft_fields,
    field_problems,
    forbidden_csrf,
    form_values,
    french_error,
    local_input,
    log,
    message,
    page,
    patch_fields,
    read_form,
    signed_in,
    text,
    to,
)

pages = APIRouter(prefix="/staff/groups", include_in_schema=False)

GroupHandler = Callable[[Request, SignedIn, groups.Group], Awaitable[Response]]


async def group_guarded(request: Request, group_id: str, handler: GroupHandler, *,
                        post: bool) -> Response:
    """Sign-in, group scope and (for a form) CSRF checks around a group's page."""
    who = await signed_in(request)
    if who is None:
        if post:
            return message(403, "Session expirée", ["Votre session a expiré : reconnectez-vous."])
        return to(f"/staff/login?next={quote(request.url.path)}")
    try:
        group = await groups.member_group(ctx(request), group_id, who.member)
    except ApiError:
        # The same answer whether the group exists or not: nothing to learn from it.
        return message(403, "Accès refusé", ["Vous n'avez pas accès à ce groupe."], who)
    if post:
        form = await read_form(request)
        if form is None or not same(text(form, "csrf", 200), who.session.csrf):
            log.warning("staff_csrf_refused", path=request.url.path)
            return forbidden_csrf(who)
        request.state.form = form
    return await handler(request, who, group)


async def registered_names(request: Request) -> dict[str, str]:
    return {x.insee: x.name for x in await ctx(request).store.commune_registry.all()}


async def registered_in(request: Request, group: groups.Group) -> int:
    names = await registered_names(request)
    return sum(1 for i in group.communes if i in names)


def failure(error: ApiError) -> tuple[dict[str, str], str]:
    """An API refusal for a form: its fields' problems, else one French sentence."""
    named = {f["field"].split(".")[0]: french_error({"msg": f["message"]})
             for f in error.fields or ()}
    if named:
        return named, ""
    if error.kind is errors.INVALID:  # a correction refused as a whole (lifecycle.py)
        return {}, french_error({"msg": error.message})
    return {}, api_failure(error)


@pages.get("/{group_id}", response_class=HTMLResponse)
async def group_page(request: Request, group_id: str) -> Response:
    async def show(request: Request, who: SignedIn, group: groups.Group) -> Response:
        c = ctx(request)
        rows = []
        for broadcast in await groups.registry(c).broadcasts(group.id):
            first = broadcast.copies[0] if broadcast.copies else None
            notice = await application.stored(c, first.commune, first.notice_id) if first else None
            rows.append({"broadcast": broadcast,
                         "notice": api.shown(notice, c.clock()) if notice else None})
        return page("group.html", me=who.account, csrf=who.session.csrf, group=group,
                    registered=await registered_in(request, group), rows=rows,
                    flash=request.query_params.get("ok", "")[:40])

    return await group_guarded(request, group_id, show, post=False)


def compose_page(who: SignedIn, group: groups.Group, values: dict[str, Any], registered: int,
                 problems: dict[str, str] | None = None, status: int = 200,
                 error: str = "") -> HTMLResponse:
    return page("group_compose.html", status=status, me=who.account, csrf=who.session.csrf,
                group=group, v=values, problems=problems or {}, error=error,
                registered=registered, field_labels=FIELD_LABELS)


@pages.get("/{group_id}/compose", response_class=HTMLResponse)
async def compose(request: Request, group_id: str) -> Response:
    async def show(request: Request, who: SignedIn, group: groups.Group) -> Response:
        return compose_page(who, group, form_values(None), await registered_in(request, group))

    return await group_guarded(request, group_id, show, post=False)


@pages.post("/{group_id}/publish", response_class=HTMLResponse)
async def publish(request: Request, group_id: str) -> Response:
    async def act(request: Request, who: SignedIn, group: groups.Group) -> Response:
        form: FormData = request.state.form
        values = form_values(form)
        values["attachments"] = []  # a group's form has no upload: files live in a commune
        registered = await registered_in(request, group)
        fields, problems = draft_fields(values)
        try:
            draft = NoticeDraft.model_validate(fields)
        except ValidationError as error:
            return compose_page(who, group, values, registered,
                                field_problems(error) | problems, 422)
        if problems:
            return compose_page(who, group, values, registered, problems, 422)
        try:
            published = await groups.publish(ctx(request), who.member, group.id, draft,
                                             Resolver(request), values["key"])
        except ApiError as error:
            return compose_page(who, group, values, registered, *failure(error)[:1],
                                error.kind.status, failure(error)[1])
        return to(f"/staff/groups/{group.id}/notices/{published.broadcast.id}"
                  "?ok=broadcast-published")

    return await group_guarded(request, group_id, act, post=True)


async def broadcast_page(request: Request, who: SignedIn, group: groups.Group,
                         broadcast_id: str, problems: dict[str, str] | None = None,
                         error: str = "", status: int = 200,
                         values: dict[str, Any] | None = None) -> Response:
    c = ctx(request)
    try:
        broadcast = await groups.get_broadcast(c, who.member, group.id, broadcast_id, request)
    except ApiError:
        return message(404, "Avis introuvable", ["Cette publication n'existe pas dans ce "
                                                 "groupe."], who)
    now = c.clock()
    latest = None
    if broadcast.copies:
        # Every copy has the same text: the first commune's latest version shows it.
        first = broadcast.copies[0]
        _, sent, waiting = await application.find_latest(c, first.commune, first.notice_id)
        latest = api.shown(waiting or sent, now)
    if values is None and latest is not None:
        links = [{"url": str(x.url), "label": x.label} for x in latest.links]
        links += [{"url": "", "label": ""} for _ in range(LINK_ROWS - len(links))]
        values = {"category": latest.category.value, "title": latest.title,
                  "body": latest.body, "starts_at": local_input(latest.starts_at),
                  "ends_at": local_input(latest.ends_at),
                  "publish_at": local_input(latest.publish_at), "links": links}
    states = Counter(x.state.value for x in broadcast.copies if x.state is not None)
    withdrawn = bool(broadcast.copies) and states.get(NoticeState.WITHDRAWN.value, 0) == len(
        broadcast.copies)
    return page("group_notice.html", status=status, now=now, me=who.account,
                csrf=who.session.csrf, group=group, broadcast=broadcast, latest=latest,
                states=sorted(states.items()), names=await registered_names(request),
                v=values or {}, problems=problems or {}, error=error,
                editable=latest is not None and not withdrawn, field_labels=FIELD_LABELS,
                flash=request.query_params.get("ok", "")[:40])


@pages.get("/{group_id}/notices/{broadcast_id}", response_class=HTMLResponse)
async def one_broadcast(request: Request, group_id: str, broadcast_id: str) -> Response:
    async def show(request: Request, who: SignedIn, group: groups.Group) -> Response:
        return await broadcast_page(request, who, group, broadcast_id)

    return await group_guarded(request, group_id, show, post=False)


@pages.post("/{group_id}/notices/{broadcast_id}/correct", response_class=HTMLResponse)
async def correct(request: Request, group_id: str, broadcast_id: str) -> Response:
    async def act(request: Request, who: SignedIn, group: groups.Group) -> Response:
        values = form_values(request.state.form)
        try:
            patch = NoticePatch.model_validate(patch_fields(values))
        except ValidationError as error:
            return await broadcast_page(request, who, group, broadcast_id,
                                        field_problems(error), status=422, values=values)
        try:
            await groups.correct_broadcast(ctx(request), who.member, group.id, broadcast_id,
                                           patch, request)
        except ApiError as error:
            return await broadcast_page(request, who, group, broadcast_id, *failure(error),
                                        status=error.kind.status, values=values)
        return to(f"/staff/groups/{group.id}/notices/{broadcast_id}?ok=broadcast-corrected")

    return await group_guarded(request, group_id, act, post=True)


@pages.post("/{group_id}/notices/{broadcast_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, group_id: str, broadcast_id: str) -> Response:
    async def act(request: Request, who: SignedIn, group: groups.Group) -> Response:
        try:
            await groups.withdraw_broadcast(ctx(request), who.member, group.id, broadcast_id,
                                            request)
        except ApiError as error:
            return await broadcast_page(request, who, group, broadcast_id,
                                        error=api_failure(error), status=error.kind.status)
        return to(f"/staff/groups/{group.id}/notices/{broadcast_id}?ok=broadcast-withdrawn")

    return await group_guarded(request, group_id, act, post=True)
