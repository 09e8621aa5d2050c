"""The chaos village: every process of `make run`, started one by one so each can be killed.

It reuses crieur.village's list of services (same modules, same port variables, same
setup steps), on free ports under a temporary folder, with a nats-server on file storage
that can be killed and started again on the same port and store. Subscribers are seeded
straight into the buckets (already confirmed), as `make bench` does:

- email subscribers follow `travaux` and `evenement`;
- SMS subscribers follow `alerte` and `evenement` (CRIEUR_SMS_CATEGORIES carries both);
- push has one FCM topic per commune and category, whoever follows it;
so a `travaux` notice is email's alone, an `alerte` SMS's alone, an `evenement` goes to
both, and an `information` only to push and the sign.

What was delivered is read from the sinks only: the SMTP stand-in's .eml files (the
Message-ID names notice, version, kind and recipient), the SMS stand-in's sms.jsonl (a
tag in the title names the notice), the FCM stand-in's fcm.jsonl (the data names the
notice), and the sign's /playlist. Never from the services' logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client

from crieur.bus import ensure_bucket
from crieur.channel.settings import ChannelSettings
from crieur.nats_server import NatsServer, free_port
from crieur.village import SERVICES, Service, run_setup, wait_healthy, wait_listening
from schemas.commune import Commune
from schemas.notice import Category
from schemas.streams import COMMUNES
from services.push.format import topic

COMMUNE = "70299"
EMAIL_SECRET = "chaos-email-secret-key-chaos-email-secret-key"
SMS_SECRET = "chaos-sms-secret-key-chaos-sms-secret-key-chaos"
# Sizes the issue asks for: large enough to be caught in the middle.
EMAIL_SUBSCRIBERS = int(os.environ.get("CRIEUR_CHAOS_EMAIL", "2000"))
SMS_SUBSCRIBERS = int(os.environ.get("CRIEUR_CHAOS_SMS", "2000"))
PUSH_BURST = int(os.environ.get("CRIEUR_CHAOS_PUSH", "200"))
WEBPUSH_BROWSERS = int(os.environ.get("CRIEUR_CHAOS_WEBPUSH", "2000"))
# Web Push browsers follow a commune of their own: the other scenarios' notices (and their
# tallies) stay as they were.
WEBPUSH_COMMUNE = "70300"

# The settings the chaos village runs with, beside make run's. Each says why.
CHAOS_ENV = {
    # A killed worker's jobs come back after ack_wait: 10 s instead of 30 keeps the suite
    # short; a slow send is kept alive by in-progress acks either way (scenario 4).
    "CRIEUR_CHANNEL_ACK_WAIT_S": "10",
    # The provider's quota in production is ~10/s; the stand-in takes more, so 2,000 SMS
    # go out in about 20 s instead of 200.
    "CRIEUR_SMS_RATE": "100",
    "CRIEUR_SMS_CONCURRENCY": "8",
    "CRIEUR_SMS_CATEGORIES": '["alerte", "evenement"]',
    # Longer than the slow provider of scenario 4 (12 s), shorter than its silent one (20 s).
    "CRIEUR_SMS_TIMEOUT_S": "15",
    # The sign is never dark during the suite, whatever the hour.
    "CRIEUR_PANEL_BLANK_HOURS": "",
    # Nor are SMS held: the scenarios' `evenement` notices would wait for 08:00 Paris time
    # when the suite runs after 21:00 (found by a CI run at 21:07 Paris).
    "CRIEUR_SMS_QUIET_HOURS": "",
    "CRIEUR_EMAIL_SECRET_KEY": EMAIL_SECRET,
    "CRIEUR_SMS_SECRET_KEY": SMS_SECRET,
    "CRIEUR_LOG_FORMAT": "json",
}

# The demo phone only shows what the stand-ins got: not needed to count it.
SKIPPED = {"phone"}


def out_dir() -> Path:
    """Where the table goes: CRIEUR_CHAOS_OUT, else var/chaos of the repository."""
    default = Path(__file__).resolve().parents[2] / "var" / "chaos"
    return Path(os.environ.get("CRIEUR_CHAOS_OUT", str(default)))


# -- what the sinks received --------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One message a sink accepted: when (epoch seconds), for which notice, to whom."""

    at: float
    notice: str
    version: int
    kind: str
    recipient: str


