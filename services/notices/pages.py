"""The residents' public pages: a commune's notices, each notice, the poster, subscriptions.

Plain server-rendered HTML (no JavaScript), so an old phone shows them. Subscriptions are
HTML forms posted here and passed on to the channel that owns them (email, SMS) over the
same request-reply the JSON API uses; this service keeps no address and logs none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from crieur import french
from crieur.geo import geography
from schemas import Commune, Notice, NoticeState
from schemas.channels import ChannelHttpReply, ChannelHttpRequest, channel_for
from schemas.commune import INSEE_RE
from schemas.notice import CATEGORY_LABELS, Category
from services.notices import archive
from services.notices.api import ask_channel, ctx, forwarded_headers
from services.notices.application import Context, on_stream
from services.notices.caching import Rendered, answer
from services.notices.crosssite import cross_site
from services.notices.errors import ApiError
from services.notices.view import went_out

HTML = "text/html; charset=utf-8"
# Notices per page of the commune page: a village rarely has more current at once.
PAGE_SIZE = 30
MAX_PAGE = 1000
# What a body shows in the list; the notice's own page has all of it.
EXCERPT_CHARS = 280

def french_date(moment: datetime) -> str:
    """`1er décembre 2026 à 8 h 05`, in Paris time: the one formatter every channel uses."""
    return french.date_time(moment)


def when(notice: Notice) -> str:
    """When the notice was published and how long it holds, in one French sentence."""
    parts = []
    if notice.published_at is not None:
        parts.append(f"Publié le {french_date(notice.published_at)}")
    if notice.starts_at is not None and notice.ends_at is not None:
        parts.append(f"valable du {french_date(notice.starts_at)} "
                     f"au {french_date(notice.ends_at)}")
    elif notice.starts_at is not None:
        parts.append(f"valable à partir du {french_date(notice.starts_at)}")
    elif notice.ends_at is not None:
        parts.append(f"valable jusqu'au {french_date(notice.ends_at)}")
    sentence = ", ".join(parts)
    return sentence[:1].upper() + sentence[1:] + "." if sentence else ""


def upcoming(notices: list[Notice], now: datetime) -> list[Notice]:
    """Notices already sent whose validity starts later: announced, not yet current.

    The Marché de Noël on the 19th, published on the 7th, reaches subscribers at once; the
    page lists it under « À venir » until the 19th, when it joins the current notices.
    """
    later = [n for n in notices
             if n.published_at is not None and n.starts_at is not None and now < n.starts_at
             and n.state in (NoticeState.PUBLISHED, NoticeState.CORRECTED)]
    return sorted(later, key=lambda n: (n.starts_at, n.id))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + " …"


def human_size(size: int) -> str:
    """A file size as French readers write it: `850 ko`, `1,2 Mo`."""
    for unit, scale in (("Go", 10**9), ("Mo", 10**6), ("ko", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f}".replace(".", ",").replace(",0", "") + f" {unit}"
    return f"{size} octets"


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    # Every notice text is staff input: escaped everywhere, whatever the file's name.
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(date=french_date, when=when, excerpt=excerpt, size=human_size,
                         counted=french.counted, seconds=french.seconds)

ALL_CATEGORIES = [c.value for c in Category]
CATEGORY_CHOICES = [(c.value, CATEGORY_LABELS[c]) for c in Category]
# Defaults every template may rely on (StrictUndefined makes a missing one an error).
PAGE_DEFAULTS: dict[str, Any] = {
    "commune": None, "categories": CATEGORY_CHOICES, "all_categories": ALL_CATEGORIES,
    "email": "", "email_error": "", "email_categories": None,
    "phone": "", "sms_error": "", "sms_categories": None, "code_error": "",
    "sms_offered": [], "sms_offer_sentence": "",
    "form": None,
}


def render(template: str, **values: Any) -> bytes:
    return TEMPLATES.get_template(template).render(PAGE_DEFAULTS | values).encode()


def html(template: str, status: int = 200, headers: dict[str, str] | None = None,
         **values: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **values), status_code=status, headers=headers)


def not_found(commune: Commune | None, message: str) -> HTMLResponse:
    return html("not_found.html", status=404, commune=commune, message=message)


NO_COMMUNE = ("Aucune commune ne porte ce code dans Crieur. Vérifiez l'adresse, "
              "ou demandez-la à votre mairie.")
NO_NOTICE = "Cet avis n'existe pas, ou il n'a pas encore été publié. Vérifiez l'adresse."


async def public_commune(c: Context, insee: str) -> Commune | None:
    return await c.store.commune_registry.get(insee) if INSEE_RE.match(insee) else None


def page_url(c: Context, insee: str) -> str:
    return f"{c.settings.public_url.rstrip('/')}/communes/{insee}"


# The commune page runs one script of ours: the Web Push channel's (services/webpush),
# with its service worker and web app manifest; otherwise as every page (PAGES_CSP).
COMMUNE_CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "script-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

pages = APIRouter(include_in_schema=False)


def name_key(text: str) -> str:
    """`saint remy` for `Saint-Rémy`: what a resident types matches however it is spelt."""
    return " ".join(re.findall(r"[a-z0-9]+", archive.fold(text)))


@dataclass(frozen=True)
class Listed:
    """A commune as the home page lists it, with what the official list says of it."""

    insee: str
    name: str
    postal_codes: tuple[str, ...]
    departement: str
    key: str  # the name as matched: name_key(name)


def listed(insee: str, name: str) -> Listed:
    place = geography().communes.get(insee)
    return Listed(insee, name, place.postal_codes if place else (),
                  place.departement if place else insee[:2], name_key(name))


@cache
def france() -> tuple[Listed, ...]:
    """Every commune of the official list, made once: a search then costs a scan of
    35,000 short strings (a few milliseconds), not 35,000 foldings."""
    return tuple(listed(p.insee, p.name) for p in geography().communes.values())


def matching(places: list[Listed], query: str) -> list[Listed]:
    """Those a resident's query names: by postal code or INSEE code (its first digits
    are enough), or by name (any part of it, accents and hyphens aside)."""
    digits = re.sub(r"\s", "", query)
    if digits.isdigit() or re.fullmatch(r"2[AaBb]\d*", digits):
        code = digits.upper()
        return [p for p in places
                if p.insee.startswith(code) or any(pc.startswith(code) for pc in p.postal_codes)]
    key = name_key(query)
    if not key:
        return places
    found = [p for p in places if key in p.key]

    def rank(p: Listed) -> int:
        # « gray »: Gray, then Gray-la-Ville, then Arc-lès-Gray, then Graye-sur-Mer (a
        # whole word before part of one); sorted() keeps the alphabetical order in each.
        words = f" {p.key} "
        return (0 if p.key == key else 1 if p.key.startswith(key + " ")
                else 2 if f" {key} " in words else 3)

    return sorted(found, key=rank)


# How many communes of the official list a search names that do not publish here.
ELSEWHERE_SHOWN = 5


@pages.get("/", response_class=HTMLResponse)
@pages.get("/communes", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The communes that publish here, each a link to its notices, with a search by name or
    postal code (a resident who typed the site's address, or cut a commune's, lands
    somewhere in French)."""
    registry = ctx(request).store.commune_registry
    communes = sorted(await registry.all(), key=lambda x: name_key(x.name))
    latest = max((x.created_at for x in communes), default=None)
    here = [listed(x.insee, x.name) for x in communes]
    query = request.query_params.get("q", "")[:archive.MAX_QUERY_CHARS].strip()
    if not name_key(query):
        return answer(request, Rendered(render("home.html", communes=here, query="",
                                               found=here, elsewhere=[]), HTML, latest))
    found = matching(here, query)
    registered = {x.insee for x in here}
    # Communes of France that match but do not publish here: the resident learns that
    # theirs is not (yet) on Crieur, rather than wondering about a typo. Bounded: a
    # two-letter query names thousands.
    elsewhere = [p for p in matching(list(france()), query)
                 if p.insee not in registered][:ELSEWHERE_SHOWN]
    body = render("home.html", communes=here, query=query, found=found, elsewhere=elsewhere)
    return answer(request, Rendered(body, HTML, latest))


