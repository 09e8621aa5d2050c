"""Official alerts in: CAP 1.2 alerts read from feeds become proposals for staff.

The reader polls each URL of `CRIEUR_CAP_FEEDS` every `CRIEUR_CAP_POLL_S` seconds with
`If-None-Match`/`If-Modified-Since`. A URL is an Atom feed of CAP entries as MeteoAlarm
publishes them (each entry names its `cap:identifier` and links its CAP document), or a
CAP document itself. Each alert's area is matched to the registered communes by
département (DEPARTEMENT_OF_NUTS3 below, or an INSEE code), and becomes:

- `Alert`: a draft in state `proposed` for each matching commune, kept in the schedule
  bucket like a scheduled notice (no channel sees it) until a member of staff publishes it
  (`POST .../notices/{id}/publish`). Nothing is ever published without a member of staff.
- `Update`: the draft replaced, or, once published, a proposed correction.
- `Cancel`: the draft dropped, or, once published, a proposed withdrawal.

What each CAP identifier became is kept in the `cap_alerts` bucket (`a.<sha256>`), so the
same identifier is never proposed twice; a proposed correction or withdrawal waits under
`p.<notice id>`. A document that cannot be read (or unsigned when signatures are required)
is set aside as a dead letter with its reason, and the reader goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import httpx
import structlog
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field, ValidationError

from crieur.deadletter import dead_letter
from crieur.geo import geography
from schemas import Category, Link, Notice, NoticeState
from schemas.versions import BUS_MODEL, read_message
from services.notices.cap import CAP_NAMESPACE
from services.notices.store import NatsStore

log = structlog.get_logger("crieur.notices.capfeed")

SERVICE = "notices"
DEAD_LETTER_SUBJECT = "capfeed"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{" + CAP_NAMESPACE + "}"
SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
# Larger documents are not alerts: read no further.
MAX_DOCUMENT_BYTES = 2_000_000
AUTHOR = "Alerte officielle"

# NUTS 2013 level 3 (what MeteoAlarm's France feed gives as EMMA_ID and NUTS3 geocodes)
# -> INSEE département. Source: Eurostat, NUTS 2013 classification, France.
DEPARTEMENT_OF_NUTS3: dict[str, str] = {
    "FR101": "75", "FR102": "77", "FR103": "78", "FR104": "91", "FR105": "92", "FR106": "93",
    "FR107": "94", "FR108": "95",
    "FR211": "08", "FR212": "10", "FR213": "51", "FR214": "52",
    "FR221": "02", "FR222": "60", "FR223": "80",
    "FR231": "27", "FR232": "76",
    "FR241": "18", "FR242": "28", "FR243": "36", "FR244": "37", "FR245": "41", "FR246": "45",
    "FR251": "14", "FR252": "50", "FR253": "61",
    "FR261": "21", "FR262": "58", "FR263": "71", "FR264": "89",
    "FR301": "59", "FR302": "62",
    "FR411": "54", "FR412": "55", "FR413": "57", "FR414": "88",
    "FR421": "67", "FR422": "68",
    "FR431": "25", "FR432": "39", "FR433": "70", "FR434": "90",
    "FR511": "44", "FR512": "49", "FR513": "53", "FR514": "72", "FR515": "85",
    "FR521": "22", "FR522": "29", "FR523": "35", "FR524": "56",
    "FR531": "16", "FR532": "17", "FR533": "79", "FR534": "86",
    "FR611": "24", "FR612": "33", "FR613": "40", "FR614": "47", "FR615": "64",
    "FR621": "09", "FR622": "12", "FR623": "31", "FR624": "32", "FR625": "46", "FR626": "65",
    "FR627": "81", "FR628": "82",
    "FR631": "19", "FR632": "23", "FR633": "87",
    "FR711": "01", "FR712": "07", "FR713": "26", "FR714": "38", "FR715": "42", "FR716": "69",
    "FR717": "73", "FR718": "74",
    "FR721": "03", "FR722": "15", "FR723": "43", "FR724": "63",
    "FR811": "11", "FR812": "30", "FR813": "34", "FR814": "48", "FR815": "66",
    "FR821": "04", "FR822": "05", "FR823": "06", "FR824": "13", "FR825": "83", "FR826": "84",
    "FR831": "2A", "FR832": "2B",
    "FRA10": "971", "FRA20": "972", "FRA30": "973", "FRA40": "974", "FRA50": "976",
}
# Geocode names read, case-insensitively: NUTS codes through the table, INSEE codes as they are.
NUTS_NAMES = frozenset({"emma_id", "nuts3", "nuts"})
INSEE_NAMES = frozenset({"insee", "insee_dep", "departement", "dep"})

# The category of a proposal, from MeteoAlarm's awareness level (parameter awareness_level,
# "3; orange; Severe") or else the CAP severity. Red and orange vigilance are alerts; a
# green level is no warning at all and is not proposed.
CATEGORY_OF_LEVEL = {"red": Category.ALERTE, "orange": Category.ALERTE,
                     "yellow": Category.INFORMATION}
CATEGORY_OF_SEVERITY = {"Extreme": Category.ALERTE, "Severe": Category.ALERTE,
                        "Moderate": Category.INFORMATION, "Minor": Category.INFORMATION}
NOT_PROPOSED_LEVELS = frozenset({"green"})


class Unreadable(ValueError):
    """A document that cannot become a proposal: the reason goes into the dead letter."""


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: Literal["Alert", "Update", "Cancel"]
    references: tuple[str, ...]
    title: str
    body: str
    category: Category | None
    expires: datetime | None
    departements: frozenset[str]
    web: str | None
    signed: bool


def _text(element: ET.Element, path: str) -> str:
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def _level(info: ET.Element) -> str | None:
    for parameter in info.findall(f"{CAP}parameter"):
        if _text(parameter, f"{CAP}valueName").lower() == "awareness_level":
            parts = [p.strip().lower() for p in _text(parameter, f"{CAP}value").split(";")]
            return parts[1] if len(parts) > 1 else None
    return None


def departements_of(areas: list[ET.Element]) -> frozenset[str]:
    found: set[str] = set()
    for area in areas:
        for geocode in area.findall(f"{CAP}geocode"):
            name = _text(geocode, f"{CAP}valueName").lower()
            value = _text(geocode, f"{CAP}value").upper()
            if name in NUTS_NAMES and value in DEPARTEMENT_OF_NUTS3:
                found.add(DEPARTEMENT_OF_NUTS3[value])
            elif name in INSEE_NAMES and 2 <= len(value) <= 3:
                found.add(value)
    return frozenset(found)


def parse_cap(data: bytes) -> CapAlert:
    """A CAP 1.2 document read; Unreadable says why it cannot be."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise Unreadable(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise Unreadable("a DOCTYPE or entity declaration: CAP needs none, none is read")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise Unreadable(f"not well-formed XML: {error}") from error
    if root.tag != f"{CAP}alert":
        raise Unreadable(f"not a CAP 1.2 alert: root element {root.tag}")
    identifier, sender = _text(root, f"{CAP}identifier"), _text(root, f"{CAP}sender")
    sent, status = _text(root, f"{CAP}sent"), _text(root, f"{CAP}status")
    msg_type = _text(root, f"{CAP}msgType")
    missing = [n for n, v in (("identifier", identifier), ("sender", sender), ("sent", sent),
                              ("status", status), ("msgType", msg_type)) if not v]
    if missing:
        raise Unreadable(f"missing {', '.join(missing)}")
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise Unreadable(f"msgType {msg_type!r} is not Alert, Update or Cancel")
    references = tuple(r.split(",")[1] for r in _text(root, f"{CAP}references").split()
                       if r.count(",") == 2)
    if msg_type != "Alert" and not references:
        raise Unreadable(f"an {msg_type} without references")
    infos = root.findall(f"{CAP}info")
    french = [i for i in infos if _text(i, f"{CAP}language").lower().startswith("fr")]
    if not infos and msg_type != "Cancel":
        raise Unreadable("no info element")
    chosen = french or infos
    info = chosen[0] if chosen else None
    title = body = ""
    category: Category | None = None
    expires: datetime | None = None
    departements: frozenset[str] = frozenset()
    web = None
    if info is not None:
        event = _text(info, f"{CAP}event")
        title = _text(info, f"{CAP}headline") or event
        body = "\n\n".join(x for x in (_text(info, f"{CAP}description"),
                                       _text(info, f"{CAP}instruction")) if x) or title
        level = _level(info)
        if level in NOT_PROPOSED_LEVELS:
            category = None
        else:
            category = CATEGORY_OF_LEVEL.get(level or "") or CATEGORY_OF_SEVERITY.get(
                _text(info, f"{CAP}severity"), Category.INFORMATION)
        if raw := _text(info, f"{CAP}expires"):
            try:
                expires = datetime.fromisoformat(raw)
            except ValueError as error:
                raise Unreadable(f"expires {raw!r} is not a date") from error
        departements = departements_of(info.findall(f"{CAP}area"))
        web = _text(info, f"{CAP}web") or None
        if msg_type != "Cancel" and not title:
            raise Unreadable("info has neither headline nor event")
    return CapAlert(identifier=identifier, sender=sender, sent=sent, status=status,
                    msg_type=msg_type,  # type: ignore[arg-type]  # checked above
                    references=references, title=title[:120], body=body[:5000],
                    category=category, expires=expires, departements=departements, web=web,
                    signed=root.find(f".//{SIGNATURE}") is not None)


