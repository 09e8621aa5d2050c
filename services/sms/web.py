"""The SMS channel's HTTP routes, over the front door's request-reply (`channels.sms.http`).

Residents: subscribe with a number and get a code by SMS, confirm it, ask to delete
everything (also by code). No answer tells whether a number was known. Public means
hostile: only mobiles of CRIEUR_SMS_COUNTRIES, limits per client (/64 for IPv6) and per
number, and an hourly budget of code SMS, all counted in NATS KV by every process (`Limits`).
Providers: the webhooks /webhooks/sms/inbound and /receipts with the secret in
X-Crieur-Webhook-Secret, or under /webhooks/sms/<secret>/ (replies such as STOP, delivery
receipts); a call without the right secret gets 404 and changes nothing. Staff: the SMS
preview.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crieur import french, metrics
from crieur.channel.http_bridge import HttpError, Request, Router, json_reply
from crieur.channel.ratelimit import LimitUnavailable, Network, Refused, SharedLimit
from schemas.channels import ChannelHttpReply
from schemas.commune import Insee
from schemas.notice import Category
from services.sms import format as compose
from services.sms.phones import BadNumber, code_hash, normalise, number_prefix, recipient_id
from services.sms.sender import Receipt, read_receipt, read_reply
from services.sms.subscribers import (
    Follow,
    PendingCode,
    Purpose,
    Registry,
    Subscriber,
    merge_follows,
)

log = structlog.get_logger("crieur.sms.web")

PREFIX = "/api/v1/subscriptions/sms"
WEBHOOKS = "/webhooks/sms"
PREVIEW = "/api/v1/previews/sms"
# The webhook secret travels in this header (/webhooks/sms/inbound, /receipts): a path is
# written to access logs everywhere (proxies, the provider's), a header seldom.
WEBHOOK_HEADER = "X-Crieur-Webhook-Secret"

SENT_CODE = ("Si ce numéro peut recevoir nos SMS, un code vient de lui être envoyé : "
             "saisissez-le pour confirmer.")
BAD_CODE = "Code invalide ou expiré. Demandez un nouveau code."
BUDGET_REACHED = ("Trop de codes ont été envoyés récemment ; réessayez dans une heure. "
                  "Vous pouvez aussi suivre les avis par e-mail ou sur l’application.")
# "stop", "Stop ", "STOP SMS", "stôp", "ARRÊT": letters only, accents off, any case.
_STOP = re.compile(r"^(STOP(SMS|ALL)?|ARRET|DESINSCRIPTION|DESABONNEMENT)$")


def is_stop(text: str) -> bool:
    letters = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in letters if c.isalpha() and c.isascii()).upper()
    return bool(_STOP.match(letters))


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: str = Field(min_length=4, max_length=40)
    follows: tuple[Follow, ...] = Field(min_length=1, max_length=20)


class PhoneRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: str = Field(min_length=4, max_length=40)


class ManageRequest(BaseModel):
    """One commune's SMS for a number: these categories from now on, or none (stop)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: str = Field(min_length=4, max_length=40)
    commune: Insee
    categories: tuple[Category, ...] = Field(default=(), max_length=len(Category))


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: str = Field(min_length=4, max_length=40)
    code: str = Field(min_length=1, max_length=20)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=5000)
    transliterate: bool = True


# (number E.164, the SMS) -> sent by the provider now; may raise.
SendNow = Callable[[str, compose.Sms], Awaitable[None]]
CommuneName = Callable[[str], Awaitable[str | None]]
# A receipt -> recorded on DELIVERIES (False: unknown message id).
RecordReceipt = Callable[[Receipt], Awaitable[bool]]


def _fields(error: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in error.errors()]


async def _hit(limit: SharedLimit, key: str) -> Refused | None:
    """One hit on a shared limit; 503 when it cannot be counted (no limit, no SMS)."""
    try:
        return await limit.hit(key)
    except LimitUnavailable as error:
        log.warning("sms_limit_unavailable", limit=limit.prefix, error=str(error))
        raise HttpError(503, "channel_unavailable", "Le service SMS est momentanément "
                        "indisponible ; réessayez plus tard.") from error


async def _limit(limit: SharedLimit, key: str) -> None:
    refused = await _hit(limit, key)
    if refused is not None:
        raise HttpError(429, "rate_limited", "Trop de demandes ; réessayez plus tard.",
                        headers={"retry-after": str(int(refused.retry_after_s) + 1)})


