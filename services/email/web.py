"""The resident's side: subscribe, confirm, unsubscribe, manage, delete (over the front door).

Every page is French, large and plain, with one obvious button. No answer tells whether
an address was known: a subscription gets the same 202 whatever happened.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crieur import french
from crieur.channel.errors import Permanent, Transient
from crieur.channel.http_bridge import HttpError, Request, Router, html_reply, json_reply
from crieur.channel.ratelimit import LimitUnavailable, Network, SharedLimit
from crieur.communes import places_for
from schemas.channels import ChannelHttpReply
from schemas.commune import INSEE_RE
from schemas.notice import CATEGORY_LABELS, Category
from services.email.format import BadAddress, mailbox, normalise_address
from services.email.links import PREFIX, BadLink, Links
from services.email.subscribers import Follow, Registry, Subscriber, merge_follows

log = structlog.get_logger("crieur.email.web")

_PAGES = Environment(loader=PackageLoader("services.email", "templates"),
                     autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                     trim_blocks=True, lstrip_blocks=True)

CONFIRM_RETRIES_S = (2.0, 10.0, 60.0)
# A confirmed address asked for again gets "already subscribed" at most this often: the
# request may be a stranger's, repeated to flood the mailbox.
ALREADY_EVERY = timedelta(days=1)
ACCEPTED = ("Si cette adresse peut recevoir nos e-mails, un message vient de lui être "
            "envoyé : ouvrez-le et cliquez sur le bouton pour confirmer.")


class SubscribeRequest(BaseModel):
    """POST /api/v1/subscriptions/email: strict, like all HTTP input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    follows: tuple[Follow, ...] = Field(min_length=1, max_length=50)


# (address, confirm url, commune names) -> sends the confirmation email; may raise.
SendConfirmation = Callable[[str, str, list[str]], Awaitable[None]]
# (address, manage url) -> sends "you are already subscribed"; may raise.
SendAlready = Callable[[str, str], Awaitable[None]]
# (address, manage url) -> sends the new manage link after old links were revoked; may raise.
SendNewLinks = Callable[[str, str], Awaitable[None]]
# INSEE code -> the commune's name, or None if it is not registered.
CommuneName = Callable[[str], Awaitable[str | None]]