class Seen(BaseModel):
    """What one CAP identifier became: each commune's notice id (bucket `cap_alerts`)."""

    model_config = BUS_MODEL

    identifier: str
    msg_type: str
    copies: dict[str, str] = Field(default_factory=dict)
    set_aside: str | None = None


class Proposal(BaseModel):
    """A change the source proposes for a notice already published (`p.<notice id>`)."""

    model_config = BUS_MODEL

    kind: Literal["correct", "withdraw"]
    commune: str
    notice_id: str
    cap_identifier: str
    title: str | None = None
    body: str | None = None
    category: Category | None = None
    ends_at: datetime | None = None
    proposed_at: datetime


def _key(identifier: str) -> str:
    return "a." + hashlib.sha256(identifier.encode()).hexdigest()


class CapRecords:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def seen(self, identifier: str) -> Seen | None:
        try:
            entry = await self.kv.get(_key(identifier))
        except KeyNotFoundError:
            return None
        return read_message(Seen, entry.value or b"")

    async def record(self, seen: Seen) -> None:
        await self.kv.put(_key(seen.identifier), seen.model_dump_json().encode())

    async def proposal(self, notice_id: str) -> Proposal | None:
        try:
            entry = await self.kv.get(f"p.{notice_id}")
        except KeyNotFoundError:
            return None
        return read_message(Proposal, entry.value or b"")

    async def propose(self, proposal: Proposal) -> None:
        await self.kv.put(f"p.{proposal.notice_id}", proposal.model_dump_json().encode())

    async def drop_proposal(self, notice_id: str) -> None:
        try:
            await self.kv.delete(f"p.{notice_id}")
        except KeyNotFoundError:
            pass


