"""A stand-in for MeteoAlarm's feed: a few official alerts for Haute-Saône, in CAP 1.2.

`make run` starts it (CRIEUR_CAP_STANDIN_PORT, default 8088) and points the front door's
reader at it (CRIEUR_CAP_FEEDS), so a newcomer sees an official alert proposed to
Lavoncourt (70299). The alerts are MeteoAlarm's format as its Atom feed gives them: each
entry names its `cap:identifier` and links its CAP document, whose area has the EMMA_ID
geocode FR433 (NUTS 2013, Haute-Saône). Dates are relative to the stand-in's start, so
the alerts are never over before they are read.

It plays a story in steps, one every CRIEUR_CAP_STANDIN_STEP_S seconds (default 120), or
at each `POST /next`:

    0  a yellow thunderstorm alert and an orange wind alert
    1  the orange alert's Update (stronger gusts, later end)
    2  its Cancel

    GET /feed.atom        the Atom feed (ETag, Last-Modified; 304 when unchanged)
    GET /cap/{name}.xml   one CAP document
    POST /next            the next step now
    GET /healthz
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

import uvicorn
from fastapi import FastAPI, Request, Response

ATOM_TYPE = "application/atom+xml; charset=utf-8"
CAP_TYPE = "application/cap+xml; charset=utf-8"
SENDER = "meteoalarm-standin@crieur.invalid"
AREA = ("Haute-Saône", "EMMA_ID", "FR433")


@dataclass(frozen=True)
class Recorded:
    name: str
    msg_type: str
    level: tuple[int, str, str]  # MeteoAlarm's awareness level: number, colour, severity
    event: str
    headline: str
    description: str
    instruction: str
    hours: int  # how long after the stand-in's start it expires
    references: str = ""  # the name of the alert it updates or cancels


STORY: tuple[tuple[Recorded, ...], ...] = (
    (
        Recorded("jaune-orages", "Alert", (2, "yellow", "Moderate"), "Orages",
                 "Vigilance jaune orages : Haute-Saône",
                 "Des orages parfois forts sont attendus en fin de journée, avec grêle "
                 "possible et rafales jusqu'à 70 km/h.",
                 "Soyez vigilants si vous pratiquez une activité en plein air.", 12),
        Recorded("orange-vent", "Alert", (3, "orange", "Severe"), "Vent violent",
                 "Vigilance orange vent violent : Haute-Saône",
                 "Un épisode de vent violent est attendu cette nuit. Rafales de 90 à "
                 "110 km/h en plaine.",
                 "Limitez vos déplacements. Rentrez les objets susceptibles d'être "
                 "emportés. Ne vous promenez pas en forêt.", 24),
    ),
    (
        Recorded("orange-vent-maj", "Update", (3, "orange", "Severe"), "Vent violent",
                 "Vigilance orange vent violent prolongée : Haute-Saône",
                 "L'épisode de vent violent se prolonge jusqu'à demain midi. Rafales "
                 "jusqu'à 120 km/h sur les hauteurs.",
                 "Limitez vos déplacements. Ne vous promenez pas en forêt.", 36,
                 references="orange-vent"),
    ),
    (
        Recorded("orange-vent-fin", "Cancel", (3, "orange", "Severe"), "Vent violent",
                 "Fin de vigilance orange vent violent : Haute-Saône",
                 "Le vent faiblit : la vigilance orange est levée.", "", 36,
                 references="orange-vent"),
    ),
)


def _time(at: datetime) -> str:
    # CAP's dateTime: no fractional seconds, an explicit offset.
    return at.replace(microsecond=0).isoformat()


@dataclass
class Feed:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    step_s: float = 120.0
    forced: int = 0
    clock: float = field(default_factory=time.monotonic)
    # Each run's identifiers are its own, even two runs started in the same second.
    run: str = field(default_factory=lambda: f"{secrets.randbelow(10**6):06d}")

    def step(self) -> int:
        by_time = int((time.monotonic() - self.clock) // self.step_s) if self.step_s else 0
        return min(len(STORY) - 1, max(by_time, self.forced))

    def recorded(self) -> list[tuple[int, Recorded]]:
        return [(n, r) for n in range(self.step() + 1) for r in STORY[n]]

    def identifier(self, name: str) -> str:
        # MeteoAlarm's identifiers are OIDs; the start time makes each run's its own.
        return f"2.49.0.0.250.0.FR.{self.started:%Y%m%d%H%M%S}.{self.run}.{name}"

    def sent(self, step: int) -> datetime:
        return self.started + timedelta(minutes=step)

    def cap(self, name: str) -> bytes | None:
        found = [(n, r) for n, r in self.recorded() if r.name == name]
        if not found:
            return None
        step, r = found[0]
        sent = self.sent(step)
        references = ""
        if r.references:
            original = next(s for s, x in self.recorded() if x.name == r.references)
            references = (f"<references>{SENDER},{self.identifier(r.references)},"
                          f"{_time(self.sent(original))}</references>")
        number, colour, severity = r.level
        area, code_name, code = AREA
        infos = []
        for language, headline, description, instruction in (
                ("fr-FR", r.headline, r.description, r.instruction),
                ("en-GB", f"{colour.capitalize()} {r.event} warning: {area}",
                 "See the French text.", "")):
            infos.append(f"""  <info>
    <language>{language}</language>
    <category>Met</category>
    <event>{escape(r.event)}</event>
    <responseType>Monitor</responseType>
    <urgency>Future</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <effective>{_time(sent)}</effective>
    <onset>{_time(sent)}</onset>
    <expires>{_time(self.started + timedelta(hours=r.hours))}</expires>
    <senderName>Météo-France (stand-in)</senderName>
    <headline>{escape(headline)}</headline>
    <description>{escape(description)}</description>
    {f"<instruction>{escape(instruction)}</instruction>" if instruction else ""}
    <parameter><valueName>awareness_level</valueName>
      <value>{number}; {colour}; {severity}</value></parameter>
    <parameter><valueName>awareness_type</valueName><value>1; Wind</value></parameter>
    <area>
      <areaDesc>{escape(area)}</areaDesc>
      <geocode><valueName>{code_name}</valueName><value>{code}</value></geocode>
    </area>
  </info>""")
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{self.identifier(r.name)}</identifier>
  <sender>{SENDER}</sender>
  <sent>{_time(sent)}</sent>
  <status>Actual</status>
  <msgType>{r.msg_type}</msgType>
  <scope>Public</scope>
  {references}
{chr(10).join(infos)}
</alert>
""".encode()

    def atom(self, base: str) -> bytes:
        entries = []
        for step, r in self.recorded():
            severity = r.level[2]
            area, code_name, code = AREA
            entries.append(f"""  <entry>
    <id>{base}/cap/{r.name}.xml</id>
    <title>{escape(r.headline)}</title>
    <updated>{_time(self.sent(step))}</updated>
    <link rel="related" type="application/cap+xml" hreflang="fr" href="{base}/cap/{r.name}.xml"/>
    <cap:identifier>{self.identifier(r.name)}</cap:identifier>
    <cap:event>{escape(r.event)}</cap:event>
    <cap:areaDesc>{escape(area)}</cap:areaDesc>
    <cap:severity>{severity}</cap:severity>
    <cap:message_type>{r.msg_type}</cap:message_type>
    <cap:expires>{_time(self.started + timedelta(hours=r.hours))}</cap:expires>
    <cap:geocode><valueName>{code_name}</valueName><value>{code}</value></cap:geocode>
  </entry>""")
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <id>{base}/feed.atom</id>
  <title>MeteoAlarm France (stand-in)</title>
  <updated>{_time(self.sent(self.step()))}</updated>
{chr(10).join(entries)}
</feed>
""".encode()


def create_app(feed: Feed) -> FastAPI:
    app = FastAPI(title="MeteoAlarm stand-in", docs_url=None, redoc_url=None)

    @app.get("/feed.atom")
    async def atom(request: Request) -> Response:
        step = feed.step()
        etag = f'"step-{step}-{int(feed.started.timestamp())}"'
        modified = format_datetime(feed.sent(step).replace(microsecond=0), usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        base = str(request.base_url).rstrip("/")
        return Response(feed.atom(base), media_type=ATOM_TYPE, headers=headers)

    @app.get("/cap/{name}.xml")
    async def cap(name: str) -> Response:
        document = feed.cap(name)
        if document is None:
            return Response(status_code=404)
        return Response(document, media_type=CAP_TYPE)

    @app.post("/next")
    async def next_step() -> dict[str, int]:
        feed.forced = min(len(STORY) - 1, feed.step() + 1)
        return {"step": feed.step()}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def setup() -> int:
    """`make run`'s setup step: point the front door at this stand-in, unless feeds are set."""
    if os.environ.get("CRIEUR_CAP_FEEDS"):
        print(json.dumps({}))
        return 0
    port = os.environ.get("CRIEUR_CAP_STANDIN_PORT", "8088")
    print(json.dumps({"CRIEUR_CAP_STANDIN": "1",
                      "CRIEUR_CAP_FEEDS": f"http://127.0.0.1:{port}/feed.atom",
                      "CRIEUR_CAP_POLL_S": os.environ.get("CRIEUR_CAP_POLL_S", "10")}))
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        return setup()
    feed = Feed(step_s=float(os.environ.get("CRIEUR_CAP_STANDIN_STEP_S", "120")))
    port = int(os.environ.get("CRIEUR_CAP_STANDIN_PORT", "8088"))
    uvicorn.run(create_app(feed), host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
