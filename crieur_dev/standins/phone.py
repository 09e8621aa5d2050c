"""The demo phone: what the push, Web Push and SMS stand-ins received, shown as phones do.

`make run` serves it on CRIEUR_DEMO_PHONE_PORT (default 8082). It reads the stand-ins'
records (`<dir>/fcm.jsonl`, `<dir>/sms.jsonl`, one JSON line per request received) and
replays them as phones would: a phone holds the topics it was subscribed to at that
moment; a message to a topic reaches every phone on it; a notification with the same tag
replaces the previous one (a correction); a data message `action: remove` takes it away
(a withdrawal). SMS are shown per number (masked), from any `sms.jsonl` record whose body
carries a text (`text`, `message` or `content`) and numbers (`to`, `recipient`, `number` or
a `receivers` list): Brevo's and OVHcloud's requests as the SMS stand-in records them.
Browsers' notifications come from `<dir>/webpush.jsonl`, as the Web Push stand-in decrypted
them (same tags, same removal). A record with a `status` outside 2xx is skipped.

    GET /          the page, in French, updated live (it asks /messages every second)
    GET /messages  the same as JSON
    GET /healthz

With CRIEUR_DEMO_PHONES (a comma-separated list of INSEE codes, set by `make run` when it
starts the FCM stand-in), it registers a few demo phones for those communes through the
front door (`POST /api/v1/devices`), as the app would, and keeps trying until it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

log = structlog.get_logger("crieur_dev.standins.phone")

DEFAULT_PORT = 8082


@dataclass(frozen=True)
class DemoPhone:
    name: str
    slug: str
    platform: str
    categories: tuple[str, ...]

    def token(self, commune: str) -> str:
        # Stable across runs (registering again changes nothing), shaped like an FCM token.
        digest = hashlib.sha256(f"{self.slug}:{commune}".encode()).hexdigest()
        return f"demo-{self.slug}-{commune}:APA91b{digest}"


DEMO_PHONES = (
    DemoPhone("Téléphone de Camille", "camille", "android",
              ("information", "evenement", "travaux", "alerte")),
    DemoPhone("Téléphone de Lucas", "lucas", "ios", ("alerte",)),
    DemoPhone("Téléphone de Mme Perrin", "perrin", "android", ("travaux", "alerte")),
)


def _short(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def _mask(number: str) -> str:
    digits = "".join(c for c in number if c.isdigit() or c == "+")
    return ("•" * max(0, len(digits) - 2)) + digits[-2:] if digits else "?"


@dataclass
class Phone:
    name: str
    topics: set[str] = field(default_factory=set)
    # tag -> the notification on screen (a correction replaces it, a withdrawal removes it)
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)
    journal: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)


class Phones:
    """The phones as the records make them, read incrementally from the stand-ins' files."""

    def __init__(self, directory: Path, names: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.names = dict(names or {})
        self.phones: dict[str, Phone] = {}
        self.messages: list[dict[str, Any]] = []
        self._offsets: dict[str, int] = {}

    def phone(self, key: str, name: str | None = None) -> Phone:
        if key not in self.phones:
            self.phones[key] = Phone(name or self.names.get(key)
                                     or f"Téléphone {_short(key)}")
        return self.phones[key]

    def refresh(self) -> None:
        for name, apply in (("fcm.jsonl", self._fcm), ("sms.jsonl", self._sms),
                            ("webpush.jsonl", self._webpush)):
            path = self.directory / name
            try:
                with path.open("rb") as source:
                    source.seek(self._offsets.get(name, 0))
                    data = source.read()
            except FileNotFoundError:
                continue
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits
            self._offsets[name] = self._offsets.get(name, 0) + len(complete)
            for line in complete.splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and 200 <= int(record.get("status", 200)) < 300:
                    apply(record)

    def _fcm(self, record: dict[str, Any]) -> None:
        path = str(record.get("path", ""))
        if "/registrations/" in path:
            token = path.split("/registrations/", 1)[1].split("/", 1)[0]
            phone = self.phone(token)
            if record.get("method") == "POST":
                topic = str(record.get("query", "")).partition("topic_name=")[2].split("&")[0]
                phone.topics.add(topic)
            else:
                phone.topics.discard(path.rsplit("/", 1)[1])
            return
        if not path.endswith("/messages:send"):
            return
        if (record.get("body") or {}).get("validate_only"):
            return  # a dry run (a token check): nothing reaches the phone
        message = (record.get("body") or {}).get("message") or {}
        if "token" in message:
            targets = [self.phone(message["token"])]
        else:
            targets = [p for p in self.phones.values() if message.get("topic") in p.topics]
        data = message.get("data") or {}
        tag = ((message.get("android") or {}).get("notification") or {}).get("tag") \
            or data.get("notice_id") or str(record.get("n"))
        notification = message.get("notification") or {}
        entry = {
            "kind": "push", "at": record.get("at"), "notice_id": data.get("notice_id"),
            "title": notification.get("title") or data.get("title", ""),
            "body": notification.get("body") or data.get("body", ""),
            "category": data.get("category", ""), "version": data.get("version", ""),
            "action": data.get("action", "show"),
            "priority": (message.get("android") or {}).get("priority", "normal"),
        }
        for phone in targets:
            self._notify(phone, tag, entry)

    def _notify(self, phone: Phone, tag: str, entry: dict[str, Any]) -> None:
        """The same tag replaces the notification shown (a correction); remove takes it away."""
        if entry["action"] == "remove":
            phone.shown.pop(tag, None)
            what = "retiré"
        else:
            what = "rectifié" if tag in phone.shown else "reçu"
            phone.shown[tag] = entry
        phone.journal.append(entry | {"what": what})
        del phone.journal[:-20]
        self.messages.append(entry | {"phone": phone.name, "what": what})

    def _sms(self, record: dict[str, Any]) -> None:
        body = record.get("body")
        if not isinstance(body, dict):
            return
        # Brevo: recipient + content; OVHcloud: receivers + message; others: to + text.
        text = body.get("text") or body.get("message") or body.get("content")
        numbers = (body.get("to") or body.get("recipient") or body.get("number")
                   or body.get("receivers"))
        if not isinstance(numbers, list):
            numbers = [numbers] if numbers else []
        if not isinstance(text, str):
            return
        for number in numbers:
            phone = self.phone("sms:" + str(number), f"SMS {_mask(str(number))}")
            entry = {"kind": "sms", "at": record.get("at"), "body": text, "title": "SMS"}
            phone.sms.append(entry)
            self.messages.append(entry | {"phone": phone.name, "what": "reçu"})

    def _webpush(self, record: dict[str, Any]) -> None:
        """A notification the Web Push stand-in decrypted for one of its browsers."""
        data = record.get("payload")
        if not isinstance(data, dict):
            return
        phone = self.phone("webpush:" + str(record.get("subscription")),
                           str(record.get("browser") or "Navigateur"))
        self._notify(phone, str(data.get("tag")), {
            "kind": "webpush", "at": record.get("at"), "notice_id": data.get("notice_id"),
            "title": data.get("title", ""), "body": data.get("body", ""),
            "category": data.get("category", ""), "version": data.get("version", ""),
            "action": data.get("action", "show"), "priority": record.get("urgency")})

    def view(self) -> dict[str, Any]:
        self.refresh()
        return {
            "phones": [{"name": p.name,
                        "topics": sorted(p.topics),
                        "notifications": list(reversed(p.shown.values())),
                        "journal": list(reversed(p.journal)),
                        "sms": list(reversed(p.sms))}
                       for p in self.phones.values()],
            "messages": self.messages[-200:],
        }


PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Crieur — téléphones de démonstration</title>
<style>
body{font-family:system-ui,sans-serif;background:#eef1f4;margin:0;padding:1rem;color:#111}
h1{font-size:1.3rem;margin:.2rem 0 1rem}
#phones{display:flex;flex-wrap:wrap;gap:1.2rem}
.phone{width:300px;min-height:520px;background:#111;border-radius:32px;padding:14px;
  box-shadow:0 4px 16px #0003}
.screen{background:linear-gradient(#36557a,#1b2a3d);border-radius:22px;min-height:500px;
  padding:10px;color:#fff}
.screen h2{font-size:.95rem;text-align:center;margin:.3rem 0 .8rem;font-weight:600}
.notif{background:#fffffff0;color:#111;border-radius:14px;padding:.55rem .7rem;margin:.45rem 0}
.notif.alerte{border-left:6px solid #d0021b}
.notif .app{font-size:.72rem;color:#555;display:flex;justify-content:space-between}
.notif .title{font-weight:700;font-size:.9rem;margin-top:.15rem}
.notif .body{font-size:.9rem}
.sms{background:#34c759;color:#fff;border-radius:16px;padding:.5rem .7rem;margin:.4rem 0}
.empty{opacity:.7;text-align:center;font-size:.85rem;margin-top:2rem}
details{font-size:.75rem;margin-top:1rem;opacity:.85}
</style></head>
<body>
<h1>Téléphones de démonstration</h1>
<p>Ce que les habitants recevraient sur leur téléphone (notifications et SMS envoyés aux
services de démonstration). La page se met à jour toute seule.</p>
<div id="phones" aria-live="polite"></div>
<script>
const LABELS = {reçu: "reçu", rectifié: "rectifié", retiré: "retiré"};
function time(at) {
  return at ? new Date(at).toLocaleTimeString("fr-FR", {hour: "2-digit", minute: "2-digit",
    timeZone: "Europe/Paris"}) : "";
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function render(data) {
  const root = document.getElementById("phones");
  root.replaceChildren();
  for (const p of data.phones) {
    const phone = el("section", "phone"); phone.setAttribute("aria-label", p.name);
    const screen = el("div", "screen"); phone.append(screen);
    screen.append(el("h2", "", p.name));
    for (const n of p.notifications) {
      const card = el("article", "notif" + (n.category === "alerte" ? " alerte" : ""));
      card.dataset.noticeId = n.notice_id || "";
      const head = el("div", "app");
      head.append(el("span", "", "Crieur"), el("span", "", time(n.at)));
      card.append(head, el("div", "title", n.title), el("div", "body", n.body));
      screen.append(card);
    }
    for (const s of p.sms) screen.append(el("div", "sms", s.body));
    if (!p.notifications.length && !p.sms.length) {
      screen.append(el("p", "empty", "Aucune notification"));
    }
    if (p.journal.length) {
      const log = el("details"); log.append(el("summary", "", "Historique"));
      for (const j of p.journal) {
        log.append(el("div", "", `${time(j.at)} · ${LABELS[j.what] || j.what} · ${j.body}`));
      }
      screen.append(log);
    }
    root.append(phone);
  }
  if (!data.phones.length) root.append(el("p", "", "Aucun téléphone inscrit pour l’instant."));
}
async function tick() {
  try { render(await (await fetch("messages", {cache: "no-store"})).json()); } catch (e) {}
  setTimeout(tick, 1000);
}
tick();
</script>
</body></html>
"""


async def register_demo_phones(api_url: str, communes: list[str],
                               stopping: asyncio.Event) -> None:
    """Register the demo phones as the app would; the push service may not be up yet."""
    todo = [(p, c) for c in communes for p in DEMO_PHONES]
    async with httpx.AsyncClient(timeout=10) as client:
        while todo and not stopping.is_set():
            phone, commune = todo[0]
            try:
                reply = await client.post(f"{api_url}/api/v1/devices", json={
                    "token": phone.token(commune), "platform": phone.platform, "language": "fr",
                    "follows": [{"commune": commune, "categories": list(phone.categories)}]})
                if reply.status_code in (200, 201):
                    todo.pop(0)
                    log.info("demo_phone_registered", phone=phone.slug, commune=commune)
                    continue
                if reply.status_code == 422:
                    log.error("demo_phone_refused", phone=phone.slug, answer=reply.text[:300])
                    todo.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


def create_app(directory: Path, *, api_url: str = "", demo_communes: tuple[str, ...] = ()
               ) -> FastAPI:
    names = {p.token(c): p.name for c in demo_communes for p in DEMO_PHONES}
    phones = Phones(directory, names)
    stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if demo_communes and api_url:
            task = asyncio.create_task(register_demo_phones(api_url, list(demo_communes),
                                                            stopping))
        yield
        stopping.set()
        if task is not None:
            await task

    app = FastAPI(title="Crieur demo phone", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"cache-control": "no-store"})

    @app.get("/messages")
    async def messages() -> JSONResponse:
        return JSONResponse(phones.view(), headers={"cache-control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def main() -> int:
    from crieur.serve import configure_logging
    from crieur.settings import CommonSettings

    settings = CommonSettings()
    configure_logging(settings)
    port = int(os.environ.get("CRIEUR_DEMO_PHONE_PORT", DEFAULT_PORT))
    api_url = os.environ.get(
        "CRIEUR_API_URL", f"http://127.0.0.1:{os.environ.get('CRIEUR_HTTP_PORT', '8080')}")
    communes = tuple(c for c in os.environ.get("CRIEUR_DEMO_PHONES", "").split(",") if c)
    app = create_app(settings.data_dir / "standins", api_url=api_url, demo_communes=communes)
    uvicorn.run(app, host=os.environ.get("CRIEUR_DEMO_PHONE_HOST", "127.0.0.1"), port=port,
                log_config=None, access_log=False, timeout_graceful_shutdown=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