@pages.get("/communes/{insee}", response_class=HTMLResponse)
async def commune_page(request: Request, insee: str) -> Response:
    c = ctx(request)
    commune = await public_commune(c, insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() else 0
    if not 1 <= page <= MAX_PAGE:
        return not_found(commune, "Cette page d'avis n'existe pas.")
    now = c.clock()
    view = c.store.view

    async def rendering() -> tuple[Rendered, datetime | None]:
        current = view.current(insee, now)
        start = (page - 1) * PAGE_SIZE
        shown = [n.model_copy(update={"state": n.state_at(now)})
                 for n in current[start:start + PAGE_SIZE]]
        body = render(
            "commune.html", commune=commune, notices=shown, total=len(current),
            upcoming=upcoming(view.all(insee), now) if page == 1 else [],
            **sms_offer(c, insee),
            alerts=sum(n.category is Category.ALERTE for n in current), page=page,
            next_page=page + 1 if start + PAGE_SIZE < len(current) else None,
        )
        changed = view.changed_at(insee, now) or commune.created_at
        return Rendered(body, HTML, changed), view.next_change(insee, now)

    rendered = await c.cache.get(("page", insee, commune, page), view.stamp(insee), now,
                                 rendering)
    response = answer(request, rendered)
    response.headers["Content-Security-Policy"] = COMMUNE_CSP
    return response


def archive_index(c: Context, insee: str, now: datetime) -> archive.ArchiveIndex:
    """The commune's archive, rebuilt only when its notices change or one of them ends."""
    stamp = c.store.view.stamp(insee)
    known = c.archives.get(insee)
    if known is not None and known[0] == stamp and (known[1] is None or now < known[1]):
        return known[2]
    index = archive.ArchiveIndex(c.store.view.all(insee), now)
    c.archives[insee] = (stamp, c.store.view.next_change(insee, now), index)
    return index


def archive_link(insee: str, filters: archive.Filters, page: int) -> str:
    query = filters.query() | ({"page": str(page)} if page > 1 else {})
    return f"/communes/{insee}/archives" + (f"?{urlencode(query)}" if query else "")


@pages.get("/communes/{insee}/archives", response_class=HTMLResponse)
async def archives_page(request: Request, insee: str) -> Response:
    """Past notices, most recent first, with a search (a plain GET form: no script)."""
    c = ctx(request)
    commune = await public_commune(c, insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() else 0
    if not 1 <= page <= MAX_PAGE:
        return not_found(commune, "Cette page des avis passés n'existe pas.")
    filters = archive.Filters.read(dict(request.query_params))
    asked = request.query_params.get("q", "")[:archive.MAX_QUERY_CHARS].strip()
    now = c.clock()
    index = archive_index(c, insee, now)

    def rendered() -> Rendered:
        found = index.search(filters)
        start = (page - 1) * PAGE_SIZE
        body = render(
            "archives.html", commune=commune, notices=found[start:start + PAGE_SIZE],
            found=len(found), total=index.total, truncated=index.truncated,
            notices_limit=french.number(archive.SEARCH_LIMIT),
            searched=filters.any, asked=asked, filters=filters,
            months=[(m, archive.month_label(m)) for m in index.months],
            previous_url=archive_link(insee, filters, page - 1) if page > 1 else None,
            next_url=(archive_link(insee, filters, page + 1)
                      if start + PAGE_SIZE < len(found) else None),
        )
        changed = c.store.view.changed_at(insee, now) or commune.created_at
        return Rendered(body, HTML, changed)

    if filters.any:
        # A search is not kept in the render cache: any client could fill it with queries
        # and push every village's pages out. Its cost is bounded by the index instead.
        return answer(request, rendered())

    async def rendering() -> tuple[Rendered, datetime | None]:
        return rendered(), c.store.view.next_change(insee, now)

    return answer(request, await c.cache.get(("archives", insee, commune, page),
                                             c.store.view.stamp(insee), now, rendering))


@pages.get("/communes/{insee}/fil", response_class=HTMLResponse)
async def feed_page(request: Request, insee: str) -> Response:
    """What the Atom feed is and how to follow it: a browser opening the feed itself shows
    raw XML, so the commune page links here (the feed's address stays as readers know it)."""
    c = ctx(request)
    commune = await public_commune(c, insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    feed = f"{c.settings.public_url.rstrip('/')}/api/v1/communes/{insee}/feed.atom"
    return html("feed.html", commune=commune, feed=feed)


@pages.get("/communes/{insee}/notices/{notice_id}", response_class=HTMLResponse)
async def notice_page(request: Request, insee: str, notice_id: str) -> Response:
    c = ctx(request)
    commune = await public_commune(c, insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    notice = went_out(on_stream(c, insee, notice_id))
    if notice is None:
        return not_found(commune, NO_NOTICE)
    now = c.clock()
    state = notice.state_at(now)
    modified = notice.updated_at
    if state is NoticeState.EXPIRED and notice.ends_at is not None:
        modified = max(modified, notice.ends_at)
    body = render("notice.html", commune=commune, notice=notice, state=state.value)
    return answer(request, Rendered(body, HTML, modified))


@pages.get("/communes/{insee}/affiche", response_class=HTMLResponse)
async def poster(request: Request, insee: str) -> Response:
    c = ctx(request)
    commune = await public_commune(c, insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    url = page_url(c, insee)

    async def rendering() -> tuple[Rendered, datetime | None]:
        # Error correction M: still reads with a drawing pin or a stain on the sheet.
        qr = segno.make(url, error="m", micro=False)
        svg = qr.svg_inline(scale=1, border=4, omitsize=True, dark="#000", light="#fff",
                            title=f"Code QR vers {url}")
        # role=img and a label so screen readers name the code instead of skipping it.
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="Code QR vers {url}" ', 1)
        body = render("poster.html", commune=commune, qr_svg=svg, page_url=url)
        return Rendered(body, HTML, commune.created_at), None

    rendered = await c.cache.get(("affiche", insee, commune, url), 0, c.clock(), rendering)
    return answer(request, rendered)


# -- subscriptions: HTML forms passed on to the channel's own JSON API ------------------------

async def form_fields(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                    max_num_fields=50)


def first(form: dict[str, list[str]], name: str, limit: int = 320) -> str:
    return (form.get(name) or [""])[0].strip()[:limit]


def chosen(form: dict[str, list[str]], offered: list[str] = ALL_CATEGORIES) -> list[str]:
    return [x for x in offered if x in form.get("categories", [])]


# How the SMS form names what the commune sends by SMS: « seulement les alertes ».
SMS_NAMES = {Category.ALERTE: "les alertes", Category.TRAVAUX: "les avis de travaux",
             Category.INFORMATION: "les informations", Category.EVENEMENT: "les événements"}


def sms_offer(c: Context, insee: str) -> dict[str, Any]:
    """What the SMS form offers: the categories this commune sends by SMS, and a sentence
    saying so (a resident must not tick what never comes)."""
    carried = c.settings.sms_categories_for(insee)
    kept = [cat for cat in Category if cat in carried]
    names = [SMS_NAMES[cat] for cat in kept]
    if not names:  # the commune sends nothing by SMS: no form
        return {"sms_offered": [], "sms_offer_sentence": ""}
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]
    return {"sms_offered": [(cat.value, CATEGORY_LABELS[cat]) for cat in kept],
            "sms_offer_sentence": f"Par SMS, la mairie envoie seulement {said}."}


async def ask(request: Request, path: str, payload: dict[str, Any]) -> ChannelHttpReply | None:
    """POST `payload` to the channel's JSON route; None when the channel does not answer."""
    c = ctx(request)
    channel = channel_for(path)
    if channel is None:  # a path of ours, not a channel's: a bug here
        raise ValueError(f"no channel answers {path}")
    body = json.dumps(payload).encode()
    headers = forwarded_headers(request) | {"content-type": "application/json",
                                            "accept": "application/json"}
    message = ChannelHttpRequest(
        method="POST", path=path, headers=headers, body=body.decode(),
        client_ip=request.client.host if request.client else "",
    )
    try:
        return await ask_channel(c, channel, message)
    except ApiError:
        return None


def fields_of(reply: ChannelHttpReply) -> dict[str, Any]:
    """The channel's JSON answer as a dict; empty if it is not a JSON object."""
    try:
        body = json.loads(reply.body_bytes())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def fields_named(reply: ChannelHttpReply) -> set[str]:
    """The fields a channel's JSON error names (our error format), e.g. {"email"}."""
    try:
        error = json.loads(reply.body_bytes())["error"]
        return {str(f["field"]).split(".")[0] for f in error.get("fields") or ()}
    except (ValueError, KeyError, TypeError):
        return set()


def unavailable(commune: Commune, what: str) -> HTMLResponse:
    return html("message.html", status=503, headers={"Retry-After": "300"}, commune=commune,
                heading="Service momentanément indisponible",
                lines=[f"L'abonnement {what} ne fonctionne pas pour le moment.",
                       "Réessayez un peu plus tard. Rien n'a été enregistré."])


def too_many(commune: Commune, reply: ChannelHttpReply) -> HTMLResponse:
    retry = {k.lower(): v for k, v in reply.headers.items()}.get("retry-after", "600")
    return html("message.html", status=429, headers={"Retry-After": retry}, commune=commune,
                heading="Trop de demandes",
                lines=["Trop de demandes ont été faites pour cette adresse ou ce numéro.",
                       "Réessayez dans un moment."])


def failed(commune: Commune) -> HTMLResponse:
    return html("message.html", status=502, commune=commune, heading="Une erreur est survenue",
                lines=["Votre demande n'a pas pu être enregistrée. Réessayez plus tard."])


def from_elsewhere(request: Request, commune: Commune) -> HTMLResponse | None:
    """A French 403 for a form posted by another site's page; None for our own."""
    if not cross_site(request.headers, ctx(request).settings.public_url):
        return None
    return html("message.html", status=403, commune=commune, heading="Demande refusée",
                lines=["Ce formulaire a été envoyé depuis un autre site que celui de la "
                       "mairie : par prudence, rien n'a été enregistré.",
                       "Pour vous abonner, remplissez le formulaire de la page des avis "
                       f"de {commune.name}."])


@pages.post("/communes/{insee}/abonnement/email", response_class=HTMLResponse)
async def subscribe_email(request: Request, insee: str) -> Response:
    commune = await public_commune(ctx(request), insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    if (refused := from_elsewhere(request, commune)) is not None:
        return refused
    form = await form_fields(request)
    email, categories = first(form, "email"), chosen(form)
    again: dict[str, Any] = {"commune": commune, "form": "email", "email": email,
                             "email_categories": categories, "heading": "Abonnement par e-mail"}
    if not email:
        return html("message.html", 422, **again, lines=[],
                    email_error="Écrivez votre adresse e-mail.")
    if not categories:
        return html("message.html", 422, **again, lines=[],
                    email_error="Cochez au moins un type d'avis.")
    reply = await ask(request, "/api/v1/subscriptions/email",
                      {"email": email, "follows": [{"commune": insee, "categories": categories}]})
    if reply is None:
        return unavailable(commune, "par e-mail")
    if 200 <= reply.status < 300:
        return html("message.html", commune=commune, heading="Vérifiez vos e-mails",
                    lines=["Un e-mail de confirmation vient de vous être envoyé.",
                           "Ouvrez-le, cliquez sur le lien qu'il contient puis sur "
                           f"« Confirmer » : vous recevrez alors les avis de {commune.name}.",
                           "Rien reçu dans quelques minutes ? Regardez dans le dossier des "
                           "courriers indésirables (spam)."])
    if reply.status == 429:
        return too_many(commune, reply)
    if reply.status in (400, 422):
        message = ("Cette adresse e-mail ne semble pas valide. Vérifiez-la et réessayez."
                   if "email" in fields_named(reply) or not fields_named(reply)
                   else "Votre demande n'a pas pu être enregistrée. Vérifiez-la et réessayez.")
        return html("message.html", 422, **again, lines=[], email_error=message)
    return failed(commune)


@pages.post("/communes/{insee}/abonnement/sms", response_class=HTMLResponse)
async def subscribe_sms(request: Request, insee: str) -> Response:
    commune = await public_commune(ctx(request), insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    if (refused := from_elsewhere(request, commune)) is not None:
        return refused
    form = await form_fields(request)
    offer = sms_offer(ctx(request), insee)
    phone = first(form, "phone", 40)
    categories = chosen(form, [slug for slug, _ in offer["sms_offered"]])
    again: dict[str, Any] = {"commune": commune, "form": "sms", "phone": phone,
                             "sms_categories": categories, "heading": "Abonnement par SMS",
                             **offer}
    if not phone:
        return html("message.html", 422, **again, lines=[],
                    sms_error="Écrivez votre numéro de téléphone portable.")
    if not categories:
        return html("message.html", 422, **again, lines=[],
                    sms_error="Cochez au moins un type d'avis.")
    reply = await ask(request, "/api/v1/subscriptions/sms",
                      {"phone": phone, "follows": [{"commune": insee, "categories": categories}]})
    if reply is None:
        return unavailable(commune, "par SMS")
    if 200 <= reply.status < 300:
        return html("message.html", commune=commune, form="sms_code", phone=phone,
                    heading="Un code vous a été envoyé par SMS",
                    lines=["Vous allez recevoir un SMS avec un code de 6 chiffres.",
                           "Écrivez-le ci-dessous pour confirmer votre abonnement."])
    if reply.status == 429:
        return too_many(commune, reply)
    if reply.status in (400, 422):
        message = ("Ce numéro ne semble pas être un numéro de portable français. "
                   "Vérifiez-le et réessayez (par exemple 06 12 34 56 78)."
                   if "phone" in fields_named(reply) or not fields_named(reply)
                   else "Votre demande n'a pas pu être enregistrée. Vérifiez-la et réessayez.")
        return html("message.html", 422, **again, lines=[], sms_error=message)
    return failed(commune)


CODE_RE = re.compile(r"^\d{4,8}$")


@pages.post("/communes/{insee}/abonnement/sms/confirmer", response_class=HTMLResponse)
async def confirm_sms(request: Request, insee: str) -> Response:
    commune = await public_commune(ctx(request), insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    if (refused := from_elsewhere(request, commune)) is not None:
        return refused
    form = await form_fields(request)
    phone, code = first(form, "phone", 40), re.sub(r"\s", "", first(form, "code", 20))
    again: dict[str, Any] = {"commune": commune, "form": "sms_code", "phone": phone,
                             "heading": "Confirmer l'abonnement par SMS", "lines": []}
    wrong = "Ce code n'est pas le bon, ou il a expiré. Vérifiez le SMS reçu."
    if not phone:
        return html("message.html", 422, **(again | {"form": "sms"}),
                    **sms_offer(ctx(request), insee),
                    sms_error="Écrivez votre numéro de téléphone portable.")
    if not CODE_RE.match(code):
        return html("message.html", 422, **again, code_error=wrong)
    reply = await ask(request, "/api/v1/subscriptions/sms/confirm", {"phone": phone, "code": code})
    if reply is None:
        return unavailable(commune, "par SMS")
    if 200 <= reply.status < 300:
        status = fields_of(reply).get("status")
        if status == "deleted":
            return html("message.html", commune=commune, heading="C'est fait",
                        lines=["Votre numéro a été effacé : vous ne recevrez plus de SMS."])
        if status == "updated":
            return html("message.html", commune=commune, heading="C'est fait",
                        lines=[f"Vos choix pour {commune.name} sont enregistrés : vous "
                               "recevrez par SMS seulement les avis choisis."])
        return html("message.html", commune=commune, heading="C'est fait",
                    lines=[f"Vous recevrez désormais les avis de {commune.name} par SMS."])
    if reply.status == 429:
        return too_many(commune, reply)
    if reply.status in (400, 422):
        return html("message.html", 422, **again, code_error=wrong)
    return failed(commune)


MANAGE_SMS = "Mes SMS : changer ou arrêter"


@pages.get("/communes/{insee}/abonnement/sms/gerer", response_class=HTMLResponse)
async def manage_sms_page(request: Request, insee: str) -> Response:
    """Where a resident changes or stops the SMS of a commune: replying STOP is not always
    possible (an alphanumeric sender cannot be answered)."""
    commune = await public_commune(ctx(request), insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    return html("message.html", commune=commune, form="sms_manage", heading=MANAGE_SMS,
                lines=[], **sms_offer(ctx(request), insee))


@pages.post("/communes/{insee}/abonnement/sms/gerer", response_class=HTMLResponse)
async def manage_sms(request: Request, insee: str) -> Response:
    """The number, then a code by SMS (the channel's limits and code budget, as subscribing):
    these categories from now on, or no SMS at all from this commune."""
    commune = await public_commune(ctx(request), insee)
    if commune is None:
        return not_found(None, NO_COMMUNE)
    if (refused := from_elsewhere(request, commune)) is not None:
        return refused
    form = await form_fields(request)
    offer = sms_offer(ctx(request), insee)
    phone = first(form, "phone", 40)
    stop = first(form, "action", 10) != "update"
    categories = [] if stop else chosen(form, [slug for slug, _ in offer["sms_offered"]])
    again: dict[str, Any] = {"commune": commune, "form": "sms_manage", "phone": phone,
                             "sms_categories": categories, "heading": MANAGE_SMS,
                             "lines": [], **offer}
    if not phone:
        return html("message.html", 422, **again,
                    sms_error="Écrivez votre numéro de téléphone portable.")
    if not stop and not categories:
        return html("message.html", 422, **again,
                    sms_error="Cochez au moins un type d'avis, ou choisissez de ne plus "
                              "recevoir de SMS.")
    reply = await ask(request, "/api/v1/subscriptions/sms/manage",
                      {"phone": phone, "commune": insee, "categories": categories})
    if reply is None:
        return unavailable(commune, "par SMS")
    if 200 <= reply.status < 300:
        return html("message.html", commune=commune, form="sms_code", phone=phone,
                    heading="Un code vous a été envoyé par SMS",
                    lines=["Si ce numéro est abonné, il va recevoir un SMS avec un code de "
                           "6 chiffres.",
                           "Écrivez-le ci-dessous pour confirmer : "
                           + ("vous ne recevrez plus de SMS de cette commune." if stop
                              else "vous recevrez seulement les avis choisis.")])
    if reply.status == 429:
        return too_many(commune, reply)
    if reply.status in (400, 422):
        return html("message.html", 422, **again,
                    sms_error="Ce numéro ne semble pas être un numéro de portable français. "
                              "Vérifiez-le et réessayez (par exemple 06 12 34 56 78).")
    return failed(commune)


@pages.get("/communes/{insee}/{rest:path}", response_class=HTMLResponse)
async def unknown_page(request: Request, insee: str, rest: str) -> Response:
    """Any other address under a commune: a French 404, not the API's JSON one."""
    return not_found(await public_commune(ctx(request), insee), "Cette page n'existe pas.")