def departement_of(insee: str) -> str:
    """A commune's département: from the official list, else read from its code."""
    official = geography().communes.get(insee)
    if official is not None:
        return official.departement
    return insee[:3] if insee.startswith("97") else insee[:2]


def draft_id(identifier: str, insee: str) -> str:
    return hashlib.sha256(f"{identifier}:{insee}".encode()).hexdigest()[:16]


@dataclass
class Reader:
    """Reads the feeds and turns what is new into proposals; one per front door."""

    store: NatsStore
    feeds: tuple[str, ...]
    clock: Callable[[], datetime]
    require_signature: bool = False
    http: httpx.AsyncClient | None = None
    validators: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def records(self) -> CapRecords:
        return CapRecords(self.store.cap_kv)

    def now(self) -> datetime:
        return self.clock()

    def runner(self, interval_s: float) -> Callable[[], Awaitable[None]]:
        return lambda: self.run(interval_s)

    async def run(self, interval_s: float) -> None:
        async with httpx.AsyncClient(timeout=20, follow_redirects=True) as http:
            self.http = http
            while True:
                await self.poll_once()
                await asyncio.sleep(interval_s)

    async def poll_once(self) -> None:
        for url in self.feeds:
            try:
                await self.read_url(url)
            except httpx.HTTPError as error:
                # A feed out of reach is tried again at the next poll; the others go on.
                log.warning("cap_feed_unreachable", url=url, error=str(error)[:200])

    async def _get(self, url: str, conditional: bool) -> bytes | None:
        assert self.http is not None
        headers = self.validators.get(url, {}) if conditional else {}
        response = await self.http.get(url, headers=headers)
        if response.status_code == 304:
            return None
        response.raise_for_status()
        if conditional:
            kept = {}
            if etag := response.headers.get("etag"):
                kept["If-None-Match"] = etag
            if modified := response.headers.get("last-modified"):
                kept["If-Modified-Since"] = modified
            self.validators[url] = kept
        return response.content[:MAX_DOCUMENT_BYTES + 1]

    async def read_url(self, url: str) -> None:
        data = await self._get(url, conditional=True)
        if data is None:
            return
        try:
            root = ET.fromstring(data) if b"<!DOCTYPE" not in data else None
        except ET.ParseError:
            root = None
        if root is not None and root.tag == f"{ATOM}feed":
            for entry in root.findall(f"{ATOM}entry"):
                await self.read_entry(url, entry)
        else:
            await self.take(url, data)

    async def read_entry(self, feed: str, entry: ET.Element) -> None:
        identifier = _text(entry, f"{CAP}identifier")
        if identifier and await self.records.seen(identifier) is not None:
            return  # known: its document is not fetched again
        links = entry.findall(f"{ATOM}link")
        cap_links = [x for x in links if "cap" in (x.get("type") or "")] or links
        href = cap_links[0].get("href") if cap_links else None
        if not href:
            await self.set_aside(feed, ET.tostring(entry), identifier,
                                 "Atom entry without a link to its CAP document")
            return
        await self.take(str(httpx.URL(feed).join(href)), await self._get(
            str(httpx.URL(feed).join(href)), conditional=False) or b"")

    async def set_aside(self, url: str, data: bytes, identifier: str, reason: str) -> None:
        await dead_letter(self.store.js, service=SERVICE, subject=DEAD_LETTER_SUBJECT,
                          data=data, reason=f"{url}: {reason}", headers={"source": url})
        if identifier:
            await self.records.record(Seen(identifier=identifier, msg_type="?",
                                           set_aside=reason))

    async def take(self, url: str, data: bytes) -> None:
        """One CAP document: a proposal, an update of one, or a dead letter."""
        try:
            alert = parse_cap(data)
        except Unreadable as error:
            await self.set_aside(url, data, "", str(error))
            return
        if await self.records.seen(alert.identifier) is not None:
            return
        if self.require_signature and not alert.signed:
            await self.set_aside(url, data, alert.identifier,
                                 "unsigned, and CRIEUR_CAP_REQUIRE_SIGNATURE is set")
            return
        structlog.contextvars.bind_contextvars(cap_identifier=alert.identifier)
        try:
            if alert.status != "Actual":
                seen = Seen(identifier=alert.identifier, msg_type=alert.msg_type)
            elif alert.msg_type == "Alert":
                seen = await self.propose(url, alert)
            else:
                seen = await self.follow_up(url, alert)
        except ValidationError as error:
            await self.set_aside(url, data, alert.identifier, f"cannot become a notice: {error}")
            return
        finally:
            structlog.contextvars.unbind_contextvars("cap_identifier")
        await self.records.record(seen)

    def _fields(self, url: str, alert: CapAlert) -> dict[str, object]:
        links = [Link.model_validate({"url": url, "label": "Alerte officielle (CAP)"})]
        if alert.web:
            try:
                links.insert(0, Link.model_validate({"url": alert.web, "label": "Source"}))
            except ValidationError:
                pass
        return {"title": alert.title, "body": alert.body,
                "category": alert.category or Category.INFORMATION,
                "ends_at": alert.expires, "links": tuple(links),
                "cap_identifier": alert.identifier}

    async def propose(self, url: str, alert: CapAlert) -> Seen:
        seen = Seen(identifier=alert.identifier, msg_type=alert.msg_type)
        now = self.now()
        if alert.category is None or (alert.expires is not None and alert.expires <= now):
            return seen  # no warning, or over already: nothing to propose
        for commune in await self.store.commune_registry.all():
            if departement_of(commune.insee) not in alert.departements:
                continue
            notice = Notice.model_validate({
                "id": draft_id(alert.identifier, commune.insee), "commune": commune.insee,
                "author": AUTHOR, "version": 1, "state": NoticeState.PROPOSED,
                "created_at": now, "updated_at": now, **self._fields(url, alert)})
            await self.store.schedule(notice)
            seen.copies[commune.insee] = notice.id
        log.info("cap_alert_proposed", communes=len(seen.copies))
        return seen

    async def follow_up(self, url: str, alert: CapAlert) -> Seen:
        """An Update or Cancel: act on what each referenced alert became."""
        seen = Seen(identifier=alert.identifier, msg_type=alert.msg_type)
        now = self.now()
        for reference in alert.references:
            earlier = await self.records.seen(reference)
            if earlier is None:
                continue
            for insee, notice_id in earlier.copies.items():
                seen.copies[insee] = notice_id
                await self._follow_one(url, alert, insee, notice_id, now)
        if not seen.copies and alert.msg_type == "Update":
            # An update of an alert never read here is news: propose it.
            return await self.propose(url, alert)
        log.info("cap_follow_up", msg_type=alert.msg_type, communes=len(seen.copies))
        return seen

    async def _follow_one(self, url: str, alert: CapAlert, insee: str, notice_id: str,
                          now: datetime) -> None:
        draft = await self.store.scheduled(notice_id)
        on_stream = self.store.get(insee, notice_id)
        if on_stream is None:
            if draft is None or draft.state is not NoticeState.PROPOSED:
                return  # dismissed, or in staff's hands (scheduled, waiting for approval)
            if alert.msg_type == "Cancel":
                await self.store.unschedule(notice_id)
                return
            fields = self._fields(url, alert)
            await self.store.schedule(Notice.model_validate(
                draft.model_dump() | fields | {"version": draft.version + 1, "updated_at": now}))
            return
        sent = on_stream[1]
        if sent.state is NoticeState.WITHDRAWN:
            return
        if alert.msg_type == "Cancel":
            proposal = Proposal(kind="withdraw", commune=insee, notice_id=notice_id,
                                cap_identifier=alert.identifier, proposed_at=now)
        else:
            proposal = Proposal(kind="correct", commune=insee, notice_id=notice_id,
                                cap_identifier=alert.identifier, title=alert.title,
                                body=alert.body, category=alert.category,
                                ends_at=alert.expires, proposed_at=now)
        await self.records.propose(proposal)