@dataclass
class Web:
    registry: Registry
    links: Links
    commune_name: CommuneName
    send_confirmation: SendConfirmation
    send_already: SendAlready
    clock: Callable[[], datetime]
    # Counted by every process together and kept across restarts (bucket email_limits).
    per_client: SharedLimit
    per_address: SharedLimit
    send_new_links: SendNewLinks | None = None
    trusted_proxies: tuple[Network, ...] = ()
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def router(self) -> Router:
        router = Router()
        router.add("POST", PREFIX, self.subscribe)
        # GET only shows a button: mail scanners open links, they do not press buttons.
        router.add("GET", PREFIX + "/confirm/{token}", self.confirm_page)
        router.add("POST", PREFIX + "/confirm/{token}", self.confirm)
        router.add("GET", PREFIX + "/unsubscribe/{token}", self.unsubscribe_page)
        router.add("POST", PREFIX + "/unsubscribe/{token}", self.unsubscribe)
        router.add("GET", PREFIX + "/manage/{token}", self.manage_page)
        router.add("POST", PREFIX + "/manage/{token}", self.manage)
        router.add("POST", PREFIX + "/manage/{token}/delete", self.delete)
        router.add("POST", PREFIX + "/manage/{token}/links", self.revoke_links)
        return router

    async def drain(self) -> None:
        """Wait for confirmation emails still being sent (graceful stop)."""
        if self._background:
            _, waiting = await asyncio.wait(self._background, timeout=10)
            for task in waiting:  # a retry waiting on a relay that is away: give up
                task.cancel()

    # -- subscribe and confirm --------------------------------------------------------

    async def subscribe(self, request: Request) -> ChannelHttpReply:
        # A keyed hash: the bucket holds no client address.
        await _limit(self.per_client, self.links.recipient_id(
            "client:" + request.client_key(self.trusted_proxies)))
        try:
            body = SubscribeRequest.model_validate(request.json())
        except ValidationError as error:
            raise HttpError(422, "invalid_input", "Demande d'inscription invalide.",
                            fields=_fields(error)) from error
        try:
            address = normalise_address(body.email)
        except BadAddress as error:
            raise HttpError(422, "invalid_input", "Adresse électronique invalide.", fields=[
                {"field": "email", "message": "adresse électronique invalide"}]) from error
        names = []
        for i, follow in enumerate(body.follows):
            name = await self.commune_name(follow.commune)
            if name is None:
                raise HttpError(422, "invalid_input", "Commune inconnue.", fields=[
                    {"field": f"follows.{i}.commune",
                     "message": f"la commune {follow.commune} n'utilise pas ce service"}])
            names.append(f"{name} ({follow.commune})")
        rid = self.links.recipient_id(address)
        # Per mailbox (`jean+1@` is `jean@`), keyed by a hash: the bucket holds no address.
        await _limit(self.per_address, self.links.recipient_id(mailbox(address)))
        now = self.clock()
        mail = "confirmation"

        def create(current: Subscriber | None) -> Subscriber | None:
            # An unknown address is kept unconfirmed (it gets nothing until confirmed);
            # a known one is left as it is: only its owner's click changes what it follows.
            nonlocal mail
            mail = "confirmation"
            if current is None:
                return Subscriber(email=address, created_at=now)
            if not current.confirmed:
                # A new link: the sweep of unconfirmed addresses counts from now.
                return current.model_copy(update={"created_at": now})
            if current.suspended:
                # Bounced until suspended: a confirmation proves the mailbox works again.
                return None
            last = current.already_mailed_at
            if last is not None and now - last < ALREADY_EVERY:
                mail = ""
                return None
            # Claimed by a compare-and-set: two requests at once send one mail, not two.
            mail = "already_subscribed"
            return current.model_copy(update={"already_mailed_at": now})

        await self.registry.change(rid, create)
        if mail == "confirmation":
            url = self.links.confirm_url(rid, [f.model_dump(mode="json") for f in body.follows])
            self._in_background(mail, rid, lambda: self.send_confirmation(address, url, names))
        elif mail == "already_subscribed":
            url = self.links.manage_url(rid)
            self._in_background(mail, rid, lambda: self.send_already(address, url))
        else:
            log.info("already_subscribed_mail_skipped", recipient=rid[:12])
        # The same answer whatever happened: it tells nobody whether the address is known.
        return json_reply(202, {"status": "pending", "message": ACCEPTED})

    def _in_background(self, mail: str, rid: str, send: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._mail(mail, rid, send))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mail(self, mail: str, rid: str, send: Callable[[], Awaitable[None]]) -> None:
        # The relay may be away for a moment: a few tries, then the resident asks again.
        for wait in (*CONFIRM_RETRIES_S, None):
            try:
                await send()
                log.info(f"{mail}_sent", recipient=rid[:12])
                return
            except Permanent as error:
                log.warning(f"{mail}_refused", recipient=rid[:12], reason=error.reason)
                return
            except Exception as error:
                reason = error.reason if isinstance(error, Transient) else repr(error)[:200]
                log.warning(f"{mail}_failed", recipient=rid[:12], reason=reason,
                            retry_in_s=wait)
                if wait is None:
                    return
                await asyncio.sleep(wait)

    def _confirmation(self, token: str) -> tuple[str, tuple[Follow, ...]]:
        try:
            rid, raw_follows = self.links.read_confirm(token)
            return rid, tuple(Follow.model_validate(f) for f in raw_follows)
        except BadLink as error:
            expired = str(error) == "expired"
            raise _PageError(_page(400, "Ce lien n'est plus valable",
                                   ["Ce lien de confirmation a expiré." if expired
                                    else "Ce lien de confirmation n'est pas valable.",
                                    "Inscrivez-vous à nouveau pour recevoir un nouveau lien."])
                             ) from error
        except ValidationError as error:
            raise _PageError(_page(400, "Ce lien n'est plus valable",
                                   ["Ce lien de confirmation n'est pas valable."])) from error

    async def confirm_page(self, request: Request) -> ChannelHttpReply:
        """The link in the email (GET, HEAD): a button to press, nothing changed yet."""
        token = request.params["token"]
        try:
            rid, follows = self._confirmation(token)
        except _PageError as page:
            return page.reply
        if await self.registry.get(rid) is None:
            return _missing()
        return _render(200, "confirm_page.html", heading="Confirmer votre inscription",
                       names=[await self._name(f.commune) for f in follows],
                       communes=await self._places(f.commune for f in follows),
                       action=f"{self.links.public_url}{PREFIX}/confirm/{token}")

    async def confirm(self, request: Request) -> ChannelHttpReply:
        """The page's button: only a person pressing it confirms."""
        try:
            rid, follows = self._confirmation(request.params["token"])
        except _PageError as page:
            return page.reply
        now = self.clock()

        def confirm(current: Subscriber | None) -> Subscriber | None:
            if current is None:
                return None
            # The click came from this mailbox: it works, whatever it bounced before.
            return current.model_copy(update={
                "confirmed": True, "confirmed_at": current.confirmed_at or now,
                "follows": merge_follows(current.follows, follows),
                "bounces": 0, "suspended": False})

        if await self.registry.change(rid, confirm) is None:
            return _missing()
        log.info("subscription_confirmed", recipient=rid[:12])
        names = [await self._name(f.commune) for f in follows]
        return _page(200, "C'est confirmé", [
            f"Vous recevrez par e-mail les avis de : {', '.join(names)}.",
            "Chaque e-mail contient un lien pour vous désabonner."],
            await self._places(f.commune for f in follows))

    # -- unsubscribe --------------------------------------------------------------------

    async def _subscriber(self, kind: str, token: str) -> tuple[str, Subscriber]:
        """The subscriber an unsubscribe or manage link names, or the page to answer
        instead (_PageError): a bad link, a revoked one, or nobody by that id."""
        try:
            rid, made = self.links.read(kind, token)
        except BadLink as error:
            raise _PageError(_invalid()) from error
        found = await self.registry.get(rid)
        if found is None:
            raise _PageError(_gone())
        if made < found[0].links_valid_since:
            log.info("revoked_link_used", recipient=rid[:12], link=kind)
            raise _PageError(_invalid())
        return rid, found[0]

    async def unsubscribe_page(self, request: Request) -> ChannelHttpReply:
        try:
            rid, subscriber = await self._subscriber("unsubscribe", request.params["token"])
        except _PageError as page:
            if page.reply.status == 404:
                return _page(200, french.UNSUBSCRIBED, [
                    "Vous ne recevez plus d'avis par e-mail à cette adresse."])
            return page.reply
        return _render(200, "unsubscribe.html", heading="Ne plus recevoir les avis ?",
                       masked=mask(subscriber.email),
                       communes=await self._places(f.commune for f in subscriber.follows),
                       action=self.links.unsubscribe_url(rid),
                       manage_url=self.links.manage_url(rid))

    async def unsubscribe(self, request: Request) -> ChannelHttpReply:
        """The page's button and RFC 8058 one-click (body `List-Unsubscribe=One-Click`)."""
        try:
            rid, subscriber = await self._subscriber("unsubscribe", request.params["token"])
        except _PageError as page:
            if page.reply.status != 404:
                return page.reply
            # Already gone: unsubscribing twice (a mail provider's one-click, then the
            # page's button) says the same as the first time.
            return _unsubscribed()
        await self.registry.forget(rid)
        log.info("unsubscribed", recipient=rid[:12],
                 one_click="List-Unsubscribe=One-Click" in request.raw.body)
        return _unsubscribed(await self._places(f.commune for f in subscriber.follows))

    # -- manage and delete ----------------------------------------------------------------

    async def manage_page(self, request: Request) -> ChannelHttpReply:
        try:
            rid, subscriber = await self._subscriber("manage", request.params["token"])
        except _PageError as page:
            return page.reply
        return await self._manage_form(rid, subscriber, 200)

    async def manage(self, request: Request) -> ChannelHttpReply:
        try:
            rid, subscriber = await self._subscriber("manage", request.params["token"])
        except _PageError as page:
            return page.reply
        form = request.form()
        chosen: dict[str, set[Category]] = {}
        for key, values in form.items():
            if not key.startswith("c."):
                continue
            commune = key[2:]
            try:
                cats = {Category(v) for v in values}
            except ValueError:
                return await self._manage_form(rid, subscriber, 422, "Choix invalide.")
            chosen[commune] = cats
        # A commune shown with every box unticked is a commune no longer followed.
        known = {f.commune for f in subscriber.follows}
        for commune in set(chosen) - known:
            # One added a moment ago, still to be confirmed (a pending choice or drop).
            if not INSEE_RE.match(commune) or await self.commune_name(commune) is None:
                return await self._manage_form(rid, subscriber, 422, "Choix invalide.")
        for commune in known:
            chosen.setdefault(commune, set())
        new = (form.get("new_commune") or [""])[0].strip()
        if new:
            found = await self._registered(new)
            if not found:
                return await self._manage_form(
                    rid, subscriber, 422, f"La commune « {new} » est inconnue ou n'utilise "
                    "pas ce service : vérifiez son nom, son code postal ou son code INSEE.",
                    draft=chosen, typed=new)
            # Those already followed are not offered again.
            found = [f for f in found if f[0] not in known]
            if len(found) > 1:
                # A postal code covers several communes, a name may be shared: the
                # resident picks; nothing is saved until then.
                return await self._manage_form(
                    rid, subscriber, 200, draft=chosen, typed=new, choices=found)
            if found:
                chosen.setdefault(found[0][0], set()).update(Category)
        dropped = sorted(c for c in known if not chosen.get(c))
        if dropped and not form.get("confirm_drop"):
            # Unticking every box stops a commune's notices: said, then confirmed.
            return await self._manage_form(rid, subscriber, 200, draft=chosen,
                                           dropping=[await self._name(c) for c in dropped])
        follows = tuple(Follow(commune=c, categories=tuple(sorted(cats)))
                        for c, cats in sorted(chosen.items()) if cats)

        def apply(current: Subscriber | None) -> Subscriber | None:
            return None if current is None else current.model_copy(update={"follows": follows})

        saved = await self.registry.change(rid, apply)
        if saved is None:
            return _gone()
        log.info("subscription_changed", recipient=rid[:12], communes=len(follows))
        return await self._manage_form(rid, saved, 200, saved=True)

    async def delete(self, request: Request) -> ChannelHttpReply:
        try:
            rid, subscriber = await self._subscriber("manage", request.params["token"])
        except _PageError as page:
            return page.reply
        await self.registry.forget(rid)
        log.info("subscriber_deleted", recipient=rid[:12])
        return _page(200, "Vos données sont effacées", [
            "Votre adresse et vos choix ont été effacés.",
            "Vous ne recevrez plus d'avis par e-mail."],
            await self._places(f.commune for f in subscriber.follows))

    async def revoke_links(self, request: Request) -> ChannelHttpReply:
        """Every manage and unsubscribe link made until now stops working; a new manage link
        goes to the mailbox, never to this page (whoever holds an old link may not be the
        resident)."""
        try:
            rid, _ = await self._subscriber("manage", request.params["token"])
        except _PageError as page:
            return page.reply
        # The next second on: a link made in this very second is revoked too.
        since = int(self.clock().timestamp()) + 1

        def revoke(current: Subscriber | None) -> Subscriber | None:
            return None if current is None else current.model_copy(
                update={"links_valid_since": since})

        saved = await self.registry.change(rid, revoke)
        if saved is None:
            return _gone()
        log.info("links_revoked", recipient=rid[:12])
        if self.send_new_links is not None:
            send, address = self.send_new_links, saved.email
            # Made once the revocation is a second old, so that it is not revoked itself.
            self._in_background("new_links", rid, lambda: self._after(
                since, lambda: send(address, self.links.manage_url(rid))))
        return _page(200, "Vos anciens liens ne fonctionnent plus", [
            "Les liens de gestion et de désabonnement des e-mails déjà reçus ne "
            "fonctionnent plus.",
            "Un nouveau lien vient d'être envoyé à votre adresse : utilisez-le désormais."],
            await self._places(f.commune for f in saved.follows))

    async def _after(self, since: int, send: Callable[[], Awaitable[None]]) -> None:
        wait = since - self.clock().timestamp()
        if wait > 0:
            await asyncio.sleep(wait)
        await send()

    async def _registered(self, query: str) -> list[tuple[str, str]]:
        """(INSEE code, label) of the registered communes a resident's words name."""
        # An INSEE code is checked before the look-up: `../x` or `a.b` is no valid bucket key.
        codes = [p.insee for p in places_for(query)]
        if INSEE_RE.match(query) and query not in codes:
            codes.append(query)  # registered by its code alone (not in the official list)
        found = []
        for code in codes:
            name = await self.commune_name(code)
            if name is not None:
                found.append((code, f"{name} ({code})"))
        return found

    async def _manage_form(self, rid: str, subscriber: Subscriber, status: int,
                           error: str = "", saved: bool = False,
                           draft: dict[str, set[Category]] | None = None, typed: str = "",
                           choices: list[tuple[str, str]] | None = None,
                           dropping: list[str] | None = None) -> ChannelHttpReply:
        """The form; with `draft`, as the resident left it (a choice or a confirmation
        pending), else as saved."""
        shown = ({c: sorted(cats) for c, cats in sorted(draft.items())} if draft is not None
                 else {f.commune: list(f.categories) for f in subscriber.follows})
        follows = [{"commune": c, "name": await self._name(c),
                    "categories": [cat.value for cat in cats]} for c, cats in shown.items()]
        url = self.links.manage_url(rid)
        return _render(status, "manage.html", heading="Mes avis par e-mail",
                       masked=mask(subscriber.email), follows=follows,
                       categories=[(c.value, label) for c, label in CATEGORY_LABELS.items()],
                       action=url, delete_action=url + "/delete",
                       links_action=url + "/links", error=error, saved=saved, typed=typed,
                       communes=await self._places(
                           f.commune for f in subscriber.follows),
                       choices=choices or [], dropping=dropping or [])

    async def _places(self, codes: Iterable[str]) -> list[tuple[str, str]]:
        """(INSEE code, name) of the communes a page links back to."""
        return [(code, await self.commune_name(code) or code) for code in codes]

    async def _name(self, insee: str) -> str:
        name = await self.commune_name(insee)
        return f"{name} ({insee})" if name else insee


