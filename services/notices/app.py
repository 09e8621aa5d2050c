"""Builds the notices service (the village's front door) from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import nats.errors
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crieur import metrics, trace
from crieur.tasks import Supervisor
from schemas.channels import CHANNEL_PATHS, CHANNEL_ROUTES, REDACTED, SECRET_PARAMETERS, channel_for
from schemas.streams import NOTICES_STREAM
from services.notices import (
    application,
    attachments_api,
    capfeed,
    docs,
    errors,
    group_pages,
    groups,
    previews,
    proposals,
    reach,
    scheduler,
    staff,
    undo,
)
from services.notices.api import Context, channel_router, router
from services.notices.guard import BodyGuard, on_client_gone
from services.notices.pages import pages
from services.notices.settings import NoticesSettings
from services.notices.staff_api import staff_router
from services.notices.staff_pages import pages as staff_pages
from services.notices.store import OWNED_BUCKETS, NatsStore

log = structlog.get_logger("crieur.notices")


class HeadAsGet:
    """HEAD answered as GET without the body (RFC 9110): link checkers, monitoring and
    browsers' prefetch ask HEAD, and FastAPI's routes only answer the methods they name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # In place, not a copy: the request log reads the route the router puts in the scope.
        scope["method"] = "GET"
        await self.app(scope, receive, headers_only)


_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
# The channels' own templates: the front door's route for them is only `<prefix>/{rest}`.
_CHANNEL_TEMPLATES = tuple(
    (template, re.compile("^" + "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
        for i, part in enumerate(re.split(r"\{(\w+)\}", template))) + "$"))
    for template in CHANNEL_PATHS)


def _filled(template: str, params: Mapping[str, Any]) -> str:
    return _PARAMETER.sub(lambda m: REDACTED if m[1] in SECRET_PARAMETERS
                          else str(params.get(m[1], m[0])), template)


def logged_path(scope: Scope) -> str:
    """The path as a log line shows it: its route's template, secret parameters redacted.

    Read once the request is answered: the router has put its route in the scope by then.
    A path under a channel's prefix that no channel template matches is redacted after the
    prefix (it may be a token with a slash too many); a path that reached no route (an
    unknown one, or a body refused before routing) is not written.
    """
    path: str = scope["path"]
    if channel_for(path) is not None:
        for template, regex in _CHANNEL_TEMPLATES:
            found = regex.match(path)
            if found is not None:
                return _filled(template, found.groupdict())
        prefix = max((p for p in CHANNEL_ROUTES if path == p or path.startswith(p + "/")),
                     key=len)
        return prefix if path == prefix else f"{prefix}/{REDACTED}"
    route_template = getattr(scope.get("route"), "path_format", None)
    if isinstance(route_template, str):
        return _filled(route_template, scope.get("path_params", {}))
    return "[not routed]"


# The residents' and staff pages: no script at all, their own styles and images, forms
# posted back here, never framed. /docs sets its own (services.notices.docs).
PAGES_CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    """Every answer: no MIME sniffing, never framed; every HTML page: a CSP unless it has one.

    Headers a route or a channel set (a channel's pages carry their own) are kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGES_CSP)
                message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, with_headers)


class RequestLog:
    """Logs every request once it is answered: method, route, status, time. Never a secret.

    The path is logged as its route's template with the secret parameters (a device token,
    a signed email link, the SMS webhook secret) redacted; the query string is left out
    and headers are not logged at all; the log context is fresh for every request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        # One trace id per request: the events it publishes carry it (crieur.trace).
        structlog.contextvars.bind_contextvars(trace_id=trace.new_trace_id())
        started = time.perf_counter()
        status = 500
        method = scope["method"]  # HeadAsGet answers a HEAD as a GET

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels("notices", f"{status // 100}xx").observe(seconds)
            log.info("http_request", method=method, path=logged_path(scope), status=status,
                     ms=round(seconds * 1000, 1))


