"""`make bench`: the village's fan-out, latency and memory, against raw baselines of the same run.

Measured in one run, on loopback, on this machine (docs/benchmark.md):
- raw baselines: nats-py alone (JetStream publish_async; pull fetch(500) + ack) and the
  channel kit into a sink that does nothing, on a server of their own; then, on the
  village's stand-ins, aiosmtplib alone (a pool of CRIEUR_SMTP_POOL connections) and httpx
  alone (CRIEUR_SMS_CONCURRENCY connections), each before and after the village's runs;
- the whole village (bench/village.py: notices, panel, email, push, SMS and the stand-ins);
- latency: notices at a steady rate, from the HTTP 201 to the FCM stand-in and to the sign's
  playlist (p50, p99);
- email alone (issue 8): one alert to --email-alone email subscribers of a commune no SMS
  subscriber follows, against raw aiosmtplib alone;
- fan-out: one alert to N email and N SMS subscribers of one commune, for each N of
  --sizes; from the 201 to the last message at each sink; peak RSS at the largest N; as
  email and SMS go out at once there, each is also held to raw aiosmtplib and raw httpx
  run at once (each in its own process), like with like;
- a département-wide alert: the same alert for 500 communes at once, published for their
  group with one request (POST /api/v1/groups/{group}/notices);
- an alert behind a backlog (issue 24): an information to --backlog email and SMS
  subscribers, then an alert to --backlog-alert of another commune, in a village of its
  own, without a quota and with one (CRIEUR_SMS_RATE and CRIEUR_SMTP_RATE = --quota):
  seconds from the alert's 201 to its first and last message at each sink.
- Web Push (issue 27): one alert to --webpush browsers (subscriptions the Web Push
  stand-in made and decrypts for), from the 201 to the Nth request the stand-in accepted,
  against a raw loop of http-ece + py-vapid + httpx (what pywebpush is built on) at the
  same concurrency to the same stand-in, measured just before and just after it.
`--only webpush` runs that phase alone (with --quick: 200 browsers);
`--only alert-backlog` runs that phase alone (with --quick: 2,000 behind, 100 alerted);
`--only departement` runs the département's alert alone, between two raw baselines (with
--quick: 10 communes, 200 subscribers).
Prints one table and writes var/bench/bench.json (each ratio under a key containing "ratio").
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baselines, kit, messages, phases
from bench import village as bench_village
from bench.cpu import cpu_seconds
from bench.sinks import MailArrivals
from crieur.nats_server import NatsServer

# The targets (issue 14).
RATIO_TARGET = 0.8
FLAT_TARGET = 1.2
LATENCY_TARGET_MS = 100.0
RSS_TARGET_MB = 200.0
# Crieur's own services (the memory target is theirs; the stand-ins and nats-server are
# measured and shown too).
SERVICES = ("notices", "panel", "email", "push", "sms")


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="subscriber counts of the fan-out runs, comma-separated")
    parser.add_argument("--quick", action="store_true",
                        help="a small run (sizes 100,200, 20 notices of latency, 10 communes, "
                             "200 email alone)")
    parser.add_argument("--latency-notices", type=int, default=200)
    parser.add_argument("--latency-rate", type=float, default=5.0, help="notices per second")
    parser.add_argument("--communes", type=int, default=500,
                        help="communes of the département-wide alert")
    parser.add_argument("--dept-subscribers", type=int, default=None,
                        help="email (and as many SMS) subscribers over those communes "
                             "(default: the largest size)")
    parser.add_argument("--email-alone", type=int, default=10_000,
                        help="email subscribers of the email-only run (issue 8)")
    parser.add_argument("--raw-count", type=int, default=None,
                        help="messages of each raw sink baseline (default: the largest size, "
                             "at most 5,000)")
    parser.add_argument("--pool", type=int, default=int(os.environ.get("CRIEUR_SMTP_POOL", 4)),
                        help="SMTP connections (CRIEUR_SMTP_POOL), raw and service alike")
    parser.add_argument("--sms-concurrency", type=int,
                        default=int(os.environ.get("CRIEUR_SMS_CONCURRENCY", 4)),
                        help="SMS sends at once (CRIEUR_SMS_CONCURRENCY), raw and service alike")
    parser.add_argument("--backlog", type=int, default=100_000,
                        help="information subscribers (email and SMS) queued ahead of the alert")
    parser.add_argument("--backlog-alert", type=int, default=1000,
                        help="subscribers of the alert sent behind the backlog")
    parser.add_argument("--quota", type=float, default=50.0,
                        help="messages per second of each sink in the quota run")
    parser.add_argument("--webpush", type=int, default=100_000,
                        help="browsers of the Web Push run (one request each)")
    parser.add_argument("--webpush-raw", type=int, default=None,
                        help="messages of each raw Web Push baseline (default: --webpush, "
                             "at most 5,000)")
    parser.add_argument("--webpush-concurrency", type=int,
                        default=int(os.environ.get("CRIEUR_WEBPUSH_CONCURRENCY", 32)),
                        help="Web Push requests at once (CRIEUR_WEBPUSH_CONCURRENCY), raw and "
                             "service alike")
    parser.add_argument("--only", choices=("alert-backlog", "departement", "webpush"),
                        default=None,
                        help="run this phase alone")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.latency_notices, args.latency_rate, args.communes = "100,200", 20, 10, 10
        args.email_alone = 200
        args.backlog, args.backlog_alert = 2000, 100
        args.webpush = 200
    args.sizes = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    if args.dept_subscribers is None:
        args.dept_subscribers = args.sizes[-1]
    if args.raw_count is None:
        args.raw_count = min(args.sizes[-1], 5_000)
    if args.webpush < 1:
        parser.error("--webpush: at least 1")
    if args.webpush_raw is None:
        args.webpush_raw = min(args.webpush, 5_000)
    args.webpush_raw = max(1, min(args.webpush_raw, args.webpush))
    return args


async def webpush_run(v: bench_village.BenchVillage, args: argparse.Namespace,
                      ) -> dict[str, Any]:
    """The Web Push run, held to the raw loop measured just before and just after it (the
    raw loop's browsers are the run's own first ones: the stand-in decrypts for them)."""
    browsers = await phases.webpush_browsers(v, args.webpush)
    payload = phases.webpush_payload(phases.WEBPUSH_COMMUNE[0])
    raw_browsers = browsers[:args.webpush_raw]
    # The raw client's CPU (this process, which does nothing else meanwhile) beside the
    # service's: what encrypting, signing and posting cost without Crieur in between.
    cpu = time.process_time()
    raws = [await baselines.webpush_loop(raw_browsers, payload, args.webpush_concurrency)]
    raw_cpu = time.process_time() - cpu
    run = await phases.webpush(v, browsers)
    cpu = time.process_time()
    raws.append(await baselines.webpush_loop(raw_browsers, payload, args.webpush_concurrency))
    raw_cpu += time.process_time() - cpu
    run |= {"concurrency": args.webpush_concurrency, "raw_count": len(raw_browsers),
            "raw_runs_deliveries_per_s": raws,
            "raw_deliveries_per_s": statistics.mean(raws),
            "raw_client_cpu_ms_per_msg": raw_cpu / (2 * len(raw_browsers)) * 1000,
            "payload_bytes": len(payload)}
    run["raw_seconds"] = run["expected"] / run["raw_deliveries_per_s"]
    run["to_raw_ratio"] = (run["deliveries_per_s"] / run["raw_deliveries_per_s"]
                           if run["deliveries_per_s"] else None)
    print(f"Web Push to {args.webpush}: {json.dumps(run)}", flush=True)
    return run


async def webpush_alone(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """`--only webpush`: the Web Push run in a village of its own."""
    began = time.perf_counter()
    v = bench_village.start(work / "village", smtp_pool=args.pool,
                            sms_concurrency=args.sms_concurrency,
                            webpush_concurrency=args.webpush_concurrency)
    try:
        run = await webpush_run(v, args)
        rss = phases.peak_rss_mb(v)
    finally:
        v.stop()
    return {"at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
            "options": {"webpush": args.webpush, "webpush_raw": args.webpush_raw,
                        "webpush_concurrency": args.webpush_concurrency},
            "webpush": run, "peak_rss_mb": rss, "targets": webpush_targets(run),
            "duration_s": time.perf_counter() - began}


def webpush_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    ratio = run["to_raw_ratio"]
    return [{"name": f"webpush.to_raw_ratio N={run['expected']}", "target": f">= {RATIO_TARGET}",
             "measured": ratio,
             "met": ratio is not None and ratio >= RATIO_TARGET
             and run["delivered"] == run["expected"] and run["duplicated"] == 0}]


async def raw_sinks(v: bench_village.BenchVillage, args: argparse.Namespace,
                    email: bytes, sms: list[bytes]) -> dict[str, float]:
    """aiosmtplib alone, then httpx alone, then both at once, into the village's stand-ins."""
    smtp_pid, sms_pid = v.processes["smtp"].pid, v.processes["sms-standin"].pid
    n = args.raw_count

    def ms(seconds: float) -> float:
        return float(seconds / n * 1000)

    # CPU per message of the client (this process, which does nothing else meanwhile)
    # and of the stand-in: what a delivery costs without Crieur in between.
    before, mail = (cpu_seconds(smtp_pid), time.process_time()), MailArrivals(v.mail_dir)
    smtp = await baselines.smtp_loop("127.0.0.1", int(v.env["CRIEUR_SMTP_PORT"]), args.pool,
                                     n, email)
    found = {"email": smtp, "smtp_standin_cpu_ms_per_msg": ms(cpu_seconds(smtp_pid) - before[0]),
             "smtp_client_cpu_ms_per_msg": ms(time.process_time() - before[1])}
    if mail.read() != n:
        raise RuntimeError("the raw SMTP baseline lost messages")
    before = cpu_seconds(sms_pid), time.process_time()
    found["sms"] = await baselines.sms_http_loop(v.url("sms-standin"), args.sms_concurrency,
                                                 sms)
    found |= {"sms_standin_cpu_ms_per_msg": ms(cpu_seconds(sms_pid) - before[0]),
              "sms_client_cpu_ms_per_msg": ms(time.process_time() - before[1])}
    mail = MailArrivals(v.mail_dir)
    both = await baselines.smtp_and_sms_at_once(
        ("127.0.0.1", int(v.env["CRIEUR_SMTP_PORT"]), args.pool, n, email),
        (v.url("sms-standin"), args.sms_concurrency, sms))
    if mail.read() != n:
        raise RuntimeError("the concurrent raw SMTP baseline lost messages")
    found |= {"email_concurrent": both["email"], "sms_concurrent": both["sms"]}
    return found