_MESSAGE_ID = re.compile(rb"Message-ID: <([A-Za-z0-9_-]+)\.(\d+)\.([a-z]+)\.([^@>]+)@")


class EmailSink:
    """The SMTP stand-in's mailbox: one .eml per message, read once each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: dict[str, Delivery | None] = {}

    def deliveries(self) -> list[Delivery]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.name.endswith(".eml") or entry.name in self._seen:
                continue
            with open(entry.path, "rb") as mail:
                head = mail.read(8192)
            found = _MESSAGE_ID.search(head)
            # The file is named <arrival ns>-<n>.eml by the stand-in.
            at = int(entry.name.split("-")[0]) / 1e9
            self._seen[entry.name] = Delivery(
                at, found[1].decode(), int(found[2]), found[3].decode(),
                found[4].decode()) if found else None
        return [d for d in self._seen.values() if d is not None]


class JsonLines:
    """A stand-in's record file, read incrementally (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return self.records
        end = data.rfind(b"\n")
        if end >= 0:
            for line in data[: end + 1].splitlines():
                if line.strip():
                    self.records.append(json.loads(line))
            self._offset += end + 1
        return self.records


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


_TAG = re.compile(r"\[(c[0-9a-f]{8})\]")
_KIND = re.compile(r"^[^:\n]* - (ANNUL[EÉ]|RECTIFICATIF) :")


class SmsSink:
    """The SMS stand-in's sms.jsonl: every send request with the status it was answered."""

    def __init__(self, path: Path) -> None:
        self.lines = JsonLines(path)

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.lines.read() if r.get("method") == "POST"]

    def deliveries(self) -> list[Delivery]:
        found = []
        for r in self.requests():
            body = r.get("body")
            if r.get("status") != 201 or not isinstance(body, dict):
                continue
            content = str(body.get("content", ""))
            tag = _TAG.search(content)
            # "<Commune> - <Catégorie> - ANNULÉ : <titre>" (services/sms/format.py).
            marker = _KIND.match(content)
            kind = ("published" if marker is None
                    else "withdrawn" if marker[1].startswith("ANNUL") else "corrected")
            found.append(Delivery(_epoch(r["at"]), tag[1] if tag else "", 0, kind,
                                  "+" + str(body.get("recipient", "")).removeprefix("+")))
        return found


class FcmSink:
    """The FCM stand-in's fcm.jsonl: `messages:send` requests and their status."""

    def __init__(self, path: Path) -> None:
        self.lines = JsonLines(path)

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.lines.read() if str(r.get("path", "")).endswith("messages:send")]

    def deliveries(self) -> list[Delivery]:
        found = []
        for r in self.requests():
            if r.get("status") != 200 or not isinstance(r.get("body"), dict):
                continue
            message = r["body"].get("message", {})
            data = message.get("data", {})
            found.append(Delivery(_epoch(r["at"]), str(data.get("notice_id", "")),
                                  int(data.get("version", 0)), str(data.get("kind", "")),
                                  str(message.get("topic", ""))))
        return found


@dataclass
class Tally:
    """What a sink received of some notices, against what was expected."""

    expected: int
    delivered: int
    lost: int
    duplicated: int
    unexpected: int
    last_at: float | None


def tally(deliveries: Iterable[Delivery], expected: set[tuple[str, str]],
          kind: str = "published") -> Tally:
    """`expected`: (notice key, recipient) pairs; a notice key is its id, or its SMS tag."""
    notices = {n for n, _ in expected}
    counts: Counter[tuple[str, str]] = Counter()
    last = None
    for d in deliveries:
        if d.notice in notices and d.kind == kind:
            counts[(d.notice, d.recipient)] += 1
            last = d.at if last is None else max(last, d.at)
    got = set(counts)
    return Tally(expected=len(expected), delivered=len(got & expected),
                 lost=len(expected - got), duplicated=sum(c - 1 for c in counts.values()),
                 unexpected=len(got - expected), last_at=last)


def shown(expected: int, found: int) -> Tally:
    """The sign's line: how many of the notices expected on its playlist are there."""
    return Tally(expected=expected, delivered=found, lost=expected - found, duplicated=0,
                 unexpected=0, last_at=None)


