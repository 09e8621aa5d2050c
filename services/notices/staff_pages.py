"""The mairie's back-office in the browser (/staff/...), in French, working without JavaScript.

Every action goes through the same functions as the JSON API (publish, correct, withdraw,
approve), with the signed-in member as its author; forms are checked for the session's CSRF
token first. A member sees and acts on their own communes only (403 otherwise).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from crieur import french
from crieur.channel.ratelimit import client_key, within
from schemas import Commune, Notice, NoticeDraft, NoticePatch, NoticeState
from schemas.commune import INSEE_RE
from schemas.events import EventKind
from schemas.notice import CATEGORY_LABELS, PARIS, Category
from services.notices import (
    api,
    application,
    archive,
    attachments,
    groups,
    lifecycle,
    previews,
    staff_api,
    undo,
)
from services.notices.api import ctx
from services.notices.application import Context
from services.notices.attachments import Resolver
from services.notices.auth import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFE,
    Session,
    Sessions,
    Throttle,
    TooEarly,
    new_token,
    same,
    still_valid,
)
from services.notices.errors import ApiError
from services.notices.pages import TEMPLATES, french_date, human_size
from services.notices.staff import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    Busy,
    StaffAccount,
    VerifyGate,
    login_of,
)
from services.notices.store import StaffMember

log = structlog.get_logger("crieur.notices.staff")

PAGE_SIZE = 20
MAX_PAGE = 1000
LINK_ROWS = 3
MAX_ATTACHMENTS = 10

STATE_LABELS = {
    NoticeState.PROPOSED: "Alerte officielle proposée",
    NoticeState.PENDING_APPROVAL: "En attente d'approbation",
    NoticeState.SCHEDULED: "Programmé",
    NoticeState.PUBLISHED: "Publié",
    NoticeState.CORRECTED: "Corrigé",
    NoticeState.WITHDRAWN: "Retiré",
    NoticeState.EXPIRED: "Expiré",
}
CHANNEL_LABELS = {"push": "Notifications", "email": "E-mails", "sms": "SMS",
                  "webpush": "Navigateurs", "panel": "Panneau lumineux"}
# What each DELIVERIES counter is called on the page. Reports count messages, not people
# (a correction is sent again): the page says « messages », never « abonnés ».
OUTCOME_LABELS = {
    "sent": ("message envoyé", "messages envoyés"),
    "delivered": ("message remis", "messages remis"),
    "bounced": ("rejeté", "rejetés"), "failed": ("en échec", "en échec"),
    "dropped": ("abandonné", "abandonnés"), "shown": ("affichage", "affichages"),
}


def counted(value: int, name: str) -> str:
    singular, plural = OUTCOME_LABELS[name]
    return french.counted(value, singular, plural).replace(french.NBSP, " ")


def topic_label(topic: str) -> str:
    """`crieur-70299-alerte` as staff know it: the kind of notice its followers chose."""
    slug = topic.rsplit("-", 1)[-1]
    known = {c.value: label for c, label in CATEGORY_LABELS.items()}
    return known.get(slug, topic)

# What the API's errors mean to a secretary.
ERROR_FRENCH = {
    "notice_changed": "L'avis a été modifié entre-temps par quelqu'un d'autre. Rechargez la "
                      "page et recommencez.",
    "notice_moved_on": "L'avis a été modifié entre-temps par quelqu'un d'autre. Rechargez la "
                       "page et recommencez.",
    "notice_withdrawn": "Cet avis est retiré : il ne peut plus être modifié.",
    "notice_not_pending": "Cet avis n'attend pas d'approbation.",
    "own_approval": "Vous avez écrit une partie du texte qui attend l'approbation : une autre "
                    "personne de la mairie doit l'approuver.",
    "notice_not_found": "Cet avis n'existe pas dans cette commune.",
    "commune_forbidden": "Vous n'avez pas accès à cette commune.",
    "bus_unavailable": "Le service est momentanément indisponible. Réessayez dans un instant.",
    "bus_timeout": "Le service n'a pas confirmé à temps. Vérifiez la liste des avis avant de "
                   "recommencer.",
    "idempotency_key_reused": "Ce formulaire a déjà servi pour un autre avis. Recommencez "
                              "depuis « Nouvel avis ».",
    "broadcast_copy": "Cet avis a été publié pour tout un groupe de communes : il ne peut être "
                      "corrigé ou retiré que pour tout le groupe.",
    "group_not_found": "Vous n'avez pas accès à ce groupe.",
    "group_forbidden": "Vous n'avez pas accès à ce groupe.",
    "not_proposed": "La source officielle ne propose plus rien pour cet avis : rechargez la "
                    "page.",
}

FIELD_LABELS = {"category": "Catégorie", "title": "Titre", "body": "Texte",
                "publish_at": "Date de publication", "starts_at": "Début de validité",
                "ends_at": "Fin de validité", "links": "Liens", "attachments": "Pièces jointes"}


def french_error(error: dict[str, Any]) -> str:
    """One pydantic error, said in French for the form."""
    kind, context = error.get("type", ""), error.get("ctx") or {}
    if kind in ("missing", "string_too_short", "too_short"):
        return "Ce champ est obligatoire."
    if kind in ("string_too_long", "too_long"):
        # No maxlength in the form: a pasted title is not cut mid-word unseen; it is kept
        # whole, and the count says how much to shorten.
        given = error.get("input")
        written = (f" ({len(given)} écrits, {len(given) - int(context['max_length'])} de trop)"
                   if isinstance(given, str) and context.get("max_length") else "")
        return f"Trop long : au plus {context.get('max_length')} caractères{written}."
    if kind.startswith("datetime") or kind.startswith("date"):
        return "Cette date n'est pas valide (jour et heure attendus)."
    if kind.startswith("url"):
        return "Cette adresse web n'est pas valide (elle commence par https://)."
    if kind == "enum":
        return "Choisissez une catégorie."
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    known = {
        "ends_at must be after starts_at": "La fin doit venir après le début de validité.",
        "ends_at must be after publish_at: the notice would end unseen":
            "La fin doit venir après la publication : l'avis finirait sans être vu.",
        "must contain visible text": "Écrivez un texte visible.",
        "ends_at is in the past: to end a notice now, withdraw it":
            "Cette date de fin est déjà passée : pour arrêter un avis maintenant, retirez-le.",
        "publish_at cannot change: the notice is already published":
            "L'avis est déjà publié : sa date de publication ne peut plus changer.",
        lifecycle.NEEDS_APPROVAL: "Dans cette commune, cette catégorie doit être approuvée par "
                                  "une deuxième personne : publiez-la comme un nouvel avis.",
    }
    if message in known:
        return known[message]
    if "does not exist in Paris time" in message:
        return "Cette heure n'existe pas (changement d'heure) : choisissez-en une autre."
    if "happens twice in Paris time" in message:
        return "Cette heure existe deux fois (changement d'heure) : choisissez-en une autre."
    if "year must be between" in message:
        return "L'année doit être comprise entre 2000 et 2100."
    if message.startswith("contains a character that cannot be shown"):
        return "Ce texte contient un caractère qui ne peut pas s'afficher : retirez-le."
    # Never the API's English on a French page: the reason goes to the log instead.
    log.info("staff_form_value_refused", reason=message[:200])
    return "Cette valeur n'est pas acceptée : vérifiez-la."


@dataclass
class SignedIn:
    session_id: str
    session: Session
    account: StaffAccount

    @property
    def member(self) -> StaffMember:
        return self.account.member()


def sessions(c: Context) -> Sessions:
    return Sessions(c.store.sessions)


def secure(c: Context) -> bool:
    return c.settings.public_url.lower().startswith("https://")


def local_input(moment: datetime | None) -> str:
    """A time as a datetime-local input shows it (Paris time, to the minute)."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M") if moment else ""


