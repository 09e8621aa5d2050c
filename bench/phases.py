"""The bench's phases against the running village: latency, fan-out at N, département alert,
Web Push.

Every notice goes through the real front door (POST /api/v1/communes/<insee>/notices with a
staff token; the département's alert, one POST /api/v1/groups/<group>/notices for all its
communes); clocks start at its HTTP 201 and stop at what the sinks recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import nats
import nats.errors
from nats.js.errors import NotFoundError

from bench import kit, seed
from bench.cpu import cpu_seconds
from bench.sinks import JsonLines, MailArrivals, sms_arrivals
from bench.village import EMAIL_SECRET, SMS_SECRET, BenchVillage
from crieur_dev.standins.smtp import ARRIVALS_FILE
from schemas.notice import Category

BODY = "Vents à 120 km/h attendus cette nuit. Ne sortez pas, rentrez ce qui peut s'envoler."


@dataclass(frozen=True)
class Published:
    notice_id: str
    commune: str
    wall: float  # time.time() at the 201, to compare with the stand-ins' "at"
    perf: float  # time.perf_counter() at the 201


async def publish(client: httpx.AsyncClient, v: BenchVillage, token: str, commune: str,
                  title: str, category: str = "alerte") -> Published:
    key = uuid.uuid4().hex
    for attempt in range(3):
        try:
            answer = await client.post(
                f"{v.url('notices')}/api/v1/communes/{commune}/notices",
                json={"category": category, "title": title, "body": BODY},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
            break
        except httpx.TransportError:
            # A kept-alive connection the front door closed as it was reused (seen once on
            # a loaded machine, 20 requests in flight): asked again with the same key,
            # the front door answers with the notice it made, never a second one.
            if attempt == 2:
                raise
    wall, perf = time.time(), time.perf_counter()
    if answer.status_code != 201:
        raise RuntimeError(f"publishing got {answer.status_code}: {answer.text[:300]}")
    return Published(answer.json()["id"], commune, wall, perf)


async def health(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        answer = await client.get(url + "/healthz")
        data: dict[str, Any] = answer.json()
        return data
    except (httpx.HTTPError, ValueError):
        return {}


async def wait_indexed(v: BenchVillage, total: int, within_s: float,
                       email_total: int | None = None) -> float:
    """Until the SMS service holds `total` active subscribers and the email service
    `email_total` (default: `total` too); seconds."""
    email_total = total if email_total is None else email_total
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            email = (await health(client, v.url("email"))).get("subscribers")
            sms = (await health(client, v.url("sms"))).get("subscribers")
            if email == email_total and sms == total:
                return time.perf_counter() - start
            if time.perf_counter() - start > within_s or v.dead():
                raise RuntimeError(f"subscribers indexed: email {email} of {email_total}, "
                                   f"sms {sms} of {total}"
                                   f" (dead: {v.dead()})")
            await asyncio.sleep(0.2)


def cpu_all(v: BenchVillage) -> dict[str, float]:
    found = {}
    for name, pid in v.pids().items():
        with contextlib.suppress(OSError):
            found[name] = cpu_seconds(pid)
    return found


def percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# -- latency: one notice at a time, to the FCM stand-in and to the sign's playlist ---------

async def _follow_panel(url: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """The sign's own event stream (what its web page shows): when each notice id appears."""
    async with httpx.AsyncClient(timeout=None) as client, \
            client.stream("GET", url + "/events") as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "playlist":
                now = time.time()
                for item in json.loads(line[5:])["notices"]:
                    seen.setdefault(item["id"], now)
                ready.set()


def _fcm_times(records: list[dict[str, Any]], seen: dict[str, float]) -> None:
    for record in records:
        body = record.get("body")
        if not isinstance(body, dict) or "message" not in body or record.get("status") != 200:
            continue
        notice_id = body["message"].get("data", {}).get("notice_id")
        if notice_id:
            seen.setdefault(notice_id, datetime.fromisoformat(record["at"]).timestamp())


