"""A channel's HTTP routes, answered over the front door's request-reply (`channels.<ch>.http`).

The front door forwards each request (schemas.channels.ChannelHttpRequest) and returns our
ChannelHttpReply as is. `Router` matches method + path pattern (`/x/{token}`) to a handler;
`serve` answers on the channel's subject in a queue group, so several processes share it.
A request that cannot be read gets a 400, an unknown path a 404, a wrong method a 405;
a handler that crashes gets a 500 and a log line, and the next request is answered; one
whose write a full bucket refused (its max_bytes) gets a 507 that says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from crieur.bus import is_full
from crieur.channel.ratelimit import Network, client_key, within
from schemas import subjects
from schemas.channels import CHANNEL_PATHS, ChannelHttpReply, ChannelHttpRequest, channel_for

log = structlog.get_logger("crieur.channel.http")

STORAGE_FULL = ("Le service ne peut plus enregistrer de nouvelles inscriptions pour le moment ; "
                "réessayez plus tard. Vous pouvez toujours vous désinscrire.")

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One forwarded request, with the path parameters its route captured."""

    raw: ChannelHttpRequest
    params: dict[str, str]

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def client(self) -> str:
        return self.raw.client_ip

    def client_behind(self, trusted_proxies: Iterable[Network]) -> str:
        """The client's address, through proxies we trust (X-Forwarded-For, right to left).

        The front door forwards the address of its direct peer (uvicorn trusts no
        forwarded header, crieur.serve). Unless that peer is a trusted proxy, the header is
        anyone's to forge: it is ignored. By default no proxy is trusted.
        """
        trusted = tuple(trusted_proxies)
        client = self.raw.client_ip
        if not within(client, trusted):
            return client
        hops = [h.strip() for h in self.header("x-forwarded-for").split(",") if h.strip()]
        for hop in reversed(hops):
            if not within(hop, trusted):
                return hop
        return client

    def client_key(self, trusted_proxies: Iterable[Network]) -> str:
        """What a per-client limit counts: the client's address, its /64 for IPv6."""
        return client_key(self.client_behind(trusted_proxies))

    def header(self, name: str) -> str:
        return self.raw.headers.get(name.lower(), "")

    def json(self) -> Any:
        """The body as JSON; raises HttpError(400) if it is not, or is nested too deep to read."""
        try:
            return json.loads(self.raw.body or "null")
        except ValueError as error:
            raise HttpError(400, "invalid_json", "Le corps de la requête n’est pas du JSON "
                            "valide.") from error
        except RecursionError as error:
            raise HttpError(400, "invalid_json", "Le corps de la requête est imbriqué trop "
                            "profondément pour être lu.") from error

    def form(self) -> dict[str, list[str]]:
        """An HTML form post (application/x-www-form-urlencoded)."""
        return parse_qs(self.raw.body, keep_blank_values=True)


Handler = Callable[[Request], Awaitable[ChannelHttpReply]]


class HttpError(Exception):
    """Raised by a handler: becomes a JSON error reply in the front door's error shape."""

    def __init__(self, status: int, code: str, message: str,
                 fields: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers or {}

    def reply(self) -> ChannelHttpReply:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return json_reply(self.status, {"error": error}, self.headers)


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> ChannelHttpReply:
    return ChannelHttpReply(status=status, headers={"content-type": JSON, **(headers or {})},
                            body=json.dumps(body, ensure_ascii=False))


def html_reply(status: int, body: str, headers: dict[str, str] | None = None) -> ChannelHttpReply:
    return ChannelHttpReply(status=status, body=body, headers={
        "content-type": HTML, "cache-control": "no-store", "referrer-policy": "no-referrer",
        # The pages carry a personal token in their URL: never framed, never leaked onwards.
        "x-frame-options": "DENY", **(headers or {})})


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                    for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        if channel_for(pattern) is not None and pattern not in CHANNEL_PATHS:
            # The front door could only log such a path whole, secrets and all.
            raise ValueError(f"{pattern}: add it to schemas.channels.CHANNEL_PATHS")
        self._routes.append((method.upper(), _compile(pattern), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler
        return register

    async def dispatch(self, raw: ChannelHttpRequest) -> ChannelHttpReply:
        allowed = []
        for method, regex, handler in self._routes:
            found = regex.match(raw.path)
            if found is None:
                continue
            if method != raw.method.upper():
                allowed.append(method)
                continue
            try:
                return await handler(Request(raw, found.groupdict()))
            except HttpError as error:
                return error.reply()
            except Exception as error:
                if is_full(error):
                    # Not a bug, and nothing a retry in a second fixes: the operator must
                    # look (schemas/buckets.py's limits), the resident is told to come back.
                    log.error("channel_storage_full", method=raw.method, route=regex.pattern)
                    return HttpError(507, "storage_full", STORAGE_FULL).reply()
                log.exception("channel_http_handler_failed", method=raw.method,
                              route=regex.pattern)
                return HttpError(500, "internal", "Erreur interne ; réessayez plus tard.").reply()
        if allowed:
            return HttpError(405, "method_not_allowed", "Méthode non autorisée.",
                             headers={"allow": ", ".join(sorted(set(allowed)))}).reply()
        return HttpError(404, "not_found", "Cette adresse n’existe pas.").reply()

    async def answer(self, msg: Msg) -> None:
        try:
            raw = ChannelHttpRequest.model_validate_json(msg.data)
        except ValidationError:
            reply = HttpError(400, "bad_request", "Requête illisible.").reply()
        else:
            reply = await self.dispatch(raw)
        if msg.reply:
            await msg.respond(reply.model_dump_json().encode())

    async def serve(self, nc: Client, channel: str) -> Subscription:
        """Answer `channels.<channel>.http` until the subscription is drained."""
        return await nc.subscribe(subjects.channel_http(channel), queue=f"{channel}-http",
                                  cb=self.answer)