@dataclass(frozen=True)
class Limits:
    """The residents' limits, shared by every process (crieur.channel.ratelimit.SharedLimit).

    Per client address (its /64 for IPv6) and per number, then the budget of code SMS: in
    all and per number prefix, what caps the bill whatever the addresses and numbers used.
    """

    per_client: SharedLimit
    per_number: SharedLimit
    codes: SharedLimit
    codes_per_prefix: SharedLimit


@dataclass
class Web:
    registry: Registry
    key: str
    commune_name: CommuneName
    send_now: SendNow
    record_receipt: RecordReceipt
    clock: Callable[[], datetime]
    limits: Limits
    webhook_secret: str | None
    # Regions whose mobiles may subscribe (None: any).
    countries: frozenset[str] | None = None
    # Proxies whose X-Forwarded-For is believed (CRIEUR_TRUSTED_PROXIES).
    trusted_proxies: tuple[Network, ...] = ()
    code_ttl_s: int = 900
    code_attempts: int = 5
    transliterated: bool = True
    # None when the channel is off (no provider): residents get 503, previews still work.
    enabled: bool = True
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def router(self) -> Router:
        router = Router()
        router.add("POST", PREFIX, self.subscribe)
        router.add("POST", PREFIX + "/confirm", self.confirm)
        router.add("POST", PREFIX + "/delete", self.delete)
        router.add("POST", PREFIX + "/manage", self.manage)
        for method in ("GET", "POST"):
            router.add(method, WEBHOOKS + "/inbound", self.inbound)
            router.add(method, WEBHOOKS + "/receipts", self.receipts)
            # The first form, the secret in the path: kept for providers that cannot send a
            # header (OVHcloud's callbacks); the front door logs it redacted.
            router.add(method, WEBHOOKS + "/{secret}/inbound", self.inbound)
            router.add(method, WEBHOOKS + "/{secret}/receipts", self.receipts)
        router.add("POST", PREVIEW, self.preview)
        return router

    async def drain(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=10)

    # -- residents ----------------------------------------------------------------------

    def _on(self) -> None:
        if not self.enabled:
            raise HttpError(503, "channel_off", "Le service SMS n’est pas disponible.")

    def _number(self, raw: str) -> str:
        try:
            return normalise(raw, allowed=self.countries)
        except BadNumber as error:
            raise HttpError(422, "invalid_input", "Numéro de téléphone invalide.",
                            fields=[{"field": "phone", "message": str(error)}]) from error

    def _client(self, request: Request) -> str:
        """The client's limit key: a keyed hash, so no address is kept in the bucket."""
        address = request.client_key(self.trusted_proxies)
        return hmac.new(self.key.encode(), b"client:" + address.encode(),
                        "sha256").hexdigest()[:32]

    async def _within_budget(self, number: str) -> None:
        """Counts one code SMS against the hour's budget; 429 (said once) when it is spent."""
        prefix = number_prefix(number)
        for scope, limit, key in (("prefix", self.limits.codes_per_prefix, prefix),
                                  ("all", self.limits.codes, "all")):
            refused = await _hit(limit, key)
            if refused is None:
                continue
            metrics.SMS_CODE_BUDGET_REFUSED.labels(scope).inc()
            if refused.first:
                # Once per window and scope across every process: the hit that reached it.
                log.warning("sms_code_budget_reached", scope=scope,
                            prefix=prefix if scope == "prefix" else None,
                            budget=limit.limit, resets_in_s=int(refused.retry_after_s))
            raise HttpError(429, "code_budget_reached", BUDGET_REACHED,
                            headers={"retry-after": str(int(refused.retry_after_s) + 1)})

    def _body(self, request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate(request.json())
        except ValidationError as error:
            raise HttpError(422, "invalid_input", "Demande invalide.",
                            fields=_fields(error)) from error

    async def subscribe(self, request: Request) -> ChannelHttpReply:
        self._on()
        await _limit(self.limits.per_client, self._client(request))
        body: SubscribeRequest = self._body(request, SubscribeRequest)
        number = self._number(body.phone)
        names = []
        for i, follow in enumerate(body.follows):
            name = await self.commune_name(follow.commune)
            if name is None:
                raise HttpError(422, "invalid_input", "Commune inconnue.", fields=[
                    {"field": f"follows.{i}.commune",
                     "message": f"la commune {follow.commune} n’utilise pas ce service"}])
            names.append(name)
        rid = recipient_id(self.key, number)
        await _limit(self.limits.per_number, rid)
        await self._within_budget(number)
        await self._send_code(rid, number, Purpose.SUBSCRIBE, body.follows, names)
        return json_reply(202, {"status": "pending", "message": SENT_CODE})

    async def delete(self, request: Request) -> ChannelHttpReply:
        """Delete all my data: a code by SMS first (only the phone's owner may)."""
        self._on()
        await _limit(self.limits.per_client, self._client(request))
        body: PhoneRequest = self._body(request, PhoneRequest)
        number = self._number(body.phone)
        rid = recipient_id(self.key, number)
        await _limit(self.limits.per_number, rid)
        # Counted whether the number is known or not: a spent budget must not tell.
        await self._within_budget(number)
        if await self.registry.get(rid) is not None:
            await self._send_code(rid, number, Purpose.DELETE, (), [])
        # The same answer whether the number was known or not.
        return json_reply(202, {"status": "pending", "message": SENT_CODE})

    async def manage(self, request: Request) -> ChannelHttpReply:
        """Change what one commune sends to my number, or stop it: a code by SMS first, as
        for deleting (the same limits and budget; the same answer for an unknown number)."""
        self._on()
        await _limit(self.limits.per_client, self._client(request))
        body: ManageRequest = self._body(request, ManageRequest)
        number = self._number(body.phone)
        rid = recipient_id(self.key, number)
        await _limit(self.limits.per_number, rid)
        await self._within_budget(number)
        if await self.registry.get(rid) is not None:
            follows = ((Follow(commune=body.commune, categories=body.categories),)
                       if body.categories else ())
            await self._send_code(rid, number, Purpose.MANAGE, follows, [],
                                  commune=body.commune)
        return json_reply(202, {"status": "pending", "message": SENT_CODE})

    async def _send_code(self, rid: str, number: str, purpose: Purpose,
                         follows: tuple[Follow, ...], names: list[str],
                         commune: str | None = None) -> None:
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self.clock()
        pending = PendingCode(hash=code_hash(self.key, rid, code), purpose=purpose,
                              follows=follows, commune=commune,
                              expires_at=now + timedelta(seconds=self.code_ttl_s))

        def put_code(current: Subscriber | None) -> Subscriber | None:
            # An unknown number is kept unconfirmed (it gets nothing until confirmed); a
            # known one keeps what it follows until its owner types the code.
            base = current or Subscriber(phone=number, created_at=now)
            return base.model_copy(update={"code": pending})

        await self.registry.change(rid, put_code)
        if purpose in (Purpose.DELETE, Purpose.MANAGE):
            said = french.DELETE_CODE_SMS if purpose is Purpose.DELETE else french.MANAGE_CODE_SMS
            text = said.format(code=code, minutes=max(1, self.code_ttl_s // 60))
            sms = compose.prepare_text(text, self.transliterated)
        else:
            sms = compose.compose_code(code, names, self.transliterated,
                                       valid_s=self.code_ttl_s)
        self._in_background(self._deliver(rid, number, sms, "sms_code_sent"))

    def _in_background(self, sending: Awaitable[None]) -> None:
        task = asyncio.ensure_future(sending)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver(self, rid: str, number: str, sms: compose.Sms, event: str) -> None:
        """One SMS to one resident now, paced with every other SMS (send_now)."""
        try:
            await self.send_now(number, sms)
            log.info(event, recipient=rid[:12])
        except Exception as error:
            log.warning("sms_send_now_failed", recipient=rid[:12], sent_for=event,
                        error=str(error)[:200])

    async def confirm(self, request: Request) -> ChannelHttpReply:
        self._on()
        await _limit(self.limits.per_client, self._client(request))
        body: ConfirmRequest = self._body(request, ConfirmRequest)
        try:
            number = normalise(body.phone)
        except BadNumber:
            raise HttpError(400, "invalid_code", BAD_CODE) from None
        # Guessing is bounded by the code's attempts, and new codes by the number's limit.
        rid = recipient_id(self.key, number)
        now = self.clock()
        expected = code_hash(self.key, rid, body.code.strip())
        outcome: dict[str, Any] = {}

        def check(current: Subscriber | None) -> Subscriber | None:
            outcome.clear()
            pending = current.code if current else None
            if current is None or pending is None or pending.expires_at <= now:
                return None
            if not hmac.compare_digest(pending.hash, expected):
                attempts = pending.attempts + 1
                # Too many wrong codes: this one is void, a new one must be asked for.
                code = (pending.model_copy(update={"attempts": attempts})
                        if attempts < self.code_attempts else None)
                return current.model_copy(update={"code": code})
            outcome["purpose"] = pending.purpose
            follows = merge_follows(current.follows, pending.follows)
            if pending.purpose is Purpose.MANAGE:
                others = [f for f in current.follows if f.commune != pending.commune]
                follows = merge_follows(others, pending.follows)
                outcome["follows"] = follows
            return current.model_copy(update={
                "code": None, "confirmed": True, "confirmed_at": current.confirmed_at or now,
                "follows": follows})

        await self.registry.change(rid, check)
        purpose = outcome.get("purpose")
        if purpose is None:
            raise HttpError(400, "invalid_code", BAD_CODE)
        if purpose is Purpose.DELETE or (purpose is Purpose.MANAGE and not outcome["follows"]):
            # Nothing left to send it: the number goes, as after STOP.
            await self.registry.forget(rid)
            log.info("sms_subscriber_deleted", recipient=rid[:12], how=str(purpose))
            return json_reply(200, {"status": "deleted",
                                    "message": "Votre numéro et votre inscription sont effacés."})
        if purpose is Purpose.MANAGE:
            log.info("sms_subscription_changed", recipient=rid[:12])
            return json_reply(200, {"status": "updated", "follows": [
                f.model_dump(mode="json") for f in outcome["follows"]]})
        log.info("sms_subscription_confirmed", recipient=rid[:12])
        return json_reply(200, {"status": "confirmed",
                                "message": "C’est confirmé : vous recevrez les avis par SMS. "
                                           "Répondez STOP à tout moment pour arrêter."})

    # -- providers ----------------------------------------------------------------------

    def _webhook(self, request: Request) -> tuple[dict[str, str], Any]:
        given = request.params.get("secret") or request.header(WEBHOOK_HEADER)
        if not self.webhook_secret or not hmac.compare_digest(
                given.encode(), self.webhook_secret.encode()):
            # As if the route did not exist: nothing tells a prober it is close.
            raise HttpError(404, "not_found", "Cette adresse n’existe pas.")
        query = dict(parse_qsl(request.raw.query, keep_blank_values=True))
        body: Any = None
        if request.raw.body:
            try:
                body = request.json()
            except HttpError:
                body = dict(parse_qsl(request.raw.body, keep_blank_values=True))
        return query, body

    async def inbound(self, request: Request) -> ChannelHttpReply:
        query, body = self._webhook(request)
        reply = read_reply(query, body)
        if reply is None:
            raise HttpError(422, "invalid_input", "Réponse illisible.")
        if not is_stop(reply.text):
            log.info("sms_reply_ignored", length=len(reply.text))
            return json_reply(200, {"status": "ignored"})
        try:
            number = normalise(reply.sender)
        except BadNumber:
            return json_reply(200, {"status": "ignored"})
        rid = recipient_id(self.key, number)
        found = await self.registry.get(rid)
        await self.registry.forget(rid)
        log.info("sms_subscriber_deleted", recipient=rid[:12], how="stop")
        if found is not None and found[0].confirmed:
            # Said back, so the resident knows it worked: only to a number that was
            # subscribed (a stranger's STOP costs nothing), once (it is forgotten now).
            names = [n for f in found[0].follows if (n := await self.commune_name(f.commune))]
            text = french.STOP_CONFIRMED_SMS.format(communes=french.listed(names)
                                                    if names else "votre commune")
            self._in_background(self._deliver(rid, number,
                                              compose.prepare_text(text, self.transliterated),
                                              "sms_stop_confirmed"))
        return json_reply(200, {"status": "unsubscribed"})

    async def receipts(self, request: Request) -> ChannelHttpReply:
        query, body = self._webhook(request)
        receipt = read_receipt(query, body)
        if receipt is None:
            raise HttpError(422, "invalid_input", "Accusé de réception illisible.")
        known = await self.record_receipt(receipt)
        return json_reply(200, {"status": "recorded" if known else "unknown"})

    # -- staff ----------------------------------------------------------------------------

    async def preview(self, request: Request) -> ChannelHttpReply:
        body: PreviewRequest = self._body(request, PreviewRequest)
        return json_reply(200, compose.prepare_text(body.text, body.transliterate).preview())
