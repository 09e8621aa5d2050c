"""Bounds on how long and how many clients may hold a service's HTTP server (issue 25).

uvicorn bounds the idle time between two requests (`timeout_keep_alive`) and the size of a
request's head (h11's 16 KB), but not the time a client takes to send the head or the
body: a client that opens a connection and sends one byte every few seconds, or nothing
at all, holds it for ever. With a connection limit, a few hundred such clients would then
turn every resident away with 503. Two bounds close that:

- `HeaderTimeoutH11`: the request line and headers must arrive within
  CRIEUR_HTTP_HEADER_TIMEOUT_S of the connection opening (or of the first byte of a
  following request on a kept-alive connection), else the connection is closed;
- `BodyReadTimeout`: while a body is being read, each chunk must arrive within
  CRIEUR_HTTP_BODY_TIMEOUT_S, else the client is answered 408 and the connection closed.

The reverse proxy in front (deploy/) bounds the same times first; these hold when it is
misconfigured or bypassed on the host.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("crieur.http")


class HttpLimits(BaseSettings):
    """CRIEUR_HTTP_*: the same for every service (docs/operations/deployment.md, reverse proxy)."""

    model_config = SettingsConfigDict(env_prefix="CRIEUR_HTTP_", extra="ignore")

    # Time for a request's line and headers to arrive.
    header_timeout_s: float = 10.0
    # Longest wait for the next chunk of a request body.
    body_timeout_s: float = 10.0
    # Open connections plus requests in flight, beyond which requests are answered 503.
    max_connections: int = 500
    # Connections the kernel queues before they are accepted.
    backlog: int = 2048
    # Idle time allowed between two requests on one connection.
    keep_alive_s: int = 5


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is too slow to come.

    Armed when the connection opens (a client that connects and says nothing is the
    cheapest way to hold a connection) and on the first byte of each following request;
    disarmed once the head is parsed, from which point the body timeout takes over.
    """

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm_header_timer()
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm_header_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm_header_timer()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                      self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            # No response: h11 cannot answer a request it has not read, and nginx does the
            # same (it logs 408 and closes).
            log.info("http_header_timeout", seconds=self.header_timeout_s)
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11]:
    """The protocol class uvicorn instantiates per connection, with this header timeout."""
    return type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout_s": seconds})


BODY_TIMEOUT_BODY = json.dumps({"error": {
    "code": "body_timeout",
    "message": "the request body arrived too slowly; send it again"}}).encode()


class BodyReadTimeout:
    """Answers 408 when a request body's next chunk takes longer than `timeout_s`.

    Only while the body is being read: once it is complete, the app may wait for the
    client's disconnect as long as it likes. After the 408, the app is told the client
    left (`http.disconnect`) and whatever it answers is dropped, so no route reads on.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                timed_out = True
                log.info("http_body_timeout", seconds=self.timeout_s, answered=not started)
                if not started:
                    await send({"type": "http.response.start", "status": 408, "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(BODY_TIMEOUT_BODY)).encode()),
                        (b"connection", b"close")]})
                    await send({"type": "http.response.body", "body": BODY_TIMEOUT_BODY})
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the client was answered 408 already
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except Exception:
            # The app failed on the disconnect it was told of: the client has its answer.
            if not timed_out:
                raise