async def latency(v: BenchVillage, count: int, rate: float) -> dict[str, Any]:
    """`count` notices at `rate` per second to the panel's commune (push follows it too)."""
    panel_seen: dict[str, float] = {}
    fcm_seen: dict[str, float] = {}
    fcm = JsonLines(v.standins_dir / "fcm.jsonl")
    ready = asyncio.Event()
    follower = asyncio.create_task(_follow_panel(v.url("panel"), panel_seen, ready))
    await asyncio.wait_for(ready.wait(), 30)
    sent: list[Published] = []
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            start = time.perf_counter()
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                sent.append(await publish(client, v, v.token, "70299",
                                          f"Alerte de latence {i} {start}"))
                _fcm_times(fcm.new_records(), fcm_seen)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            _fcm_times(fcm.new_records(), fcm_seen)
            if all(p.notice_id in fcm_seen and p.notice_id in panel_seen for p in sent):
                break
            await asyncio.sleep(0.1)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await follower
    result: dict[str, Any] = {"notices": count, "rate_per_s": rate}
    for name, seen in (("push", fcm_seen), ("panel", panel_seen)):
        ms = [(seen[p.notice_id] - p.wall) * 1000 for p in sent if p.notice_id in seen]
        result[name] = {"received": len(ms), "p50_ms": percentile(ms, 50) if ms else None,
                        "p99_ms": percentile(ms, 99) if ms else None,
                        "max_ms": max(ms) if ms else None}
    return result


# -- fan-out: one notice to every subscriber of a commune, or to 500 communes ---------------

@dataclass
class Marks:
    """Where the sinks' records stood before a publication: what came after is its own."""

    mail: MailArrivals
    sms: JsonLines

    @classmethod
    def now(cls, v: BenchVillage) -> Marks:
        return cls(MailArrivals(v.mail_dir), JsonLines(v.standins_dir / "sms.jsonl"))


async def _deliveries(v: BenchVillage, marks: Marks, started_wall: float, expected: int,
                      within_s: float,
                      publishing: asyncio.Task[list[Published]] | None = None,
                      channels: tuple[str, ...] = ("email", "sms")) -> dict[str, Any]:
    """Polls the sinks until `expected` messages arrived for each of `channels` (the others
    are counted too: they should get none); seconds from `started_wall` (time.time()) to
    the `expected`th arrival as the sink recorded it, so the polling interval is not in
    the figure. Each poll reads only what the sinks added since the last one (the SMTP
    stand-in's `.arrivals`, the SMS stand-in's `sms.jsonl`): listing the mail directory
    instead read every file name, 50 ms of CPU at 100,000, taken from the village's cores
    (3% of the CPU a 10,000 fan-out spent was the bench's)."""
    mail, sms = marks.mail, marks.sms
    if publishing is not None:
        await publishing
    got = {"email": 0, "sms": 0}
    sms_at: list[float] = []
    done: set[str] = set()
    deadline = time.perf_counter() + within_s

    def read_sms() -> None:
        accepted = [line for line in sms.new_lines() if b'"status": 201' in line]
        got["sms"] += len(accepted)
        sms_at.extend(sms_arrivals([json.loads(line) for line in accepted]))

    while len(done) < len(channels):
        await asyncio.sleep(0.5)
        now = time.perf_counter()
        got["email"] = mail.read()
        read_sms()
        done |= {c for c, count in got.items() if c in channels and count >= expected}
        if now > deadline or v.dead():
            break
    await asyncio.sleep(2.0)  # anything more now is a duplicate
    got["email"] = mail.read()
    read_sms()
    arrivals = {"email": sorted(mail.times), "sms": sorted(sms_at)}
    result: dict[str, Any] = {}
    for channel in ("email", "sms"):
        seconds = None
        if channel in done and len(arrivals[channel]) >= expected:
            # At least a millisecond: a figure, not a division by zero.
            seconds = max(arrivals[channel][expected - 1] - started_wall, 0.001)
        wanted = expected if channel in channels else 0
        result[channel] = {"expected": wanted, "delivered": got[channel], "seconds": seconds,
                           "deliveries_per_s": wanted / seconds if seconds else None,
                           "timeline": timeline(arrivals[channel], started_wall)}
    if v.dead():
        result["dead_services"] = v.dead()
    return result