async def alert_backlog(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The alert behind a backlog, in villages of its own (the subscribers and the quota are
    its own): without a quota (the bench's SMS rate, 1,000/s), then with one.

    Without a quota, "the sink's rate" is what the sinks take on this machine right now: both
    raw clients at once into the village's own stand-ins, just before the backlog (the alert
    then shares the machine with the other channel, as the concurrent baseline does)."""
    notice = kit.bench_notice("70299")
    email, sms = messages.real_email(notice), messages.real_sms_bodies(notice, args.raw_count)
    runs: dict[str, Any] = {}
    for label, rate, env in (
            ("no quota", 1000.0, {}),
            (f"quota {args.quota:g}/s", args.quota,
             {"CRIEUR_SMS_RATE": f"{args.quota:g}", "CRIEUR_SMTP_RATE": f"{args.quota:g}"})):
        v = bench_village.start(work / f"backlog-{rate:g}", smtp_pool=args.pool,
                                sms_concurrency=args.sms_concurrency,
                                extra_env=phases.BACKLOG_ENV | env)
        try:
            raw = None if env else await raw_sinks(v, args, email, sms)
            runs[label] = await phases.alert_behind_backlog(
                v, args.backlog, args.backlog_alert, rate)
            runs[label]["quota_per_s"] = rate if env else None
            if raw is not None:
                runs[label]["sink_rates_per_s"] = {
                    "email": raw["email_concurrent"],
                    "sms": min(rate, raw["sms_concurrent"])}
        finally:
            v.stop()
        print(f"alert behind a backlog, {label}: {json.dumps(runs[label])}", flush=True)
    return runs


def alert_backlog_targets(runs: dict[str, Any], email_rate: float | None = None,
                          ) -> list[dict[str, Any]]:
    """First message within 1 s of the 201; the last within recipients/rate + 1 s (the
    rate: the run's quota; else the sink's rate measured in that village, both raw clients
    at once; else the SMS bench rate, and raw SMTP's when given)."""
    rows: list[dict[str, Any]] = []
    for label, run in runs.items():
        for channel in ("email", "sms"):
            c = run[channel]
            first = c["first_s"]
            rows.append({"name": f"alert behind {run['backlog']}: {channel} first ({label}, s)",
                         "target": "<= 1", "measured": first,
                         "met": first is not None and first <= 1.0})
            measured = run.get("sink_rates_per_s", {}).get(channel)
            rate = run["quota_per_s"] or measured or (
                run["sms_rate"] if channel == "sms" else email_rate)
            if rate:
                bound = run["recipients"] / rate + 1.0
                last = c["last_s"]
                rows.append({"name": f"alert behind {run['backlog']}: {channel} last "
                                     f"({label}, s)",
                             "target": f"<= {bound:.1f}", "measured": last,
                             "met": last is not None and last <= bound})
    return rows


async def departement_alone(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The département's alert in a village of its own, held to the raw rates measured just
    before and just after it, as in the whole run."""
    began = time.perf_counter()
    notice = kit.bench_notice("70299")
    email, sms = messages.real_email(notice), messages.real_sms_bodies(notice, args.raw_count)
    v = bench_village.start(work / "village", smtp_pool=args.pool,
                            sms_concurrency=args.sms_concurrency)
    try:
        before = await raw_sinks(v, args, email, sms)
        dept = await phases.departement(v, args.communes, args.dept_subscribers, 0)
        after = await raw_sinks(v, args, email, sms)
    finally:
        v.stop()

    def mean(key: str) -> float:
        return (before[key] + after[key]) / 2

    phases.add_ratios(dept, {k: mean(k) for k in ("email", "sms")},
                      {k: mean(f"{k}_concurrent") for k in ("email", "sms")})
    return {"at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
            "options": {"communes": args.communes, "dept_subscribers": args.dept_subscribers,
                        "smtp_pool": args.pool, "sms_concurrency": args.sms_concurrency},
            "departement": dept, "duration_s": time.perf_counter() - began}


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if args.only == "alert-backlog":
        began = time.perf_counter()
        runs = await alert_backlog(args, work)
        return {"at": datetime.now(UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
                "alert_backlog": runs, "targets": alert_backlog_targets(runs),
                "duration_s": time.perf_counter() - began}
    if args.only == "departement":
        return await departement_alone(args, work)
    if args.only == "webpush":
        return await webpush_alone(args, work)
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        # The machine may be shared: its load says how far to trust the absolute figures
        # (the ratios compare runs made under the same load).
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "options": {"sizes": args.sizes, "smtp_pool": args.pool,
                    "sms_concurrency": args.sms_concurrency, "raw_count": args.raw_count,
                    "latency_notices": args.latency_notices, "latency_rate": args.latency_rate,
                    "communes": args.communes, "dept_subscribers": args.dept_subscribers,
                    "email_alone": args.email_alone, "webpush": args.webpush,
                    "webpush_raw": args.webpush_raw,
                    "webpush_concurrency": args.webpush_concurrency},
    }
    began = time.perf_counter()
    plumbing = NatsServer(work / "nats-baseline")
    plumbing.start()
    try:
        nats = await baselines.nats_publish_and_fetch(plumbing.url, 10_000)
        kit_rate, kit_cpu = await kit.kit_null_sink(plumbing.url, max(args.sizes[-1], 1000),
                                                    concurrency=args.pool)
    finally:
        plumbing.stop()
    result["baselines"] = nats | {"kit_null_sink_deliveries_per_s": kit_rate,
                                  "kit_null_sink_cpu_ms_per_delivery": kit_cpu}
    notice = kit.bench_notice("70299")
    email, sms = messages.real_email(notice), messages.real_sms_bodies(notice, args.raw_count)
    result["baselines"]["email_message_bytes"] = len(email)
    v = bench_village.start(work / "village", smtp_pool=args.pool,
                            sms_concurrency=args.sms_concurrency,
                            webpush_concurrency=args.webpush_concurrency)
    # The machine is shared and its load moves: each run is held to the raw rates measured
    # just before it and just after it (their mean), not to one measured minutes away.
    raws: list[dict[str, float]] = []
    try:
        raws.append(await raw_sinks(v, args, email, sms))
        result["email_alone"] = await phases.email_alone(v, args.email_alone)
        print(f"email alone to {args.email_alone}: {json.dumps(result['email_alone'])}",
              flush=True)
        raws.append(await raw_sinks(v, args, email, sms))
        result["latency"] = await phases.latency(v, args.latency_notices, args.latency_rate)
        fanouts: dict[str, Any] = {}
        already = 0
        for n in args.sizes:
            fanouts[str(n)] = await phases.fanout(v, n, already, email_extra=args.email_alone)
            already = n
            print(f"fan-out to {n}: {json.dumps(fanouts[str(n)])}", flush=True)
            raws.append(await raw_sinks(v, args, email, sms))
        result["fanout"] = fanouts
        result["peak_rss_mb"] = phases.peak_rss_mb(v)
        result["departement"] = await phases.departement(
            v, args.communes, args.dept_subscribers, already, email_extra=args.email_alone)
        raws.append(await raw_sinks(v, args, email, sms))
        # Last: its browsers follow a commune of their own, so no email or SMS goes out.
        result["webpush"] = await webpush_run(v, args)
    finally:
        v.stop()
    result["alert_backlog"] = await alert_backlog(args, work)

    def mean(before: dict[str, float], after: dict[str, float], key: str) -> float:
        return (before[key] + after[key]) / 2

    alone = result["email_alone"]
    alone["raw_deliveries_per_s"] = mean(raws[0], raws[1], "email")
    alone["raw_seconds"] = alone["expected"] / alone["raw_deliveries_per_s"]
    alone["to_raw_ratio"] = (alone["deliveries_per_s"] / alone["raw_deliveries_per_s"]
                             if alone["deliveries_per_s"] else None)
    # The latency phase sits between raws[1] and the first fan-out: it sends no email or SMS.
    for (before, after), run in zip(itertools.pairwise(raws[1:]),
                                    (*fanouts.values(), result["departement"]), strict=True):
        phases.add_ratios(run, {k: mean(before, after, k) for k in ("email", "sms")},
                          {k: mean(before, after, f"{k}_concurrent") for k in ("email", "sms")})
    result["baselines"] |= {
        "raw_smtp_deliveries_per_s": statistics.mean(r["email"] for r in raws),
        "raw_smtp_runs_deliveries_per_s": [r["email"] for r in raws],
        **{f"raw_{name}": statistics.mean(r[name] for r in raws) for name in (
            "smtp_standin_cpu_ms_per_msg", "smtp_client_cpu_ms_per_msg",
            "sms_standin_cpu_ms_per_msg", "sms_client_cpu_ms_per_msg")},
        "raw_sms_http_deliveries_per_s": statistics.mean(r["sms"] for r in raws),
        "raw_sms_http_runs_deliveries_per_s": [r["sms"] for r in raws],
        "raw_smtp_concurrent_deliveries_per_s": statistics.mean(
            r["email_concurrent"] for r in raws),
        "raw_smtp_concurrent_runs_deliveries_per_s": [r["email_concurrent"] for r in raws],
        "raw_sms_http_concurrent_deliveries_per_s": statistics.mean(
            r["sms_concurrent"] for r in raws),
        "raw_sms_http_concurrent_runs_deliveries_per_s": [r["sms_concurrent"] for r in raws],
    }
    small, large = fanouts[str(args.sizes[0])], fanouts[str(args.sizes[-1])]
    result["per_recipient_time_ratio"] = {
        channel: (large[channel]["seconds"] / args.sizes[-1])
        / (small[channel]["seconds"] / args.sizes[0])
        if large[channel]["seconds"] and small[channel]["seconds"] else None
        for channel in ("email", "sms")}
    result["targets"] = (targets(result, args) + webpush_targets(result["webpush"])
                         + alert_backlog_targets(result["alert_backlog"],
                                                 result["baselines"]["raw_smtp_deliveries_per_s"]))
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["duration_s"] = time.perf_counter() - began
    return result


def targets(result: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(name: str, target: str, measured: float | None, met: bool) -> None:
        rows.append({"name": name, "target": target, "measured": measured, "met": met})

    def ratio_row(name: str, ratio: float | None) -> None:
        row(name, f">= {RATIO_TARGET}", ratio, ratio is not None and ratio >= RATIO_TARGET)

    # Judged like with like: email alone against aiosmtplib alone (issue 8); the
    # simultaneous runs against both raw sinks run at once. The alone-ratios of the
    # simultaneous runs are shown too, for comparison with earlier figures.
    ratio_row(f"email_alone.to_raw_ratio N={args.email_alone}",
              result["email_alone"]["to_raw_ratio"])
    for n, run in result["fanout"].items():
        for channel in ("email", "sms"):
            ratio_row(f"{channel}_to_concurrent_raw_ratio at N={n}",
                      run[channel]["to_concurrent_raw_ratio"])
    for channel in ("email", "sms"):
        ratio_row(f"departement_{channel}_to_concurrent_raw_ratio",
                  result["departement"][channel]["to_concurrent_raw_ratio"])
    for n, run in result["fanout"].items():
        for channel in ("email", "sms"):
            ratio_row(f"{channel}_to_raw_ratio at N={n} (raw alone)",
                      run[channel]["to_raw_ratio"])
    for channel in ("email", "sms"):
        ratio_row(f"departement_{channel}_to_raw_ratio (raw alone)",
                  result["departement"][channel]["to_raw_ratio"])
    for channel, ratio in result["per_recipient_time_ratio"].items():
        row(f"{channel} per_recipient_time_ratio N={args.sizes[-1]}/N={args.sizes[0]}",
            f"<= {FLAT_TARGET}", ratio, ratio is not None and ratio <= FLAT_TARGET)
    for sink in ("push", "panel"):
        p99 = result["latency"][sink]["p99_ms"]
        row(f"{sink} latency p99 (ms)", f"< {LATENCY_TARGET_MS:g}", p99,
            p99 is not None and p99 < LATENCY_TARGET_MS
            and result["latency"][sink]["received"] == result["latency"]["notices"])
    for name, mb in result["peak_rss_mb"].items():
        if name not in SERVICES:
            continue
        row(f"peak RSS {name} at N={args.sizes[-1]} (MB)", f"< {RSS_TARGET_MB:g}", mb,
            mb < RSS_TARGET_MB)
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def alert_backlog_table(runs: dict[str, Any]) -> list[str]:
    lines = ["== an alert behind a backlog: from its 201 to its first and last message =="]
    for label, run in runs.items():
        for channel in ("email", "sms"):
            c = run[channel]
            lines.append(
                f"  {label:<14} {channel:<6} behind {run['backlog']:>7}  alert "
                f"{c['delivered']:>5}/{run['recipients']:<5} first {_fmt(c['first_s']):>6} s"
                f"  last {_fmt(c['last_s']):>6} s  backlog sent before {c['backlog_sent_before']}"
                f", by its last {c['backlog_sent_by_last']}")
        if "sink_rates_per_s" in run:
            rates = run["sink_rates_per_s"]
            lines.append(f"  {label:<14} sinks measured just before, both at once: email "
                         f"{rates['email']:,.0f}/s, SMS {rates['sms']:,.0f}/s")
    return lines


def _targets_table(result: dict[str, Any]) -> list[str]:
    lines = ["== targets =="]
    for r in result["targets"]:
        lines.append(f"  {r['name']:<56} {r['target']:>7}  measured {_fmt(r['measured']):>8}"
                     f"  met {_fmt(r['met'])}")
    return lines


def departement_lines(dept: dict[str, Any]) -> list[str]:
    lines = [f"  dept: push {dept['push']['delivered']}/{dept['push']['expected']} topics, "
             f"{dept['requests']} request published {dept['communes']} notices in "
             f"{_fmt(dept['publish_all_s'])} s"]
    for channel in ("email", "sms"):
        t = dept["timeline"][channel]
        if t["count"]:
            lines.append(f"  dept {channel:<5} arrived: first {_fmt(t['first_s'])} s, "
                         f"half {_fmt(t['p50_s'])} s, last {_fmt(t['last_s'])} s after the "
                         f"request")
    pairs = dept["email"]["expected"] or 1
    lines.append("  dept CPU ms per email+SMS pair: " + ", ".join(
        f"{name} {seconds / pairs * 1000:.2f}" for name, seconds in sorted(
            dept["cpu_s"].items(), key=lambda kv: -kv[1])))
    return lines


def webpush_table(run: dict[str, Any]) -> list[str]:
    raws = ", ".join(f"{r:,.0f}" for r in run["raw_runs_deliveries_per_s"])
    return [
        "== Web Push (issue 27): one alert, one encrypted request per browser, from the 201 "
        "to the Nth request the stand-in accepted ==",
        f"  {run['delivered']:>7}/{run['expected']:<7} (twice: {run['duplicated']}) "
        f"{_fmt(run['seconds']):>9} s {_fmt(run['deliveries_per_s']):>8}/s  raw "
        f"{_fmt(run['raw_deliveries_per_s'])}/s ({raws}; {run['raw_count']} each, "
        f"{run['concurrency']} at once)  ratio {_fmt(run['to_raw_ratio'])}",
        f"  CPU ms per message: raw client {run['raw_client_cpu_ms_per_msg']:.2f}; in the run, "
        + ", ".join(
            f"{name} {seconds / run['expected'] * 1000:.2f}" for name, seconds in sorted(
                run["cpu_s"].items(), key=lambda kv: -kv[1]) if seconds > 0.01)]


def departement_table(dept: dict[str, Any]) -> list[str]:
    """`--only departement`: the run's figures, each channel against the raw sinks."""
    lines = [f"== département alert: {dept['communes']} communes, one group request; "
             "from the 201 to the last message at the sink =="]
    for channel in ("email", "sms"):
        c = dept[channel]
        lines.append(
            f"  {channel:<6} {c['delivered']:>7}/{c['expected']:<7} {_fmt(c['seconds']):>9} s "
            f"{_fmt(c['deliveries_per_s']):>8}/s  raw {_fmt(c['raw_deliveries_per_s'])}/s "
            f"ratio {_fmt(c['to_raw_ratio'])}  at once {_fmt(c['concurrent_raw_deliveries_per_s'])}"
            f"/s ratio {_fmt(c['to_concurrent_raw_ratio'])}")
    return lines + departement_lines(dept)


def table(result: dict[str, Any]) -> str:
    if "fanout" not in result and "webpush" in result:  # --only webpush
        return "\n".join([*webpush_table(result["webpush"]), *_targets_table(result),
                          f"took {result['duration_s']:.0f} s"])
    if "fanout" not in result and "departement" in result:  # --only departement
        return "\n".join([*departement_table(result["departement"]),
                          f"took {result['duration_s']:.0f} s"])
    if "latency" not in result:  # --only alert-backlog
        return "\n".join(alert_backlog_table(result["alert_backlog"]) + _targets_table(result)
                         + [f"took {result['duration_s']:.0f} s"])
    lines = ["== raw baselines (same run) =="]
    lines += [f"  {k:<44} {_fmt(v):>12}" for k, v in result["baselines"].items()
              if not isinstance(v, list)]
    lat = result["latency"]
    lines.append(f"== latency from the 201, {lat['notices']} notices at {lat['rate_per_s']:g}/s ==")
    for sink in ("push", "panel"):
        s = lat[sink]
        lines.append(f"  {sink:<8} received {s['received']:>5}  p50 {_fmt(s['p50_ms']):>8} ms"
                     f"  p99 {_fmt(s['p99_ms']):>8} ms  max {_fmt(s['max_ms']):>8} ms")
    alone = result["email_alone"]
    lines.append("== email alone (issue 8): one alert to email subscribers only, "
                 "against raw aiosmtplib alone ==")
    lines.append(f"  {'run':<18} {'channel':<6} {'delivered':>15} {'seconds':>9} "
                 f"{'per s':>8} {'raw per s':>10} {'ratio':>6} {'target':>7}")
    lines.append(
        f"  {'N=' + str(alone['expected']):<18} {'email':<6} "
        f"{alone['delivered']:>7}/{alone['expected']:<7} {_fmt(alone['seconds']):>9} "
        f"{_fmt(alone['deliveries_per_s']):>8} {_fmt(alone['raw_deliveries_per_s']):>10} "
        f"{_fmt(alone['to_raw_ratio']):>6} {'>= ' + str(RATIO_TARGET):>7}"
        f"   (SMS sent: {alone['sms_delivered']})")
    lines.append("== fan-out: one alert, from the 201 to the last message at the sink; "
                 "raw alone and raw at once (both sinks) ==")
    lines.append(f"  {'run':<18} {'channel':<6} {'delivered':>15} {'seconds':>9} "
                 f"{'per s':>8} {'raw per s':>10} {'ratio':>6} {'at once':>8} {'ratio':>6}")
    runs = [(f"N={n}", run) for n, run in result["fanout"].items()]
    runs.append((f"dept {result['departement']['communes']} communes", result["departement"]))
    for label, run in runs:
        for channel in ("email", "sms"):
            c = run[channel]
            lines.append(
                f"  {label:<18} {channel:<6} {c['delivered']:>7}/{c['expected']:<7} "
                f"{_fmt(c['seconds']):>9} {_fmt(c['deliveries_per_s']):>8} "
                f"{_fmt(c['raw_deliveries_per_s']):>10} {_fmt(c['to_raw_ratio']):>6} "
                f"{_fmt(c['concurrent_raw_deliveries_per_s']):>8} "
                f"{_fmt(c['to_concurrent_raw_ratio']):>6}")
    lines += departement_lines(result["departement"])
    lines += webpush_table(result["webpush"])
    lines.append("== peak RSS (VmHWM, MB) at the largest N ==")
    lines.append("  " + "  ".join(f"{k} {v:.0f}" for k, v in result["peak_rss_mb"].items()))
    lines += alert_backlog_table(result["alert_backlog"])
    lines += _targets_table(result)
    lines.append(f"machine: {result['machine']}; took {result['duration_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    from crieur import log
    log.configure("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
