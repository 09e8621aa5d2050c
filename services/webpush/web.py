"""The resident's routes (answered over the front door's request-reply) and the files the
commune page needs to receive alerts in the browser.

    GET  /api/v1/webpush/key                     {"public_key"}: the VAPID key, base64url
    GET  /api/v1/webpush/{sw.js,page.js,icon.svg}
    GET  /api/v1/webpush/manifest/{commune}      the web app manifest (the page installs)
    POST /api/v1/subscriptions/webpush           {"subscription", "follows"}: 201, or 200
                                                 when it replaces what the browser follows
    POST /api/v1/subscriptions/webpush/current   {"endpoint"}: what it follows, or 404
    POST /api/v1/subscriptions/webpush/delete    {"endpoint"}: 204, forgotten
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crieur.channel.http_bridge import HttpError, Request, Router, json_reply
from crieur.channel.ratelimit import LimitUnavailable, Network, SharedLimit
from crieur.channel.recipients import Follow, merge_follows
from schemas.channels import ChannelHttpReply
from schemas.commune import Commune
from services.webpush.subscriptions import (
    PushSubscription,
    Registry,
    Subscriber,
    endpoint_problem,
    recipient_id,
)

log = structlog.get_logger("crieur.webpush")

STATIC = Path(__file__).parent / "static"
ASSETS = {"sw.js": "text/javascript; charset=utf-8", "page.js": "text/javascript; charset=utf-8",
          "icon.svg": "image/svg+xml"}


class Registration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription: PushSubscription
    follows: tuple[Follow, ...] = Field(min_length=1, max_length=50)


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(min_length=1, max_length=2000)


def invalid(problems: list[dict[str, str]]) -> HttpError:
    return HttpError(422, "invalid_input", "Abonnement invalide.", fields=problems)


def read(model: type[BaseModel], request: Request) -> Any:
    try:
        return model.model_validate(request.json())
    except ValidationError as error:
        raise invalid([{"field": ".".join(str(p) for p in e["loc"]) or "body",
                        "message": str(e["msg"]).removeprefix("Value error, ")}
                       for e in error.errors()]) from error


class Routes:
    def __init__(self, registry: Registry, public_key: str,
                 commune: Callable[[str], Awaitable[Commune | None]], *,
                 extra_hosts: frozenset[str], per_client: SharedLimit,
                 clock: Callable[[], datetime],
                 trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.registry = registry
        self.public_key = public_key
        self.commune = commune
        self.extra_hosts = extra_hosts
        # Counted by every process together and kept across restarts (bucket webpush_limits).
        self.per_client = per_client
        self.clock = clock
        self.trusted_proxies = trusted_proxies
        self.assets = {name: (STATIC / name).read_text() for name in ASSETS}

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/api/v1/webpush/key", self.key)
        router.add("GET", "/api/v1/webpush/manifest/{commune}", self.manifest)
        router.add("GET", "/api/v1/webpush/{asset}", self.asset)
        router.add("POST", "/api/v1/subscriptions/webpush", self.subscribe)
        router.add("POST", "/api/v1/subscriptions/webpush/current", self.current)
        router.add("POST", "/api/v1/subscriptions/webpush/delete", self.delete)
        return router

    async def key(self, request: Request) -> ChannelHttpReply:
        return json_reply(200, {"public_key": self.public_key})

    async def asset(self, request: Request) -> ChannelHttpReply:
        name = request.params["asset"]
        if name not in ASSETS:
            raise HttpError(404, "not_found", "Cette adresse n’existe pas.")
        # The worker's scope is the commune pages, above its own path.
        extra = {"service-worker-allowed": "/"} if name == "sw.js" else {}
        return ChannelHttpReply(status=200, body=self.assets[name], headers={
            "content-type": ASSETS[name], "cache-control": "no-cache", **extra})

    async def manifest(self, request: Request) -> ChannelHttpReply:
        commune = await self.commune(request.params["commune"])
        if commune is None:
            raise HttpError(404, "not_found", "Commune inconnue.")
        page = f"/communes/{commune.insee}"
        body = {"name": f"Avis de {commune.name}", "short_name": commune.name[:12],
                "lang": "fr", "start_url": page, "scope": "/communes/", "id": page,
                "display": "standalone", "background_color": "#ffffff",
                "theme_color": "#000091", "icons": [
                    {"src": "/api/v1/webpush/icon.svg", "sizes": "any",
                     "type": "image/svg+xml", "purpose": "any"}]}
        return ChannelHttpReply(status=200, body=json.dumps(body, ensure_ascii=False), headers={
            "content-type": "application/manifest+json", "cache-control": "no-cache"})

    async def _limit(self, request: Request) -> None:
        # A hash: the bucket holds no client address.
        client = hashlib.sha256(b"webpush-client:" + request.client_key(
            self.trusted_proxies).encode()).hexdigest()[:32]
        try:
            refused = await self.per_client.hit(client)
        except LimitUnavailable as error:
            log.warning("webpush_limit_unavailable", error=str(error))
            raise HttpError(503, "channel_unavailable", "Les notifications sont "
                            "momentanément indisponibles ; réessayez plus tard.") from error
        if refused is not None:
            if refused.first:
                log.warning("webpush_limit_reached", limit=self.per_client.prefix)
            raise HttpError(429, "rate_limited", "Trop de demandes ; réessayez plus tard.",
                            headers={"retry-after": str(int(refused.retry_after_s) + 1)})

    async def subscribe(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        body: Registration = read(Registration, request)
        problem = endpoint_problem(body.subscription.endpoint, self.extra_hosts)
        if problem is not None:
            raise invalid([{"field": "subscription.endpoint", "message": problem}])
        for i, follow in enumerate(body.follows):
            if await self.commune(follow.commune) is None:
                raise invalid([{"field": f"follows.{i}.commune",
                                "message": f"la commune {follow.commune} n’utilise pas Crieur"}])
        rid = recipient_id(body.subscription.endpoint)
        wanted = merge_follows((), body.follows)  # one per commune, in a stable order
        known: list[Subscriber] = []

        def replace(current: Subscriber | None) -> Subscriber:
            known[:] = [current] if current else []
            return Subscriber(endpoint=body.subscription.endpoint,
                              p256dh=body.subscription.keys.p256dh,
                              auth=body.subscription.keys.auth, follows=wanted,
                              created_at=current.created_at if current else self.clock())

        await self.registry.change(rid, replace)
        log.info("webpush_subscribed", recipient=rid[:12], again=bool(known),
                 follows=len(wanted))
        return json_reply(200 if known else 201, view(rid, wanted))

    async def current(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        rid = recipient_id(read(Endpoint, request).endpoint)
        found = await self.registry.get(rid)
        if found is None:
            raise HttpError(404, "not_subscribed", "Cet appareil n’est pas abonné.")
        return json_reply(200, view(rid, found[0].follows))

    async def delete(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        rid = recipient_id(read(Endpoint, request).endpoint)
        await self.registry.forget(rid)
        log.info("webpush_unsubscribed", recipient=rid[:12])
        return ChannelHttpReply(status=204)


def view(rid: str, follows: tuple[Follow, ...]) -> dict[str, Any]:
    return {"subscription": rid[:16],
            "follows": [{"commune": f.commune, "categories": [c.value for c in f.categories]}
                        for f in follows]}