def add_ratios(result: dict[str, Any], raw: dict[str, float],
               concurrent: dict[str, float] | None = None) -> None:
    """Each channel's rate over its sink's raw rate measured alone (same run) and, when
    given, over the raw rate measured with both raw sinks at once (like with like for a
    run where email and SMS go out at the same time)."""
    for channel in ("email", "sms"):
        rate = result[channel]["deliveries_per_s"]
        result[channel]["raw_deliveries_per_s"] = raw[channel]
        result[channel]["raw_seconds"] = result[channel]["expected"] / raw[channel]
        result[channel]["to_raw_ratio"] = rate / raw[channel] if rate else None
        if concurrent is not None:
            result[channel]["concurrent_raw_deliveries_per_s"] = concurrent[channel]
            result[channel]["to_concurrent_raw_ratio"] = (
                rate / concurrent[channel] if rate else None)


# Email alone: its own commune, so no SMS subscriber follows it.
EMAIL_ALONE_COMMUNE = ("72001", "Commune du bench email")


async def email_alone(v: BenchVillage, n: int) -> dict[str, Any]:
    """Issue 8's run: one alert to `n` email subscribers of a commune that no SMS subscriber
    follows (push and panel on): the email service alone against raw aiosmtplib alone.
    Run first, so the email index holds these `n` and the SMS index none."""
    started = time.perf_counter()
    token = await seed.register_communes(v.nats_url, [EMAIL_ALONE_COMMUNE])
    await seed.seed(v.nats_url, email_secret=EMAIL_SECRET, sms_secret=SMS_SECRET,
                    start=0, stop=n, communes=[EMAIL_ALONE_COMMUNE[0]], block=2, sms=False)
    seed_s = time.perf_counter() - started
    index_s = await wait_indexed(v, 0, within_s=120 + n / 500, email_total=n)
    cpu = cpu_all(v)
    async with httpx.AsyncClient(timeout=30) as client:
        marks = Marks.now(v)
        published = await publish(client, v, token, EMAIL_ALONE_COMMUNE[0],
                                  f"Tempête, {n} abonnés par courriel")
        found = await _deliveries(v, marks, published.wall, n, within_s=120 + n / 40,
                                  channels=("email",))
    after = cpu_all(v)
    result: dict[str, Any] = dict(found["email"])
    result |= {"sms_delivered": found["sms"]["delivered"], "seed_s": seed_s,
               "index_wait_s": index_s,
               "cpu_s": {name: after[name] - cpu[name] for name in after if name in cpu}}
    if "dead_services" in found:
        result["dead_services"] = found["dead_services"]
    return result


async def fanout(v: BenchVillage, n: int, already: int, email_extra: int = 0,
                 ) -> dict[str, Any]:
    """One alert to the first `n` subscribers of 70299 (seeding those past `already`);
    `email_extra`: email subscribers of other communes already indexed."""
    started = time.perf_counter()
    await seed.seed(v.nats_url, email_secret=EMAIL_SECRET, sms_secret=SMS_SECRET,
                    start=already, stop=n, communes=["70299"], block=0)
    seed_s = time.perf_counter() - started
    index_s = await wait_indexed(v, n, within_s=120 + n / 500, email_total=n + email_extra)
    cpu, bench_cpu = cpu_all(v), time.process_time()
    async with httpx.AsyncClient(timeout=30) as client:
        marks = Marks.now(v)
        published = await publish(client, v, v.token, "70299", f"Tempête, {n} abonnés")
        result = await _deliveries(v, marks, published.wall, n, within_s=120 + n / 40)
    after = cpu_all(v)
    result |= {"seed_s": seed_s, "index_wait_s": index_s,
               "cpu_s": {name: after[name] - cpu[name] for name in after if name in cpu}}
    result["cpu_s"]["bench"] = time.process_time() - bench_cpu  # its polling of the sinks
    return result


def peak_rss_mb(v: BenchVillage) -> dict[str, float]:
    """VmHWM (the kernel's peak resident set) of each process, in MB."""
    found = {}
    for name, pid in v.pids().items():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    found[name] = int(line.split()[1]) / 1024
    return found


QUEUED_CHANNELS = ("email", "sms", "push")