class WebpushSink:
    """The Web Push stand-in's webpush.jsonl: the requests it accepted (201) and decrypted;
    the payload names the notice, the subscription the browser."""

    def __init__(self, path: Path) -> None:
        self.lines = JsonLines(path)

    def deliveries(self) -> list[Delivery]:
        found = []
        for r in self.lines.read():
            payload = r.get("payload")
            if r.get("status") != 201 or not isinstance(payload, dict):
                continue
            found.append(Delivery(_epoch(r["at"]), str(payload.get("notice_id", "")),
                                  int(payload.get("version", 0)), str(payload.get("kind", "")),
                                  str(r.get("subscription", ""))))
        return found


Sink = EmailSink | SmsSink | FcmSink | WebpushSink


@dataclass(frozen=True)
class Expected:
    """What one channel's sink should receive of a notice: `key` names the notice there
    (its id, or its SMS tag), `want` the (key, recipient) pairs."""

    channel: str
    sink: Sink
    key: str
    want: set[tuple[str, str]]

    def tally(self) -> Tally:
        return tally(self.sink.deliveries(), self.want)


async def under_way(e: Expected, at_least: int, what: str) -> None:
    """Wait until a fan-out is caught in the middle: some deliveries out, most not."""
    await eventually(lambda: e.tally().delivered >= at_least, what, within=300, every=0.05)


async def delivered_in_full(*expected: Expected, after: str = "", within: float = 600.0,
                            quiet_s: float = 5.0) -> None:
    """Wait until every sink got all it should, then until they stop moving (a duplicate
    would come late)."""
    for e in expected:
        await eventually(lambda e=e: e.tally().lost == 0,
                         f"every {e.channel} delivery {after}".strip(), within=within,
                         every=0.5)
    await settle(lambda: sum(len(e.sink.deliveries()) for e in expected), quiet_s=quiet_s)


def record_each(scenario: str, expected: Iterable[Expected], fault_end: float | None,
                note: str = "") -> dict[str, Tally]:
    """One line of the table a channel; what each sink received, by channel."""
    found = {e.channel: e.tally() for e in expected}
    for channel, t in found.items():
        record(scenario, channel, t, fault_end, note)
    return found


# -- the table ------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    channel: str
    expected: int
    delivered: int
    lost: int
    duplicated: int
    recover_s: float | None
    note: str = ""


ROWS: list[Row] = []


def record(scenario: str, channel: str, t: Tally, fault_end: float | None,
           note: str = "") -> Row:
    """One line of the table; time to recover: from the fault's end to the last delivery."""
    recover = None
    if fault_end is not None and t.last_at is not None:
        recover = round(max(0.0, t.last_at - fault_end), 1)
    row = Row(scenario, channel, t.expected, t.delivered, t.lost, t.duplicated, recover, note)
    ROWS.append(row)
    return row


def table(rows: list[Row]) -> str:
    head = ("scenario", "channel", "expected", "delivered", "lost", "duplicated",
            "recover s", "note")
    lines = [[r.scenario, r.channel, str(r.expected), str(r.delivered), str(r.lost),
              str(r.duplicated), "-" if r.recover_s is None else f"{r.recover_s:.1f}", r.note]
             for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*line) for line in lines)])


def write_table(rows: list[Row], selection: str) -> Path:
    directory = out_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "chaos.json"
    path.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(), "selection": selection,
        "sizes": {"email": EMAIL_SUBSCRIBERS, "sms": SMS_SUBSCRIBERS, "push": PUSH_BURST,
                  "webpush": WEBPUSH_BROWSERS},
        "settings": CHAOS_ENV | {"CRIEUR_EMAIL_SECRET_KEY": "…", "CRIEUR_SMS_SECRET_KEY": "…"},
        "load_average": os.getloadavg(),
        "rows": [asdict(r) for r in rows]}, indent=2, ensure_ascii=False) + "\n")
    return path


# -- the village ----------------------------------------------------------------------------


@dataclass
class Running:
    service: Service
    process: subprocess.Popen[bytes]


