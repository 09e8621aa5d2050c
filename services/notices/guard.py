"""The front door's guard on request bodies: who may send a large one, and how large.

A body over LARGE_BODY bytes (or of unknown length: chunked) is read only from staff,
whose credentials (a Bearer token, or a staff session cookie) are checked on the headers,
before any byte of the body: 40 unauthenticated uploads of 5 MB left unfinished used to be
buffered in full before anything looked at who sent them (issue 25). Every body is capped
while it streams in, never buffered here: past its route's limit the client is answered
413 and the route is told the client left, so a route holds at most the limit.
"""

from __future__ import annotations

from typing import Any

import nats.errors
import structlog
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.channels import channel_for
from services.notices import attachments, errors
from services.notices.auth import SESSION_COOKIE, Sessions, still_valid
from services.notices.staff_pages import too_large_page

log = structlog.get_logger("crieur.notices.guard")

# A channel's request crosses NATS as one message holding its body twice (as text, JSON-
# escaped, and in base64): it must stay under the server's max_payload (1 MB by default)
# whatever the bytes. Subscriptions, devices and webhooks need a few KB.
CHANNEL_BODY_LIMIT = 64 * 1024
# Larger than this, a body is read only from staff: no resident's form comes near it.
LARGE_BODY = 64 * 1024

LARGE_BODY_UNAUTHORIZED = (
    "a request body over 64 KB (or of unknown length) needs staff credentials: "
    "Authorization: Bearer <token>, or a staff session")


class BodyGuard:
    """Refuses on the headers what it can (413 by declared length, 401 for an anonymous large
    body) and counts the rest as it streams, without buffering it."""

    def __init__(self, app: ASGIApp, limit: int, uploads: int = 0) -> None:
        self.app = app
        self.default = limit
        # Attachment uploads may be larger than any JSON body (CRIEUR_ATTACHMENT_MAX_BYTES).
        self.uploads = max(limit, uploads)
        self.channels = min(limit, CHANNEL_BODY_LIMIT)

    def limit(self, path: str) -> int:
        if attachments.is_upload(path):
            # The form's other fields (title, text, links) travel with the file.
            return self.uploads + attachments.FORM_MARGIN
        return self.channels if channel_for(path) is not None else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        headers = Headers(scope=scope)
        declared_text = headers.get("content-length")
        declared = int(declared_text) if declared_text and declared_text.isdigit() else None
        chunked = "transfer-encoding" in headers
        if declared is not None and declared > limit:
            await self.refuse(scope, send, too_large=True)
            return
        if chunked or (declared or 0) > LARGE_BODY:
            try:
                allowed = await is_staff(scope)
            except (TimeoutError, nats.errors.Error) as error:
                log.warning("bus_unavailable", error=repr(error))
                await answer(scope, send, errors.BUS_UNAVAILABLE, errors.BUS_UNAVAILABLE.message)
                return
            if not allowed:
                await answer(scope, send, errors.UNAUTHORIZED, LARGE_BODY_UNAUTHORIZED)
                return
        await self.capped(scope, receive, send, limit)

    async def capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """The app, reading the body chunk by chunk as it arrives, up to `limit` bytes."""
        size = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal size, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    refused = True
                    if not started:
                        await self.refuse(scope, send, too_large=True)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the client was answered 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            # The route failed on the disconnect it was told of: the client has its 413.
            if not refused:
                raise

    async def refuse(self, scope: Scope, send: Send, *, too_large: bool) -> None:
        if scope["path"].startswith("/staff/"):
            # A person at a browser: a French page, never the API's JSON.
            page = too_large_page(self.uploads)
            page.headers["Connection"] = "close"
            await page(scope, _nothing, send)
            return
        upload = attachments.is_upload(scope["path"])
        kind = errors.ATTACHMENT_TOO_LARGE if upload else errors.BODY_TOO_LARGE
        # An upload's limit as staff know it (CRIEUR_ATTACHMENT_MAX_BYTES), not with the
        # margin left for the form's other fields.
        limit = self.uploads if upload else self.limit(scope["path"])
        await answer(scope, send, kind, kind.message.format(limit=limit))


async def answer(scope: Scope, send: Send, kind: errors.ErrorKind, message: str) -> None:
    """An error answered without reading the body; the connection closes after it, so the
    unread body is never parsed."""
    headers = {"Connection": "close"}
    if kind.status == 503:
        headers["Retry-After"] = "5"
    response = JSONResponse(errors.error_body(kind.code, message), status_code=kind.status,
                            headers=headers)

    await response(scope, _nothing, send)


async def _nothing() -> Message:
    """The body is never read: the connection closes after the answer."""
    return {"type": "http.disconnect"}


async def is_staff(scope: Scope) -> bool:
    """A live staff token in Authorization, or a live staff session in its cookie."""
    connection = HTTPConnection(scope)
    context: Any = getattr(connection.app.state, "context", None)
    if context is None:
        return False
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return await context.store.staff_registry.for_token(token.strip()) is not None
    session_id = connection.cookies.get(SESSION_COOKIE, "")
    if not session_id:
        return False
    session = await Sessions(context.store.sessions).get(session_id, context.clock())
    if session is None:
        return False
    return still_valid(session, await context.store.staff_registry.account(session.login))


# nginx's "client closed request": never sent (no one is there), only logged.
CLIENT_GONE = 499


async def on_client_gone(_: Request, error: Exception) -> Response:
    """A body that ended in a disconnect: the client left, or was answered 408 or 413 and
    cut off. Not an error of ours, so not a 500 with a traceback."""
    assert isinstance(error, ClientDisconnect)
    log.info("client_gone_while_sending")
    return Response(status_code=CLIENT_GONE)