def create_app(settings: NoticesSettings, context: Context | None = None) -> FastAPI:
    """The ASGI app; with no context given, it connects to NATS in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context
        store = None
        if ctx is None:
            store = await NatsStore.connect(settings.nats_url)
            ctx = Context(store=store, settings=settings)
        await ctx.store.follow_notices()
        await ctx.store.follow_buckets()
        # Made now, off the loop: no sign-in with an unknown login pays for it.
        await asyncio.to_thread(staff.dummy_hash)
        app.state.context = ctx
        # Staff previews, reach and attachments (issue 11): their own modules and routers.
        app.state.attachments = None  # opened at first use (attachments.attachments_of)
        app.state.reach = reach.ReachCounter(ctx.store.js)
        await app.state.reach.start()
        tasks = Supervisor("notices")
        app.state.tasks = tasks
        # If the scheduler died, scheduled notices would stop going out while /healthz said
        # ok: it is restarted, and /healthz says 503 until it is.
        tasks.start("scheduler", lambda: scheduler.run(ctx.store, ctx.clock,
                                                       settings.schedule_interval_s))
        held = undo.Withdrawals(ctx.store.withdrawals_kv)
        app.state.withdrawals = held

        async def withdraw_held(w: undo.HeldWithdrawal) -> object:
            return await application.withdraw(ctx, w.by, w.commune, w.notice_id)

        # Withdrawals confirmed on the staff pages go once their minute to undo is over.
        tasks.start("withdrawals", lambda: undo.run(held, ctx.clock, withdraw_held,
                                                    settings.schedule_interval_s))
        if settings.cap_feed_urls:  # official alerts in (issue 29)
            tasks.start("capfeed", capfeed.Reader(
                ctx.store, settings.cap_feed_urls, ctx.clock,
                settings.cap_require_signature).runner(settings.cap_poll_s))
        log.info("notices_ready", url=f"http://{settings.http_host}:{settings.http_port}")
        try:
            yield
        finally:
            await tasks.stop()
            await app.state.reach.stop()
            if store is not None:
                await store.close()

    app = FastAPI(
        title="Crieur",
        summary="Public notices of French communes: publish once, reach every channel.",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: /docs is served by us instead.
        docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
    )
    # Who may send a large body, checked before it is read, and every body capped as it
    # streams in (services.notices.guard).
    app.add_middleware(BodyGuard, limit=settings.max_body_bytes,
                       uploads=settings.attachment_max_bytes)
    # Answers the routes did not compress themselves (cached answers come gzipped already).
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog)

    app.add_exception_handler(errors.ApiError, errors.on_api_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    # A JetStream publish needs the server's ack: without it the notice may or may not be
    # stored, and the caller is told how to retry rather than shown a 500.
    for bus_error in (nats.errors.Error, asyncio.TimeoutError):
        app.add_exception_handler(bus_error, errors.on_bus_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, errors.on_unexpected_error)
    app.include_router(router)
    app.include_router(staff_router)
    app.include_router(groups.router)
    app.include_router(proposals.router)
    app.include_router(docs.router)
    app.include_router(previews.router)
    app.include_router(reach.router)
    app.include_router(attachments_api.router)
    app.include_router(channel_router())
    # The mairie's back-office (/staff/..., HTML in French).
    app.include_router(staff_pages)
    app.include_router(group_pages.pages)
    # The residents' pages (HTML, in French); the catch-all under /communes/ goes last.
    app.include_router(pages)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        # 503 while NATS is away: a load balancer sends staff to another front door.
        if not request.app.state.context.store.nc.is_connected:
            return JSONResponse({"status": "nats_disconnected"}, status_code=503)
        tasks: Supervisor = request.app.state.tasks
        if not tasks.healthy:
            return JSONResponse({"status": "task_failing", "tasks": sorted(tasks.failing)},
                                status_code=503)
        return JSONResponse({"status": "ok"})

    async def ready() -> list[str]:
        context: Context | None = getattr(app.state, "context", None)
        if context is None:
            return ["starting"]
        tasks: Supervisor = app.state.tasks
        return [*await metrics.nats_reasons(
                    context.store.nc, [NOTICES_STREAM, *(f"KV_{b.name}" for b in OWNED_BUCKETS)]),
                *(f"task {name}: failed, restarting" for name in sorted(tasks.failing)),
                *metrics.task_reasons(tasks.running())]

    app.router.routes.extend(metrics.Readiness(ready).routes())
    return app