async def watch_queues(v: BenchVillage, start: float, into: list[dict[str, Any]],
                       stop: asyncio.Event, every_s: float = 0.5) -> None:
    """Every `every_s` until `stop`: the events each channel's fan-out has not planned yet
    and the jobs its worker has not finished (its durable consumers' info), to see which
    stage waits; and each process's CPU seconds so far, and the machine's (/proc/stat).

    Stopped by an event, not cancelled: nats-py turns a request cancelled mid-way into its
    own error, which the loop below suppresses, and a cancelled watcher then ran for ever
    (a CI run's quick bench hung after its last delivery)."""
    nc = await nats.connect(v.nats_url)
    js = nc.jetstream()
    try:
        while not stop.is_set():
            sample: dict[str, Any] = {"t": time.perf_counter() - start, "cpu": cpu_all(v)}
            sample["cpu"]["bench"] = time.process_time()
            sample["cpu"]["machine"] = machine_busy_s()
            for channel in QUEUED_CHANNELS:
                with contextlib.suppress(NotFoundError, nats.errors.Error, TimeoutError):
                    fan = await js.consumer_info("NOTICES", f"{channel}-fanout", timeout=2)
                    work = await js.consumer_info("JOBS", f"{channel}-worker", timeout=2)
                    sample[channel] = {
                        "events": (fan.num_pending or 0) + (fan.num_ack_pending or 0),
                        "jobs": (work.num_pending or 0) + (work.num_ack_pending or 0)}
            into.append(sample)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await stop.wait()
    finally:
        await nc.close()


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (every process, /proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_between(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Each process's CPU seconds between the samples nearest `start` and `end`, as cores."""
    first = min(samples, key=lambda s: abs(s["t"] - start))
    last = min(samples, key=lambda s: abs(s["t"] - end))
    span = last["t"] - first["t"]
    if span <= 0:
        return {}
    return {"from_s": round(first["t"], 1), "to_s": round(last["t"], 1), "cores": {
        name: round((last["cpu"][name] - first["cpu"][name]) / span, 3)
        for name in last["cpu"] if name in first["cpu"]}}


def queue_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per channel: when its fan-out had planned every event (the last sample with events
    waiting), the most jobs waiting for its worker, and the samples every ~5 s."""
    found: dict[str, Any] = {}
    for channel in QUEUED_CHANNELS:
        seen = [(s["t"], s[channel]) for s in samples if channel in s]
        if not seen:
            continue
        busy = [t for t, q in seen if q["events"]]
        found[channel] = {
            "planned_all_by_s": busy[-1] if busy else 0.0,
            "most_jobs_waiting": max(q["jobs"] for _, q in seen),
            "every_5s": [(round(t, 1), q["events"], q["jobs"]) for i, (t, q) in enumerate(seen)
                         if i % 10 == 0]}
    return found


def timeline(arrivals: list[float], start_wall: float, bucket_s: float = 5.0,
             ) -> dict[str, Any]:
    """Seconds from `start_wall` to the first, 10th, 50th, 90th percentile and last arrival,
    and how many arrived in each `bucket_s` seconds."""
    if not arrivals:
        return {"count": 0}
    at = [a - start_wall for a in arrivals]
    buckets = [0] * (int(at[-1] // bucket_s) + 1)
    for a in at:
        buckets[max(0, int(a // bucket_s))] += 1
    return {"count": len(at), "first_s": at[0], "p10_s": at[len(at) // 10],
            "p50_s": at[len(at) // 2], "p90_s": at[len(at) * 9 // 10], "last_s": at[-1],
            f"per_{bucket_s:g}s": buckets}


def dept_communes(count: int) -> list[tuple[str, str]]:
    """Codes 71001... (no clash with the demo commune, 70299), each a commune of its own."""
    return [(f"{71001 + i:05d}", f"Commune {i + 1}") for i in range(count)]


DEPT_GROUP = "bench-departement"


async def publish_for_group(client: httpx.AsyncClient, v: BenchVillage, token: str,
                            group: str, title: str) -> list[Published]:
    """One request for every commune of the group (POST /api/v1/groups/{group}/notices):
    each commune's copy, all stamped with the time of the one 201."""
    key = uuid.uuid4().hex
    for attempt in range(3):
        try:
            answer = await client.post(
                f"{v.url('notices')}/api/v1/groups/{group}/notices",
                json={"category": "alerte", "title": title, "body": BODY},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
            break
        except httpx.TransportError:
            # As `publish`: asked again with the same key, the same broadcast comes back.
            if attempt == 2:
                raise
    wall, perf = time.time(), time.perf_counter()
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"publishing for the group got {answer.status_code}: "
                           f"{answer.text[:300]}")
    return [Published(c["notice_id"], c["commune"], wall, perf)
            for c in answer.json()["copies"]]


async def departement(v: BenchVillage, communes: int, n: int, already: int,
                      email_extra: int = 0) -> dict[str, Any]:
    """The same alert for `communes` communes at once, published for their group with one
    request, `n` email and `n` SMS subscribers spread over them; from the request to the
    last delivery."""
    listed = dept_communes(communes)
    started = time.perf_counter()
    token = await seed.register_communes(v.nats_url, listed, group=DEPT_GROUP)
    register_s = time.perf_counter() - started
    started = time.perf_counter()
    await seed.seed(v.nats_url, email_secret=EMAIL_SECRET, sms_secret=SMS_SECRET,
                    start=0, stop=n, communes=[c for c, _ in listed], block=1)
    seed_s = time.perf_counter() - started
    index_s = await wait_indexed(v, already + n, within_s=120 + n / 500,
                                 email_total=already + n + email_extra)
    fcm = JsonLines(v.standins_dir / "fcm.jsonl")
    async with httpx.AsyncClient(timeout=120) as client:
        marks = Marks.now(v)
        cpu, bench_cpu = cpu_all(v), time.process_time()
        start, start_wall = time.perf_counter(), time.time()
        publishing = asyncio.create_task(publish_for_group(
            client, v, token, DEPT_GROUP, "Alerte orange : orages violents"))
        queues: list[dict[str, Any]] = []
        done = asyncio.Event()
        watching = asyncio.create_task(watch_queues(v, start, queues, done))
        try:
            result = await _deliveries(v, marks, start_wall, n, within_s=120 + n / 40,
                                       publishing=publishing)
        finally:
            done.set()
            await watching
        sent = publishing.result()
    if len(sent) != communes:
        raise RuntimeError(f"the group publication made {len(sent)} copies, not {communes}")
    after = cpu_all(v)
    # Where the time went: the publications, then when the messages reached each sink
    # (from the sinks' own records, as _deliveries read them).
    result["timeline"] = {
        "first_201_s": min(p.perf for p in sent) - start,
        "last_201_s": max(p.perf for p in sent) - start,
        "email": result["email"].pop("timeline"), "sms": result["sms"].pop("timeline")}
    result["timeline"]["queues"] = queue_summary(queues)
    if queues:
        # Who had the cores while the 500 were being published, and after.
        published = result["timeline"]["last_201_s"]
        result["timeline"]["cpu_publishing"] = cpu_between(queues, 0.0, published)
        result["timeline"]["cpu_after"] = cpu_between(queues, published, queues[-1]["t"])
    result["cpu_s"] = {name: after[name] - cpu[name] for name in after if name in cpu}
    # The bench's own polling of the sinks shares the machine too.
    result["cpu_s"]["bench"] = time.process_time() - bench_cpu
    pushes: set[str] = set()
    for record in fcm.new_records():
        body = record.get("body")
        if isinstance(body, dict) and "message" in body and record.get("status") == 200:
            pushes.add(body["message"].get("data", {}).get("notice_id", ""))
    result |= {"communes": communes, "requests": 1, "register_s": register_s,
               "seed_s": seed_s,
               "index_wait_s": index_s,
               "publish_all_s": max(p.perf for p in sent) - start,
               "push": {"expected": communes,
                        "delivered": len(pushes & {p.notice_id for p in sent})}}
    return result


# -- an alert behind a backlog (issue 24): alerts first, whatever a channel has queued --------

BACKLOG_COMMUNE = ("70301", "Commune du bench, information")
ALERT_COMMUNE = ("70302", "Commune du bench, alerte")
# The alert's subscribers: their own addresses and numbers (+336...; the backlog's +337...).
ALERT_PREFIX, ALERT_BLOCK, BACKLOG_PREFIX, BACKLOG_BLOCK = "alerth", 0, "infoh", 1
# The village of this phase: SMS carries information too, and is never in quiet hours.
BACKLOG_ENV = {"CRIEUR_SMS_CATEGORIES": '["alerte", "information"]',
               "CRIEUR_SMS_QUIET_HOURS": ""}


class _AlertArrivals:
    """Times at which the alert's messages reached each sink, told from the backlog's by
    recipient (the mail's To:, the SMS's number)."""

    def __init__(self, v: BenchVillage) -> None:
        self.mail_dir = v.mail_dir
        self.mail = JsonLines(v.mail_dir / ARRIVALS_FILE)
        self.sms = JsonLines(v.standins_dir / "sms.jsonl")
        self.times: dict[str, list[float]] = {"email": [], "sms": []}
        self.others = {"email": 0, "sms": 0}
        self._alert_number = f"33{6 + ALERT_BLOCK}"

    def read(self) -> None:
        for line in self.mail.new_lines():
            name = line.decode()
            with (self.mail_dir / f"{name}.eml").open("rb") as mail:
                head = mail.read(512)  # Delivered-To: comes first
            if ALERT_PREFIX.encode() in head:
                self.times["email"].append(int(name.split("-", 1)[0]) / 1e9)
            else:
                self.others["email"] += 1
        for record in self.sms.new_records():
            if record.get("status") != 201:
                continue
            body = record.get("body")
            number = str(body.get("recipient", "")) if isinstance(body, dict) else ""
            if number.startswith(self._alert_number):
                self.times["sms"].append(datetime.fromisoformat(record["at"]).timestamp())
            else:
                self.others["sms"] += 1


async def alert_behind_backlog(v: BenchVillage, backlog: int, recipients: int,
                               sms_rate: float) -> dict[str, Any]:
    """An information to `backlog` email and SMS subscribers of one commune; once it flows
    on both sinks, an alert to `recipients` of another: seconds from the alert's 201 to its
    first and last message at each sink, and how much of the backlog was still to go."""
    token = await seed.register_communes(v.nats_url, [BACKLOG_COMMUNE, ALERT_COMMUNE])
    await seed.seed(v.nats_url, email_secret=EMAIL_SECRET, sms_secret=SMS_SECRET, start=0,
                    stop=backlog, communes=[BACKLOG_COMMUNE[0]], block=BACKLOG_BLOCK,
                    categories=(Category.INFORMATION,), prefix=BACKLOG_PREFIX)
    await seed.seed(v.nats_url, email_secret=EMAIL_SECRET, sms_secret=SMS_SECRET, start=0,
                    stop=recipients, communes=[ALERT_COMMUNE[0]], block=ALERT_BLOCK,
                    prefix=ALERT_PREFIX)
    total = backlog + recipients
    await wait_indexed(v, total, within_s=120 + total / 500)
    arrivals = _AlertArrivals(v)
    async with httpx.AsyncClient(timeout=30) as client:
        await publish(client, v, token, BACKLOG_COMMUNE[0], f"Information à {backlog}",
                      category="information")
        deadline = time.perf_counter() + 120
        while min(arrivals.others.values()) < 1 and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            arrivals.read()
        before = dict(arrivals.others)
        alert = await publish(client, v, token, ALERT_COMMUNE[0], f"Alerte à {recipients}")
    deadline = time.perf_counter() + 60 + recipients / min(sms_rate, 50)
    while (min(len(t) for t in arrivals.times.values()) < recipients
           and time.perf_counter() < deadline and not v.dead()):
        await asyncio.sleep(0.2)
        arrivals.read()
    result: dict[str, Any] = {"backlog": backlog, "recipients": recipients,
                              "sms_rate": sms_rate}
    for channel, times in arrivals.times.items():
        times.sort()
        result[channel] = {
            "delivered": len(times),
            "first_s": times[0] - alert.wall if times else None,
            "last_s": times[recipients - 1] - alert.wall if len(times) >= recipients else None,
            # Backlog messages sent before the alert's 201, and by the alert's last.
            "backlog_sent_before": before[channel],
            "backlog_sent_by_last": arrivals.others[channel]}
    if v.dead():
        result["dead_services"] = v.dead()
    return result


# -- Web Push (issue 27): one encrypted request per browser ---------------------------------

WEBPUSH_COMMUNE = ("72002", "Commune du bench Web Push")
# Browsers made by one request to the stand-in (its answer is ~200 bytes each).
WEBPUSH_BATCH = 20_000


async def webpush_browsers(v: BenchVillage, n: int) -> list[dict[str, Any]]:
    """`n` new browsers' subscriptions, made by the Web Push stand-in: it keeps their keys,
    so it can decrypt what is sent to them, the service's messages and the raw loop's."""
    made: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=300) as client:
        while len(made) < n:
            answer = await client.post(
                v.url("webpush-standin") + "/_standin/subscriptions",
                json={"name": f"bench {len(made)}", "count": min(WEBPUSH_BATCH, n - len(made))})
            answer.raise_for_status()
            made += answer.json()["subscriptions"]
    return made


def webpush_payload(commune: str) -> bytes:
    """A notification as the Web Push service builds it for an alert (for the raw loop)."""
    from crieur.channel.port import Edition
    from schemas.events import EventKind
    from services.webpush.handlers import notification

    edition = Edition(EventKind.PUBLISHED, kit.bench_notice(commune), WEBPUSH_COMMUNE[1])
    return json.dumps(notification(edition, "https://crieur.example.fr"),
                      ensure_ascii=False).encode()


async def webpush(v: BenchVillage, browsers: list[dict[str, Any]]) -> dict[str, Any]:
    """One alert to the `browsers` (subscribed to alerts of a commune of their own, so no
    email or SMS goes out): from its 201 to the Nth push request the stand-in accepted (its
    own time stamp), each counted once by browser."""
    n = len(browsers)
    async with httpx.AsyncClient(timeout=10) as client:
        # The demo browsers the stand-in subscribes for make run's communes are there too.
        before = (await health(client, v.url("webpush"))).get("subscriptions", 0)
    started = time.perf_counter()
    token = await seed.register_communes(v.nats_url, [WEBPUSH_COMMUNE])
    await seed.seed_webpush(v.nats_url, browsers, WEBPUSH_COMMUNE[0])
    seed_s = time.perf_counter() - started
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=10) as client:
        while (await health(client, v.url("webpush"))).get("subscriptions") != before + n:
            if time.perf_counter() - started > 120 + n / 500 or v.dead():
                raise RuntimeError(f"Web Push subscriptions not indexed (dead: {v.dead()})")
            await asyncio.sleep(0.2)
    index_s = time.perf_counter() - started
    records = JsonLines(v.standins_dir / "webpush.jsonl")
    cpu = cpu_all(v)
    times: dict[str, list[float]] = {}
    others = 0
    async with httpx.AsyncClient(timeout=30) as client:
        published = await publish(client, v, token, WEBPUSH_COMMUNE[0],
                                  f"Tempête, {n} navigateurs")
    mark = f'"notice_id": "{published.notice_id}"'.encode()

    def read() -> None:
        nonlocal others
        for line in records.new_lines():
            if mark not in line:
                others += 1
                continue
            record = json.loads(line)
            times.setdefault(record["subscription"], []).append(
                datetime.fromisoformat(record["at"]).timestamp())

    deadline = time.perf_counter() + 120 + n / 40
    while len(times) < n and time.perf_counter() < deadline and not v.dead():
        await asyncio.sleep(0.5)
        read()
    await asyncio.sleep(2.0)  # anything more now is a duplicate
    read()
    after = cpu_all(v)
    firsts = sorted(min(t) for t in times.values())
    seconds = (max(firsts[n - 1] - published.wall, 0.001) if len(firsts) >= n else None)
    result: dict[str, Any] = {
        "expected": n, "delivered": len(times),
        "duplicated": sum(len(t) - 1 for t in times.values()), "seconds": seconds,
        "deliveries_per_s": n / seconds if seconds else None,
        "unexpected_requests": others, "seed_s": seed_s, "index_wait_s": index_s,
        "timeline": timeline(firsts, published.wall),
        "cpu_s": {name: after[name] - cpu[name] for name in after if name in cpu}}
    if v.dead():
        result["dead_services"] = v.dead()
    return result