def reach_lines(reach: dict[str, Any]) -> list[str]:
    """A notice's reach (reach.NoticeReach as a dict), one French line per channel that
    reported something; counters at zero are left out."""
    lines = []
    for channel, label in CHANNEL_LABELS.items():
        counts = reach.get(channel)
        if not isinstance(counts, dict):
            continue
        shown = [counted(value, name) for name, value in counts.items()
                 if name in OUTCOME_LABELS and isinstance(value, int)
                 and not isinstance(value, bool) and value]
        people = counts.get("people")
        if isinstance(people, int) and not isinstance(people, bool) and people:
            # People first: « 2 personnes jointes » is what the mairie asks; the messages
            # (each version sent again) follow in brackets.
            reached = french.counted(people, "personne jointe", "personnes jointes")
            shown = [reached.replace(french.NBSP, " ")
                     + (f" ({', '.join(shown)})" if shown else "")]
        seconds = counts.get("shown_seconds")
        if isinstance(seconds, int | float) and seconds:
            shown.append(f"{duration(seconds)} à l'affichage")
        topics = counts.get("topics")
        if isinstance(topics, dict) and topics:
            shown.append("par type d'avis suivi : "
                         + ", ".join(f"{topic_label(t)} {n}" for t, n in topics.items()))
        if shown:
            lines.append(f"{label} : {', '.join(shown)}")
    return lines