class _PageError(Exception):
    def __init__(self, reply: ChannelHttpReply) -> None:
        super().__init__("page")
        self.reply = reply


def mask(address: str) -> str:
    """`j•••@example.org`: enough for its owner to recognise, not enough to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


async def _limit(limit: SharedLimit, key: str) -> None:
    try:
        refused = await limit.hit(key)
    except LimitUnavailable as error:
        log.warning("email_limit_unavailable", limit=limit.prefix, error=str(error))
        raise HttpError(503, "channel_unavailable", "Les inscriptions par courriel sont "
                        "momentanément indisponibles ; réessayez plus tard.") from error
    if refused is not None:
        if refused.first:
            log.warning("email_limit_reached", limit=limit.prefix)
        raise HttpError(429, "too_many_requests",
                        "Trop de demandes : réessayez un peu plus tard.",
                        headers={"retry-after": str(int(refused.retry_after_s) + 1)})


def _fields(error: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors()]


def _render(status: int, template: str, **context: Any) -> ChannelHttpReply:
    context.setdefault("communes", [])
    return html_reply(status, _PAGES.get_template(template).render(**context))


def _page(status: int, heading: str, lines: list[str],
          communes: list[tuple[str, str]] | None = None) -> ChannelHttpReply:
    return _render(status, "page.html", heading=heading, lines=lines, communes=communes or [])


def _missing() -> ChannelHttpReply:
    return _page(404, "Inscription introuvable", [
        "Cette inscription a été effacée entre-temps.",
        "Inscrivez-vous à nouveau si vous souhaitez recevoir les avis."])


def _unsubscribed(communes: list[tuple[str, str]] | None = None) -> ChannelHttpReply:
    return _page(200, french.UNSUBSCRIBED, [
        "Vous ne recevrez plus d'avis de la mairie par e-mail.",
        "Votre adresse a été effacée."], communes)


def _invalid() -> ChannelHttpReply:
    return _page(400, "Ce lien n'est pas valable", [
        "Ce lien n'est pas valable. Utilisez le lien du dernier e-mail reçu."])


def _gone() -> ChannelHttpReply:
    return _page(404, "Aucune inscription", [
        "Cette adresse ne reçoit pas d'avis par e-mail (ou ses données ont été effacées)."])


def new_nonce() -> str:
    """Makes each confirmation's Message-ID unique."""
    return secrets.token_hex(8)