@dataclass
class ChaosVillage:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    server: NatsServer | None = None
    running: dict[str, Running] = field(default_factory=dict)
    token: str = ""
    email_rids: list[str] = field(default_factory=list)
    sms_numbers: list[str] = field(default_factory=list)
    webpush_sids: list[str] = field(default_factory=list)
    webpush_token: str = ""

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.server = NatsServer(self.root / "nats")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
        env |= CHAOS_ENV | {"CRIEUR_DATA_DIR": str(self.root),
                            "CRIEUR_NATS_URL": self.server.start()}
        for service in SERVICES:
            env[service.port_var] = str(free_port())
        env["CRIEUR_PUBLIC_URL"] = f"http://127.0.0.1:{env['CRIEUR_HTTP_PORT']}"
        self.env = env
        said = run_setup(env, self.root)
        env |= {k: v for k, v in said.items() if k.startswith("CRIEUR_")}
        env.pop("CRIEUR_DEMO_PHONES", None)
        self.token = said["token"]
        await self.seed()
        for service in SERVICES:
            if service.name in SKIPPED or (service.when and not env.get(service.when)) or (
                    service.unless_set and env.get(service.unless_set)):
                continue
            self.launch(service)
        for name in self.running:
            self.wait_ready(name)
        await self.wait_consumers(("email-fanout", "sms-fanout", "push-fanout",
                                   "email-worker", "sms-worker", "push-worker"))

    def launch(self, service: Service) -> None:
        env = self.env
        if service.name == "sms-standin":
            # Delivery receipts would add 2,000 webhook calls a run through the front door,
            # which nothing here counts; the stand-in records every send all the same.
            service = Service(service.name, service.module, service.port_var,
                              service.default_port, command=(*service.argv(), "--no-receipts"))
        log = (self.root / "logs" / f"{service.name}.log").open("ab")
        process = subprocess.Popen(service.argv(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.running[service.name] = Running(service, process)

    def wait_ready(self, name: str, timeout: float = 120.0) -> None:
        r = self.running[name]
        port = int(self.env[r.service.port_var])
        if not r.service.health_path:
            wait_listening(port, r.process, timeout)
        else:
            wait_healthy(f"http://127.0.0.1:{port}{r.service.health_path}", r.process, timeout)

    def pid(self, name: str) -> int:
        return self.running[name].process.pid

    def kill(self, name: str, sig: int = signal.SIGKILL, wait_s: float = 60.0) -> int | None:
        """Signal a service and wait for it to exit; returns its exit code."""
        process = self.running[name].process
        os.kill(process.pid, sig)
        try:
            return process.wait(wait_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def restart(self, name: str) -> float:
        """Start a stopped service again, as the launcher does; returns when it is healthy."""
        self.launch(self.running[name].service)
        self.wait_ready(name)
        return time.time()

    def relaunch(self, name: str, *args: str) -> float:
        """Stop a service (SIGTERM) and start it again with `args` added to its command line,
        or as it was first launched when there are none; returns when it is ready."""
        self.kill(name, signal.SIGTERM)
        first = next(s for s in SERVICES if s.name == name)
        self.launch(replace(first, command=(*first.argv(), *args)) if args else first)
        self.wait_ready(name)
        return time.time()

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.kill()

    def start_server(self) -> float:
        assert self.server is not None
        self.server.start()
        return time.time()

    def stop(self) -> None:
        for r in self.running.values():
            if r.process.poll() is None:
                r.process.terminate()
        for r in self.running.values():
            try:
                r.process.wait(30)
            except subprocess.TimeoutExpired:
                r.process.kill()
                r.process.wait()
        if self.server is not None:
            self.server.stop()

    # -- NATS -------------------------------------------------------------------------------

    @property
    def nats_url(self) -> str:
        return self.env["CRIEUR_NATS_URL"]

    async def connect(self) -> Client:
        return await nats.connect(self.nats_url, max_reconnect_attempts=-1,
                                  reconnect_time_wait=0.5)

    async def seed(self) -> None:
        """The commune, and confirmed subscribers straight into the buckets (as the bench)."""
        from services.email.format import normalise_address
        from services.email.links import Links
        from services.email.subscribers import Follow as EmailFollow
        from services.email.subscribers import Registry as EmailRegistry
        from services.email.subscribers import add_confirmed
        from services.sms.phones import recipient_id
        from services.sms.subscribers import Follow as SmsFollow
        from services.sms.subscribers import Registry as SmsRegistry
        from services.sms.subscribers import Subscriber

        nc = await self.connect()
        try:
            js = nc.jetstream()
            communes = await ensure_bucket(js, COMMUNES)
            await communes.put(COMMUNE, Commune(insee=COMMUNE, name="Lavoncourt",
                                                created_at=datetime.now(UTC))
                               .model_dump_json().encode())
            links = Links(EMAIL_SECRET, self.env["CRIEUR_PUBLIC_URL"], 3600)
            email = await EmailRegistry.open(js)
            follows = (EmailFollow(commune=COMMUNE,
                                   categories=(Category.TRAVAUX, Category.EVENEMENT)),)
            for start_at in range(0, EMAIL_SUBSCRIBERS, 500):
                batch = []
                for i in range(start_at, min(EMAIL_SUBSCRIBERS, start_at + 500)):
                    address = normalise_address(f"habitant{i}@example.org")
                    rid = links.recipient_id(address)
                    self.email_rids.append(rid)
                    batch.append(add_confirmed(email, rid, address, follows))
                await asyncio.gather(*batch)
            sms = await SmsRegistry.open(js)
            sms_follows = (SmsFollow(commune=COMMUNE,
                                     categories=(Category.ALERTE, Category.EVENEMENT)),)
            moment = datetime.now(UTC)
            for start_at in range(0, SMS_SUBSCRIBERS, 500):
                batch = []
                for i in range(start_at, min(SMS_SUBSCRIBERS, start_at + 500)):
                    number = f"+336{12000000 + i:08d}"
                    self.sms_numbers.append(number)
                    batch.append(sms.put(recipient_id(SMS_SECRET, number), Subscriber(
                        phone=number, confirmed=True, follows=sms_follows, created_at=moment,
                        confirmed_at=moment)))
                await asyncio.gather(*batch)
        finally:
            await nc.close()

    async def seed_webpush(self) -> None:
        """Once: WEBPUSH_BROWSERS browsers the Web Push stand-in made (it decrypts what they
        are sent), following every category of WEBPUSH_COMMUNE, straight into the bucket (as
        the bench); a staff token for that commune; until the service has indexed them."""
        if self.webpush_sids:
            return
        from bench.seed import register_communes, seed_webpush

        async with httpx.AsyncClient(timeout=120) as http:
            answer = await http.post(self.url("webpush-standin") + "/_standin/subscriptions",
                                     json={"name": "chaos", "count": WEBPUSH_BROWSERS})
            answer.raise_for_status()
            browsers = answer.json()["subscriptions"]
        self.webpush_token = await register_communes(
            self.nats_url, [(WEBPUSH_COMMUNE, "Courcelles")])
        await seed_webpush(self.nats_url, browsers, WEBPUSH_COMMUNE, tuple(Category))
        self.webpush_sids = [b["endpoint"].rsplit("/", 1)[1] for b in browsers]

        async def indexed() -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                health = (await http.get(self.url("webpush") + "/healthz")).json()
            return bool(health.get("subscriptions") == WEBPUSH_BROWSERS)

        await eventually(indexed, "the Web Push subscriptions indexed", within=120)

    async def wait_consumers(self, names: Iterable[str], within: float = 120.0) -> None:
        nc = await self.connect()
        try:
            js = nc.jetstream()
            for name in names:
                stream = "NOTICES" if name.endswith("fanout") else "JOBS"

                async def exists(stream: str = stream, name: str = name) -> bool:
                    try:
                        await js.consumer_info(stream, name)
                        return True
                    except Exception:
                        return False
                await eventually(exists, f"consumer {name}", within)
        finally:
            await nc.close()

    async def in_flight(self, consumer: str) -> int:
        """Jobs the server handed out and not yet acked: at most this many may be sent twice
        when their worker is killed. The server counts messages (num_ack_pending), and a
        message is a job alone or a group of up to CRIEUR_CHANNEL_GROUP_SIZE: this is that
        upper bound."""
        nc = await self.connect()
        try:
            info = await nc.jetstream().consumer_info("JOBS", consumer)
            return int(info.num_ack_pending or 0) * ChannelSettings().channel_group_size
        finally:
            await nc.close()

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['CRIEUR_HTTP_PORT']}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[self.running[name].service.port_var]}"

    async def publish(self, category: Category, title: str, *, key: str | None = None,
                      client: httpx.AsyncClient | None = None,
                      commune: str = COMMUNE) -> dict[str, Any]:
        """Publish through the front door, as staff do; retried while the door is away."""
        token = self.token if commune == COMMUNE else self.webpush_token
        headers = {"Authorization": f"Bearer {token}"} | (
            {"Idempotency-Key": key} if key else {})
        body = {"category": category.value, "title": title,
                "body": "Message de la mairie pour l’essai de pannes."}
        async with _client(client) as http:
            for attempt in range(30):
                try:
                    answer = await http.post(f"{self.api}/api/v1/communes/{commune}/notices",
                                             headers=headers, json=body, timeout=30)
                except httpx.HTTPError:
                    await asyncio.sleep(1.0)
                    continue
                if answer.status_code == 503 and attempt < 29:
                    await asyncio.sleep(1.0)
                    continue
                assert answer.status_code == 201, answer.text
                result: dict[str, Any] = answer.json()
                return result
        raise AssertionError("the front door never took the notice")

    async def withdraw(self, notice_id: str) -> None:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{self.api}/api/v1/communes/{COMMUNE}/notices/{notice_id}/withdraw",
                headers=self.auth, timeout=30)
        assert answer.status_code == 200, answer.text

    async def on_sign(self, *notice_ids: str) -> set[str]:
        """Those of these notices that are on the sign's playlist now."""
        return set(notice_ids) & {n["id"] for n in (await self.playlist())["notices"]}

    async def playlist(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(self.url("panel") + "/playlist", timeout=10)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    # -- sinks ------------------------------------------------------------------------------

    def email_sink(self) -> EmailSink:
        return EmailSink(self.root / "mail")

    def sms_sink(self) -> SmsSink:
        return SmsSink(self.root / "standins" / "sms.jsonl")

    def fcm_sink(self) -> FcmSink:
        return FcmSink(self.root / "standins" / "fcm.jsonl")

    def webpush_sink(self) -> WebpushSink:
        return WebpushSink(self.root / "standins" / "webpush.jsonl")

    def smtp_faults(self, faults: list[dict[str, Any]]) -> None:
        """Tell the SMTP stand-in (a process) what to answer: it re-reads this file."""
        path = self.root / "mail" / ".faults.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(faults))
        os.replace(tmp, path)

    async def standin(self, name: str, path: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient() as http:
            answer = await http.post(self.url(name) + path, json=body, timeout=10)
        answer.raise_for_status()

    def expect(self, channel: str, notice: dict[str, Any], tag: str) -> Expected:
        """What `channel` should deliver of a notice published with `tag` in its title."""
        nid = notice["id"]
        if channel == "email":
            return Expected(channel, self.email_sink(), nid, self.expected_email([nid]))
        if channel == "sms":
            return Expected(channel, self.sms_sink(), tag, self.expected_sms([tag]))
        if channel == "webpush":
            return Expected(channel, self.webpush_sink(), nid,
                            {(nid, sid) for sid in self.webpush_sids})
        assert channel == "push", channel
        return Expected(channel, self.fcm_sink(), nid,
                        {(nid, topic(COMMUNE, Category(notice["category"])))})

    def expected_email(self, notice_ids: Iterable[str]) -> set[tuple[str, str]]:
        return {(n, r) for n in notice_ids for r in self.email_rids}

    def expected_sms(self, tags: Iterable[str]) -> set[tuple[str, str]]:
        return {(t, number) for t in tags for number in self.sms_numbers}


def new_tag() -> str:
    """A tag put in a notice's title, so its SMS can be told apart (they carry no id)."""
    return f"c{uuid.uuid4().hex[:8]}"


def _client(client: httpx.AsyncClient | None) -> Any:
    if client is not None:
        return _Borrowed(client)
    return httpx.AsyncClient()


class _Borrowed:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.client

    async def __aexit__(self, *_: object) -> None:
        return None


def _die_with_parent() -> None:
    from crieur.process import die_with_parent

    die_with_parent()


async def eventually(check: Callable[[], Any | Awaitable[Any]], what: str,
                     within: float = 120.0, every: float = 0.2) -> Any:
    """Poll `check` until truthy: a generous bound, never a speed assertion."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(every)


async def settle(sinks: Callable[[], int], quiet_s: float = 5.0, within: float = 120.0) -> None:
    """Wait until the count stops moving for `quiet_s` (a duplicate would come late)."""
    deadline = time.monotonic() + within
    last, since = sinks(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = sinks()
        if now != last:
            last, since = now, time.monotonic()