def duration(seconds: float) -> str:
    """`1 h 05 min`, `3 min 20 s`, `12 s`: the time a notice spent on the sign."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}\u00a0h\u00a0{minutes:02d}\u00a0min"
    if minutes:
        return f"{minutes}\u00a0min\u00a0{secs:02d}\u00a0s"
    return f"{secs}\u00a0s"


def where_shown(item: Any, now: datetime) -> list[str]:
    """Where a notice (or a draft) shows, and from when to when, one French line a place.

    The channels that send (push, email, SMS) send when the notice is published; the places
    that show what is current (the commune's page, the sign, the Atom feed) follow its
    validity: a notice starting on the 19th is sent today but shows there on the 19th.
    """
    published = getattr(item, "published_at", None)
    publish_at = item.publish_at if item.publish_at and item.publish_at > now else None
    if published is not None:
        sent = f"envoyés le {french_date(published)}"
    elif publish_at is not None:
        sent = f"envoyés le {french_date(publish_at)}"
    else:
        sent = "envoyés dès la publication"
    lines = [f"Notifications, e-mails et SMS (selon les abonnements) : {sent}."]
    start_from = max(filter(None, (now, publish_at, published)))
    starts = item.starts_at
    later = starts is not None and starts > start_from
    start = f"à partir du {french_date(starts)}" if later else "dès la publication"
    if published is not None and not later:
        start = f"depuis le {french_date(published)}"
    until = f" jusqu'au {french_date(item.ends_at)}" if item.ends_at else ", sans date de fin"
    lines.append(f"Page de la commune, panneau lumineux et fil Atom : {start}{until}.")
    if later:
        lines.append("D'ici là, la page de la commune l'annonce dans la partie « À venir ».")
    return lines


def highlight(value: str, characters: Any) -> Markup:
    """The SMS text, escaped, with each character that makes it longer in a <mark>."""
    marked = {ch for ch in characters or () if isinstance(ch, str) and len(ch) == 1}
    return Markup("").join(Markup('<mark class="long">{}</mark>').format(ch) if ch in marked
                           else escape(ch) for ch in value)


TEMPLATES.filters.update(local_input=local_input, reach_lines=reach_lines,
                         highlight=highlight, where_shown=where_shown,
                         topic_label=topic_label)

STAFF_DEFAULTS: dict[str, Any] = {
    "commune": None, "me": None, "csrf": "", "communes": [], "groups": {}, "flash": "",
    "categories": [(c.value, CATEGORY_LABELS[c]) for c in Category],
    "state_labels": {s.value: label for s, label in STATE_LABELS.items()},
    "channel_labels": CHANNEL_LABELS,
    # A page answered before the session is read (too large a form): no « Se connecter ».
    "signed_in_unknown": False,
}


def page(template: str, status: int = 200, headers: dict[str, str] | None = None,
         **values: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(f"staff/{template}").render(STAFF_DEFAULTS | values)
    response = HTMLResponse(body, status_code=status, headers=headers)
    # Staff pages are personal: never kept by a shared cache, never shown in a frame.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def message(status: int, heading: str, lines: list[str], who: SignedIn | None = None,
            commune: Commune | None = None, headers: dict[str, str] | None = None
            ) -> HTMLResponse:
    return page("message.html", status=status, headers=headers, heading=heading, lines=lines,
                me=who.account if who else None, csrf=who.session.csrf if who else "",
                commune=commune)


def too_large_page(limit: int) -> HTMLResponse:
    """What a staff form over the upload limit gets, before its body is read (app.BodyLimit).

    The form cannot be shown again with what was typed, as its body is refused unread: the
    page sends the secretary back, where the browser still has the fields filled in.
    """
    return page("message.html", status=413, heading="Fichier trop gros", signed_in_unknown=True,
                lines=[f"Le fichier choisi dépasse {human_size(limit)} : il n'a pas été envoyé.",
                       "Revenez à la page précédente avec le bouton « Retour » du navigateur "
                       "(ce que vous avez écrit y est encore) et choisissez un fichier plus "
                       "petit, ou enregistrez la photo dans une taille plus petite."])


def to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def signed_in(request: Request) -> SignedIn | None:
    c = ctx(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = await sessions(c).get(session_id, c.clock())
    if session is None:
        return None
    account = await c.store.staff_registry.account(session.login)
    if account is None or not still_valid(session, account):
        return None
    structlog.contextvars.bind_contextvars(staff=account.id)
    return SignedIn(session_id, session, account)


async def read_form(request: Request) -> FormData | None:
    """The posted form (urlencoded or multipart); None if it cannot be read."""
    try:
        return await request.form(max_files=10, max_fields=100)
    except Exception:  # a malformed multipart body is the client's fault, not a 500
        return None


def text(form: FormData, name: str, limit: int = 6000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def forbidden_csrf(who: SignedIn | None) -> HTMLResponse:
    return message(403, "Formulaire refusé",
                   ["Ce formulaire a expiré ou ne vient pas de Crieur (jeton de sécurité "
                    "absent ou incorrect).", "Rechargez la page et recommencez."], who)


Handler = Callable[[Request, SignedIn, Commune], Awaitable[Response]]


async def guarded(request: Request, insee: str, handler: Handler, *, post: bool) -> Response:
    """Sign-in, commune access and (for a form) CSRF checks around a staff page."""
    who = await signed_in(request)
    if who is None:
        if post:
            return message(403, "Session expirée", ["Votre session a expiré : reconnectez-vous.",
                                                    ], None)
        return to(f"/staff/login?next={quote(request.url.path)}")
    if who.account.must_change_password:
        return to(PASSWORD_PATH)
    c = ctx(request)
    commune = await c.store.commune_registry.get(insee) if INSEE_RE.match(insee) else None
    if commune is None or insee not in who.account.communes:
        # The same answer whether the commune exists or not: nothing to learn from it.
        return message(403, "Accès refusé", ["Vous n'avez pas accès à cette commune."], who)
    if post:
        form = await read_form(request)
        if form is None or not same(text(form, "csrf", 200), who.session.csrf):
            log.warning("staff_csrf_refused", path=request.url.path)
            return forbidden_csrf(who)
        request.state.form = form
    return await handler(request, who, commune)


pages = APIRouter(prefix="/staff", include_in_schema=False)


# -- sign-in and sign-out ---------------------------------------------------------------------

def login_page(c: Context, status: int = 200, error: str = "", user: str = "",
               next_url: str = "/staff", headers: dict[str, str] | None = None) -> HTMLResponse:
    token = new_token()
    response = page("login.html", status=status, headers=headers, error=error, user=user,
                    login_csrf=token, next_url=next_url)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/staff/login",
                        httponly=True, samesite="strict", secure=secure(c))
    return response


def safe_next(value: str) -> str:
    # Only a path of the staff pages: never an open redirect to another site.
    if value.startswith("/staff") and not value.startswith("//") and "\\" not in value:
        return value
    return "/staff"


@pages.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if await signed_in(request) is not None:
        return to("/staff")
    return login_page(ctx(request), next_url=safe_next(request.query_params.get("next", "")))


BUSY_RETRY_S = 5


def throttle(c: Context) -> Throttle:
    s = c.settings
    return Throttle(free=s.signin_free_failures, client_free=s.signin_client_free_failures,
                    delay_s=s.signin_delay_s, max_delay_s=s.signin_max_delay_s)


def verify_gate(request: Request) -> VerifyGate:
    """This process's bound on password checks (one per app, made on first use)."""
    gate: VerifyGate | None = getattr(request.app.state, "signin_gate", None)
    if gate is None:
        s = ctx(request).settings
        gate = VerifyGate(s.signin_concurrent_verifies, s.signin_verify_queue)
        request.app.state.signin_gate = gate
    return gate


def client_of(request: Request, c: Context) -> str:
    """The sign-in's client, as the throttle counts it (an IPv6 client is its /64)."""
    peer = request.client.host if request.client else ""
    proxies = c.settings.proxies()
    if within(peer, proxies):
        # Behind our own proxies: the first hop from the right that is not one of them.
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        peer = next((h for h in reversed(hops) if h and not within(h, proxies)), peer)
    return client_key(peer) or "-"


def in_french(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


@pages.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    c = ctx(request)
    form = await read_form(request)
    if form is None or not same(text(form, "csrf", 200),
                                request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return forbidden_csrf(None)
    user, password = text(form, "user", 200), form.get("password")
    next_url = safe_next(text(form, "next", 500))
    if not user or not isinstance(password, str) or not password:
        return login_page(c, 422, "Écrivez votre identifiant et votre mot de passe.", user,
                          next_url)
    now = c.clock()
    store = sessions(c)
    login, client = login_of(user), client_of(request, c)
    try:
        # Counted before the password is checked: see Sessions.attempt.
        await store.attempt(user, client, throttle(c), now)
    except TooEarly as early:
        wait = math.ceil(early.retry_after_s)
        log.warning("staff_signin_throttled", login=login, client=client, by=early.scope,
                    retry_after_s=wait)
        return login_page(c, 429, "Trop de tentatives de connexion. Par sécurité, "
                          f"réessayez dans {in_french(wait)}.", user, next_url,
                          headers={"Retry-After": str(wait)})
    try:
        account = await c.store.staff_registry.verify(user, password[:1024], verify_gate(request))
    except Busy:
        await store.abandoned(user, client)
        log.warning("staff_signin_busy", login=login, client=client)
        return login_page(c, 429, "Le service de connexion est très sollicité. Réessayez "
                          "dans quelques secondes.", user, next_url,
                          headers={"Retry-After": str(BUSY_RETRY_S)})
    if account is None:
        log.warning("staff_signin_failed", login=login, client=client)
        return login_page(c, 401, "Identifiant ou mot de passe incorrect.", user, next_url)
    await store.succeeded(user, client)
    session_id, _ = await store.create(account, now)
    log.info("staff_signed_in", staff=account.id)
    # A temporary password set by a colleague: the member chooses their own first.
    response = to(PASSWORD_PATH if account.must_change_password else next_url)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(SESSION_LIFE.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure(c))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff/login")
    return response


@pages.post("/logout", response_class=HTMLResponse)
async def logout(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return to("/staff/login")
    form = await read_form(request)
    if form is None or not same(text(form, "csrf", 200), who.session.csrf):
        return forbidden_csrf(who)
    await sessions(ctx(request)).end(who.session_id)
    log.info("staff_signed_out")
    response = to("/staff/login")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


@pages.get("", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return to("/staff/login")
    if who.account.must_change_password:
        return to(PASSWORD_PATH)
    c = ctx(request)
    found = [await c.store.commune_registry.get(i) for i in who.account.communes]
    communes = [x for x in found if x]
    if len(communes) == 1 and not who.account.groups:
        return to(f"/staff/communes/{communes[0].insee}")
    mine = [g for g in await groups.registry(c).all() if g.id in who.account.groups]
    return page("communes.html", me=who.account, csrf=who.session.csrf, communes=communes,
                groups=mine)


# -- passwords: one's own, and a colleague's forgotten one -----------------------------------

PASSWORD_PATH = "/staff/password"


def password_page(who: SignedIn, status: int = 200, error: str = "",
                  done: bool = False) -> HTMLResponse:
    return page("password.html", status=status, me=who.account, csrf=who.session.csrf,
                forced=who.account.must_change_password, error=error, done=done,
                min_length=MIN_PASSWORD)


@pages.get("/password", response_class=HTMLResponse)
async def password_form(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return to(f"/staff/login?next={PASSWORD_PATH}")
    return password_page(who, done=request.query_params.get("ok") == "1")


@pages.post("/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    """The member's own new password; after a temporary one, asked before anything else."""
    who = await signed_in(request)
    if who is None:
        return message(403, "Session expirée", ["Votre session a expiré : reconnectez-vous."])
    form = await read_form(request)
    if form is None or not same(text(form, "csrf", 200), who.session.csrf):
        return forbidden_csrf(who)
    c = ctx(request)
    new, again = form.get("new_password"), form.get("new_password_again")
    if not isinstance(new, str) or not isinstance(again, str) or not new:
        return password_page(who, 422, "Écrivez le nouveau mot de passe deux fois.")
    if new != again:
        return password_page(who, 422, "Les deux mots de passe écrits ne sont pas les mêmes.")
    if len(new) < MIN_PASSWORD or len(new) > MAX_PASSWORD:
        return password_page(who, 422, f"Le mot de passe doit avoir au moins {MIN_PASSWORD} "
                             f"caractères (et {MAX_PASSWORD} au plus).")
    current = form.get("current_password")
    if isinstance(current, str) and current:
        check = current
    elif who.account.must_change_password:
        check = ""  # they signed in with the temporary one a moment ago
    else:
        return password_page(who, 422, "Écrivez votre mot de passe actuel.")
    if check and await c.store.staff_registry.verify(who.account.login, check[:MAX_PASSWORD],
                                            verify_gate(request)) is None:
        return password_page(who, 401, "Le mot de passe actuel n'est pas le bon.")
    if await c.store.staff_registry.verify(who.account.login, new[:MAX_PASSWORD],
                                  verify_gate(request)) is not None:
        return password_page(who, 422, "Choisissez un mot de passe différent de l'actuel.")
    account = await c.store.staff_registry.set_password(who.account.name, new)
    # Setting it ends every session, this one too: the member stays signed in here only.
    await sessions(c).end(who.session_id)
    session_id, _ = await sessions(c).create(account, c.clock())
    log.info("staff_password_changed", forced=who.account.must_change_password)
    response = to(f"{PASSWORD_PATH}?ok=1")
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(SESSION_LIFE.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure(c))
    return response


def may_reset(who: SignedIn, colleague: StaffAccount) -> bool:
    """A member may give a temporary password to a colleague who can do nothing the member
    cannot: whoever sets it can sign in with it, so it must open no other commune."""
    return (colleague.login != who.account.login and colleague.revoked_at is None
            and set(colleague.communes) <= set(who.account.communes)
            and set(colleague.groups) <= set(who.account.groups))


async def colleagues(c: Context, commune: Commune) -> list[StaffAccount]:
    found = [a for a in await c.store.staff_registry.accounts()
             if commune.insee in a.communes and a.revoked_at is None]
    return sorted(found, key=lambda a: a.name.casefold())


def team_page(who: SignedIn, commune: Commune, team: list[StaffAccount], status: int = 200,
              error: str = "", error_for: str = "", flash: str = "") -> HTMLResponse:
    return page("team.html", status=status, me=who.account, csrf=who.session.csrf,
                commune=commune, team=[(a, may_reset(who, a)) for a in team], error=error,
                error_for=error_for, flash_text=flash, min_length=MIN_PASSWORD)


@pages.get("/communes/{insee}/team", response_class=HTMLResponse)
async def team(request: Request, insee: str) -> Response:
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        team = await colleagues(ctx(request), commune)
        reset = request.query_params.get("reset", "")[:64]
        named = next((a.name for a in team if a.login == reset), "")
        flash = (f"Mot de passe provisoire enregistré pour {named} : ses sessions ouvertes "
                 "sont fermées, et il lui sera demandé d'en choisir un nouveau à sa "
                 "prochaine connexion. Donnez-le-lui de vive voix ou par téléphone, "
                 "jamais par e-mail." if named else "")
        return team_page(who, commune, team, flash=flash)

    return await guarded(request, insee, show, post=False)


@pages.post("/communes/{insee}/team/{login}/password", response_class=HTMLResponse)
async def reset_colleague_password(request: Request, insee: str, login: str) -> Response:
    """A temporary password for a colleague who forgot theirs, without the operator."""
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        c = ctx(request)
        form: FormData = request.state.form
        team = await colleagues(c, commune)
        colleague = next((a for a in team if a.login == login), None)
        if colleague is None:
            return message(404, "Personne introuvable",
                           ["Personne de l'équipe de cette commune n'a cet identifiant."],
                           who, commune)
        if not may_reset(who, colleague):
            return team_page(who, commune, team, 403, error_for=colleague.login, error=(
                "Vous ne pouvez pas donner de mot de passe provisoire à cette personne : "
                "elle a accès à des communes ou des groupes que vous n'avez pas. Demandez-le "
                "à l'exploitant (crieur staff passwd)."))
        password = form.get("password")
        if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            return team_page(who, commune, team, 422, error_for=colleague.login, error=(
                f"Le mot de passe provisoire doit avoir au moins {MIN_PASSWORD} caractères."))
        await c.store.staff_registry.set_password(colleague.name, password, temporary=True)
        log.info("staff_password_reset_by_colleague", colleague=colleague.id)
        return to(f"/staff/communes/{insee}/team?reset={quote(colleague.login)}")

    return await guarded(request, insee, act, post=True)


# -- the commune's notices --------------------------------------------------------------------

@pages.get("/communes/{insee}", response_class=HTMLResponse)
async def notices_page(request: Request, insee: str) -> Response:
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        c = ctx(request)
        raw = request.query_params.get("page", "1")
        number = int(raw) if raw.isdigit() else 0
        if not 1 <= number <= MAX_PAGE:
            return message(404, "Page introuvable", ["Cette page de la liste n'existe pas."],
                           who, commune)
        now = c.clock()
        filters = archive.Filters.read(dict(request.query_params), with_state=True)
        items, total = await staff_api.listing(request, c, commune, now, PAGE_SIZE,
                                               (number - 1) * PAGE_SIZE, filters.state, filters)
        named = {g.id: g for g in await groups.registry(c).all()}
        months = sorted({archive.month_of(n) for n, _ in staff_api.every_notice(
            c, commune.insee, now)[:archive.SEARCH_LIMIT]}, reverse=True)

        def link(to_page: int) -> str:
            query = filters.query() | ({"page": str(to_page)} if to_page > 1 else {})
            return "?" + urlencode(query) if query else "?page=1"

        return page("notices.html", now=now, me=who.account, csrf=who.session.csrf,
                    commune=commune, groups=named,
                    items=items, total=total, page_number=number,
                    filters=filters, asked=request.query_params.get("q", "")[:100].strip(),
                    months=[(m, archive.month_label(m)) for m in months],
                    previous_url=link(number - 1) if number > 1 else None,
                    next_url=link(number + 1) if number * PAGE_SIZE < total else None,
                    flash=request.query_params.get("ok", "")[:40])

    return await guarded(request, insee, show, post=False)


# -- compose, preview, publish -----------------------------------------------------------------

def form_values(form: FormData | None) -> dict[str, Any]:
    """What the compose form holds, to show it again (after a preview or an error)."""
    if form is None:
        return {"category": "information", "title": "", "body": "", "when": "now",
                "publish_at": "", "starts_at": "", "ends_at": "",
                "links": [{"url": "", "label": ""} for _ in range(LINK_ROWS)],
                "attachments": [], "key": secrets.token_hex(16)}
    return {
        "category": text(form, "category", 40), "title": text(form, "title", 400),
        "body": text(form, "body"), "when": "later" if text(form, "when") == "later" else "now",
        "publish_at": text(form, "publish_at", 40), "starts_at": text(form, "starts_at", 40),
        "ends_at": text(form, "ends_at", 40),
        "links": [{"url": text(form, f"link_url_{i}", 2100),
                   "label": text(form, f"link_label_{i}", 200)} for i in range(LINK_ROWS)],
        "attachments": [a for a in form.getlist("attachment_ids") if isinstance(a, str)][:10],
        "key": text(form, "key", 64) or secrets.token_hex(16),
    }


def draft_fields(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The notice draft the form's values make, and the form's own errors by field."""
    fields: dict[str, Any] = {"category": values["category"], "title": values["title"],
                              "body": values["body"]}
    problems: dict[str, str] = {}
    if values["when"] == "later":
        if values["publish_at"]:
            fields["publish_at"] = values["publish_at"]
        else:
            problems["publish_at"] = "Choisissez la date et l'heure de publication."
    for name in ("starts_at", "ends_at"):
        if values[name]:
            fields[name] = values[name]
    fields["links"] = [{"url": x["url"], **({"label": x["label"]} if x["label"] else {})}
                       for x in values["links"] if x["url"]]
    fields["attachments"] = list(values["attachments"])
    return fields, problems


def patch_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The correction the correction form's values make (a notice's or a group's)."""
    fields: dict[str, Any] = {"category": values["category"], "title": values["title"],
                              "body": values["body"], "starts_at": values["starts_at"] or None,
                              "ends_at": values["ends_at"] or None,
                              "links": draft_fields(values)[0]["links"]}
    if values["publish_at"]:
        fields["publish_at"] = values["publish_at"]
    return fields


def field_problems(error: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for err in error.errors():
        loc = err.get("loc") or ("form",)
        problems.setdefault(str(loc[0]), french_error(dict(err)))
    return problems


async def store_attachments(request: Request, who: SignedIn, commune: Commune,
                            form: FormData, values: dict[str, Any]) -> str:
    """Store a file chosen in the form (added to the draft's attachments by its id).

    Checked as the API's upload is: by content (PNG, JPEG, WebP, PDF) and size; a photo is
    reduced as there. Returns a French error, or "" if all went well or no file was chosen.
    """
    upload = form.get("attachment")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return ""
    limit = ctx(request).settings.attachment_max_bytes
    data = await upload.read(limit + 1)
    if not data:
        return "Le fichier choisi est vide."
    if len(data) > limit:
        return f"Le fichier est trop gros : {human_size(limit)} au plus."
    media_type = attachments.sniff(data)
    if media_type is None:
        return "Ce fichier n'est ni une image (PNG, JPEG, WebP) ni un PDF."
    if len(values["attachments"]) >= MAX_ATTACHMENTS:
        return f"{MAX_ATTACHMENTS} pièces jointes au plus."
    try:
        data = await attachments.reduced(data, media_type)
    except attachments.UnreadableImage:
        return "Cette image est illisible ou abîmée : enregistrez-la de nouveau et réessayez."
    stored = await (await attachments.attachments_of(request)).put(
        commune.insee, attachments.clean_filename(upload.filename, media_type), data,
        media_type)
    log.info("attachment_stored", attachment_id=stored.id, media_type=media_type,
             size=stored.size)
    values["attachments"].append(stored.id)
    return ""


async def attachment_files(request: Request, commune: Commune,
                           values: dict[str, Any]) -> list[dict[str, Any]]:
    """The draft's uploaded attachments, by name and size, to show staff what is attached."""
    if not values["attachments"]:
        return []
    store = await attachments.attachments_of(request)
    found = [await store.info(commune.insee, a) for a in values["attachments"]]
    return [{"id": f.id, "name": f.filename, "size": f.size, "url": f.url} for f in found if f]


def compose_page(request: Request, who: SignedIn, commune: Commune, values: dict[str, Any],
                 problems: dict[str, str] | None = None, status: int = 200,
                 error: str = "", files: list[dict[str, Any]] | None = None,
                 copied: Notice | None = None, left_out: list[str] | None = None
                 ) -> HTMLResponse:
    return page("compose.html", status=status, me=who.account, csrf=who.session.csrf,
                commune=commune, v=values, problems=problems or {}, error=error,
                field_labels=FIELD_LABELS, files=files or [], copied=copied,
                left_out=left_out or [],
                attachment_limit=ctx(request).settings.attachment_max_bytes)


def copy_values(notice: Notice, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """The compose form filled in from `notice`, and what the copy leaves out (in French).

    Dates already past are left out (a copy is for a new occasion, and a past end would be
    refused); the files hosted here are reused (an upload is never changed); a file
    elsewhere or a link past the form's rows cannot be carried by the form, and is named.
    """
    values = form_values(None)
    values.update(category=notice.category.value, title=notice.title, body=notice.body)
    left_out: list[str] = []
    for name in ("starts_at", "ends_at"):
        moment: datetime | None = getattr(notice, name)
        if moment is not None and moment > now:
            values[name] = local_input(moment)
        elif moment is not None:
            left_out.append("la date de début, passée" if name == "starts_at"
                            else "la date de fin, passée")
    links = [{"url": str(x.url), "label": x.label} for x in notice.links]
    left_out += [f"le lien {x['label'] or x['url']}" for x in links[LINK_ROWS:]]
    values["links"] = (links[:LINK_ROWS]
                       + [{"url": "", "label": ""} for _ in range(LINK_ROWS - len(links))])
    values["attachments"] = [a.id for a in notice.attachments if a.id][:MAX_ATTACHMENTS]
    left_out += [f"la pièce jointe {a.name}" for a in notice.attachments if not a.id]
    return values, left_out


@pages.get("/communes/{insee}/compose", response_class=HTMLResponse)
async def compose(request: Request, insee: str) -> Response:
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        return compose_page(request, who, commune, form_values(None))

    return await guarded(request, insee, show, post=False)


async def channel_previews(request: Request, who: SignedIn, commune: Commune,
                           draft: NoticeDraft) -> dict[str, dict[str, Any]]:
    """What each channel will show and reach, as the channels themselves answer it.

    The same function as POST /api/v1/communes/{insee}/previews: each running channel is
    asked over NATS; one that is away or silent comes back unavailable, with the reason.
    """
    answer = await previews.preview_draft(ctx(request), who.member, commune.insee, draft,
                                          request)
    shown: dict[str, dict[str, Any]] = answer.channels.model_dump()
    return shown


def approval_needed(commune: Commune, category: str) -> bool:
    return category in commune.settings.approval_required_for


@pages.post("/communes/{insee}/preview", response_class=HTMLResponse)
async def preview(request: Request, insee: str) -> Response:
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        form: FormData = request.state.form
        values = form_values(form)
        upload_error = await store_attachments(request, who, commune, form, values)
        fields, problems = draft_fields(values)
        if upload_error:
            problems["attachments"] = upload_error
        try:
            draft = NoticeDraft.model_validate(fields)
        except ValidationError as error:
            problems = field_problems(error) | problems
        if problems or text(form, "action") == "edit":
            status = 422 if problems else 200
            return compose_page(request, who, commune, values, problems, status,
                                files=await attachment_files(request, commune, values))
        try:
            answers = await channel_previews(request, who, commune, draft)
        except ApiError as error:  # an attachment gone, a date refused at this moment
            problems = {f["field"].split(".")[0]: french_error({"msg": f["message"]})
                        for f in error.fields or ()}
            return compose_page(request, who, commune, values, problems, error.kind.status,
                                error="" if problems else api_failure(error),
                                files=await attachment_files(request, commune, values))
        return page("preview.html", now=ctx(request).clock(), me=who.account,
                    csrf=who.session.csrf, commune=commune,
                    v=values, draft=draft, previews=answers,
                    files=await attachment_files(request, commune, values),
                    category_label=CATEGORY_LABELS[draft.category],
                    approval=approval_needed(commune, draft.category.value))

    return await guarded(request, insee, show, post=True)


@pages.post("/communes/{insee}/publish", response_class=HTMLResponse)
async def publish(request: Request, insee: str) -> Response:
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        form: FormData = request.state.form
        values = form_values(form)
        if text(form, "action") == "edit":
            return compose_page(request, who, commune, values,
                                files=await attachment_files(request, commune, values))
        fields, problems = draft_fields(values)
        try:
            draft = NoticeDraft.model_validate(fields)
        except ValidationError as error:
            return compose_page(request, who, commune, values,
                                field_problems(error) | problems, 422)
        if problems:
            return compose_page(request, who, commune, values, problems, 422)
        try:
            notice = (await application.publish(ctx(request), who.member, insee, draft,
                                                Resolver(request), values["key"])).notice
        except ApiError as error:
            return compose_page(request, who, commune, values, status=error.kind.status,
                                error=api_failure(error),
                                files=await attachment_files(request, commune, values))
        return to(f"/staff/communes/{insee}/notices/{notice.id}?ok={notice.state.value}")

    return await guarded(request, insee, act, post=True)


# -- one notice: read, correct, withdraw, approve ---------------------------------------------

async def notice_page(request: Request, who: SignedIn, commune: Commune, notice_id: str,
                      problems: dict[str, str] | None = None, error: str = "",
                      status: int = 200, values: dict[str, Any] | None = None) -> Response:
    c = ctx(request)
    notice = await application.stored(c, commune.insee, notice_id)
    if notice is None:
        return message(404, "Avis introuvable", [ERROR_FRENCH["notice_not_found"]], who,
                       commune)
    now = c.clock()
    notice = api.shown(notice, now)
    # A sent notice may have a correction waiting for approval: the page shows both, and
    # the correction form starts from the correction (the latest version).
    waiting = (await application.waiting_correction(c, notice)
               if application.on_stream(c, commune.insee, notice_id) is not None else None)
    latest = waiting or notice
    reach = staff_api.reach_of(request, commune.insee, [notice]).get(notice.id, {})
    if values is None:
        links = [{"url": str(x.url), "label": x.label} for x in latest.links]
        links += [{"url": "", "label": ""} for _ in range(LINK_ROWS - len(links))]
        values = {"category": latest.category.value, "title": latest.title,
                  "body": latest.body, "starts_at": local_input(latest.starts_at),
                  "ends_at": local_input(latest.ends_at),
                  "publish_at": local_input(latest.publish_at), "links": links}
    # A group's copy changes for the whole group only (groups.py): no form for it here.
    editable = notice.state is not NoticeState.WITHDRAWN and notice.broadcast_id is None
    proposal = (await staff_api.proposals_for(c, [notice])).get(notice.id)
    group = await group_of(c, notice)
    authors = lifecycle.waiting_authors(latest)
    can_approve = (latest.state is NoticeState.PENDING_APPROVAL
                   and who.account.name not in authors)
    held = await withdrawals(request).get(notice_id)
    if held is not None and (held.commune != commune.insee
                             or notice.state is NoticeState.WITHDRAWN):
        held = None
    held_in = (in_french(max(1, math.ceil((held.due_at - now).total_seconds())))
               if held is not None else "")
    return page("notice.html", status=status, now=now, me=who.account, csrf=who.session.csrf,
                held=held, held_in=held_in,
                commune=commune, notice=notice, waiting=waiting, latest=latest, reach=reach,
                v=values, problems=problems or {}, error=error, editable=editable,
                can_approve=can_approve, authors=authors, proposal=proposal, group=group,
                approval=approval_needed(commune, latest.category.value),
                flash=request.query_params.get("ok", "")[:40], field_labels=FIELD_LABELS,
                public_url=f"/communes/{commune.insee}/notices/{notice.id}")


@pages.get("/communes/{insee}/notices/{notice_id}", response_class=HTMLResponse)
async def one_notice(request: Request, insee: str, notice_id: str) -> Response:
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        return await notice_page(request, who, commune, notice_id)

    return await guarded(request, insee, show, post=False)


@pages.get("/communes/{insee}/notices/{notice_id}/duplicate", response_class=HTMLResponse)
async def duplicate(request: Request, insee: str, notice_id: str) -> Response:
    """A new notice's form filled in from this one: nothing is stored until it is published."""
    async def show(request: Request, who: SignedIn, commune: Commune) -> Response:
        c = ctx(request)
        notice = await application.stored(c, commune.insee, notice_id)
        if notice is None:
            return message(404, "Avis introuvable", [ERROR_FRENCH["notice_not_found"]], who,
                           commune)
        # The text waiting for approval, if any, is the latest the mairie wrote.
        latest = await application.waiting_correction(c, notice) if application.on_stream(
            c, commune.insee, notice_id) is not None else None
        values, left_out = copy_values(latest or notice, c.clock())
        log.info("notice_duplicated", notice_id=notice_id)
        return compose_page(request, who, commune, values, copied=notice, left_out=left_out,
                            files=await attachment_files(request, commune, values))

    return await guarded(request, insee, show, post=False)


async def group_of(c: Context, notice: Notice) -> groups.Group | None:
    """The group a copy of a group publication was published for."""
    return await groups.registry(c).get(notice.group) if notice.group else None


def api_failure(error: ApiError) -> str:
    return ERROR_FRENCH.get(error.kind.code, error.message)


@pages.post("/communes/{insee}/notices/{notice_id}/correct", response_class=HTMLResponse)
async def correct(request: Request, insee: str, notice_id: str) -> Response:
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        form: FormData = request.state.form
        values = form_values(form)
        try:
            patch = NoticePatch.model_validate(patch_fields(values))
        except ValidationError as error:
            return await notice_page(request, who, commune, notice_id, field_problems(error),
                                     status=422, values=values)
        if text(form, "action") == "edit":  # back from the confirmation, to change it
            return await notice_page(request, who, commune, notice_id, values=values)
        version = text(form, "version", 20)
        if_match = f'"{version}"' if version else None
        try:
            if text(form, "confirm") != "1":
                _, latest, corrected = await application.corrected_version(
                    ctx(request), who.member, insee, notice_id, patch, Resolver(request),
                    if_match)
                if corrected is not latest and lifecycle.is_sent(latest):
                    # Sent again to every channel, SMS paid: shown and confirmed first.
                    return await change_page(request, who, commune, corrected,
                                             EventKind.CORRECTED, latest.version, values)
            notice = await application.correct(ctx(request), who.member, insee, notice_id,
                                               patch, Resolver(request), if_match)
        except ApiError as error:
            fields_named = {f["field"]: f["message"] for f in error.fields or ()}
            if fields_named:
                problems = {k: french_error({"msg": v}) for k, v in fields_named.items()}
                return await notice_page(request, who, commune, notice_id, problems,
                                         status=422, values=values)
            return await notice_page(request, who, commune, notice_id, error=api_failure(error),
                                     status=error.kind.status, values=values)
        done = "corrected"
        if notice.state is NoticeState.PENDING_APPROVAL:
            # Sent already: what was sent stays until the correction is approved.
            done = "correction-pending" if notice.published_at else "pending_approval"
        return to(f"/staff/communes/{insee}/notices/{notice.id}?ok={done}")

    return await guarded(request, insee, act, post=True)


async def _notice_button(request: Request, insee: str, notice_id: str,
                         action: Callable[[SignedIn], Awaitable[str]]) -> Response:
    """A button on a notice's page: do it, then back to the page saying what was done."""
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        try:
            done = await action(who)
        except ApiError as error:
            return await notice_page(request, who, commune, notice_id, error=api_failure(error),
                                     status=error.kind.status)
        return to(f"/staff/communes/{insee}/notices/{notice_id}?ok={done}")

    return await guarded(request, insee, act, post=True)


async def change_page(request: Request, who: SignedIn, commune: Commune, notice: Notice,
                      kind: EventKind, version: int,
                      values: dict[str, Any] | None = None) -> Response:
    """A correction or a withdrawal before it is done: what each channel would send, to
    how many and at what cost (the channels' own previews), and the button that does it."""
    sent = lifecycle.is_sent(notice)
    answers: dict[str, Any] = {}
    if sent:
        shown = await previews.preview_change(ctx(request), commune, notice, kind)
        answers = shown.channels.model_dump()
    return page("confirm.html", me=who.account, csrf=who.session.csrf, commune=commune,
                notice=notice, kind=kind.value, previews=answers, sent=sent,
                version=version, v=values or {},
                undo_s=(in_french(math.ceil(ctx(request).settings.withdraw_undo_s))
                        if kind is EventKind.WITHDRAWN
                        and ctx(request).settings.withdraw_undo_s > 0 else ""),
                pending=notice.state is NoticeState.PENDING_APPROVAL,
                # A withdrawal reaches those who got a version, not every follower.
                reach_prefix="au plus " if kind is EventKind.WITHDRAWN else "")


@pages.post("/communes/{insee}/notices/{notice_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, insee: str, notice_id: str) -> Response:
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        form: FormData = request.state.form
        c = ctx(request)
        version = text(form, "version", 20)
        try:
            if text(form, "confirm") != "1":
                checked = await application.withdrawal(c, who.member, insee, notice_id)
                return await change_page(request, who, commune, checked.event.notice,
                                         EventKind.WITHDRAWN, checked.current.version)
            if_match = f'"{version}"' if version else None
            delay = c.settings.withdraw_undo_s
            if delay > 0:
                # Checked now as the API would (the notice, its version, a group's copy),
                # done once the minute to undo it is over (undo.py).
                await application.withdrawal(c, who.member, insee, notice_id, if_match)
                await withdrawals(request).hold(notice_id, insee, who.member, c.clock(),
                                                timedelta(seconds=delay))
                log.info("withdrawal_held", notice_id=notice_id, delay_s=delay)
                return to(f"/staff/communes/{insee}/notices/{notice_id}?ok=withdrawal-held")
            await application.withdraw(c, who.member, insee, notice_id, if_match)
        except ApiError as error:
            return await notice_page(request, who, commune, notice_id, error=api_failure(error),
                                     status=error.kind.status)
        return to(f"/staff/communes/{insee}/notices/{notice_id}?ok=withdrawn")

    return await guarded(request, insee, act, post=True)


def withdrawals(request: Request) -> undo.Withdrawals:
    held: undo.Withdrawals = request.app.state.withdrawals
    return held


@pages.post("/communes/{insee}/notices/{notice_id}/undo-withdraw",
            response_class=HTMLResponse)
async def undo_withdraw(request: Request, insee: str, notice_id: str) -> Response:
    """« Annuler le retrait »: the held withdrawal is dropped; nothing was sent."""
    async def act(request: Request, who: SignedIn, commune: Commune) -> Response:
        held = await withdrawals(request).get(notice_id)
        if held is None or held.commune != insee:
            return await notice_page(request, who, commune, notice_id, status=409,
                                     error=UNDO_TOO_LATE)
        try:
            await withdrawals(request).undo(notice_id)
        except undo.TooLate:
            return await notice_page(request, who, commune, notice_id, status=409,
                                     error=UNDO_TOO_LATE)
        log.info("withdrawal_undone", notice_id=notice_id, asked_by=held.by.id)
        return to(f"/staff/communes/{insee}/notices/{notice_id}?ok=withdrawal-undone")

    return await guarded(request, insee, act, post=True)


UNDO_TOO_LATE = ("Trop tard pour annuler : le retrait est déjà parti (ou a déjà été "
                 "annulé). Si l'avis doit revenir, publiez-le de nouveau avec « Dupliquer ».")


@pages.post("/communes/{insee}/notices/{notice_id}/publish", response_class=HTMLResponse)
async def publish_proposed(request: Request, insee: str, notice_id: str) -> Response:
    """One click: an official alert proposed goes out (approval rules apply), issue 29."""
    from services.notices import proposals

    async def action(who: SignedIn) -> str:
        notice = await proposals.publish(ctx(request), who.member, insee, notice_id)
        if notice.state is NoticeState.PENDING_APPROVAL and notice.published_at:
            return "correction-pending"  # the source's correction of a sent notice waits
        return f"proposal-{notice.state}"

    return await _notice_button(request, insee, notice_id, action)


@pages.post("/communes/{insee}/notices/{notice_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, insee: str, notice_id: str) -> Response:
    async def action(who: SignedIn) -> str:
        notice = await application.approve(ctx(request), who.member, insee, notice_id)
        return f"approved-{notice.state}"

    return await _notice_button(request, insee, notice_id, action)
