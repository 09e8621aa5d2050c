"""`make bench`: one notice to N email subscribers, against raw baselines of the same run.

Measured in one run, on loopback, on this machine:
- nats-py alone: JetStream publish_async, pull fetch(500) + ack;
- the channel kit into a sink that does nothing (the plumbing's ceiling);
- aiosmtplib alone: a pool of CRIEUR_SMTP_POOL persistent connections sending N prebuilt
  messages into the SMTP stand-in (crieur/standins/smtp.py, its own process);
- the real email service (its own process) fanning one alert out to N confirmed
  subscribers into the same stand-in: from the event stored on NOTICES to the Nth
  message on the stand-in's disk.
Prints a table and writes var/bench/email.json (ratios under keys containing "ratio").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baselines, kit
from bench.cpu import cpu_seconds
from crieur.nats_server import NatsServer, free_port
from crieur.process import die_with_parent


def count_mail(directory: Path) -> int:
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".eml"))


def start_smtp_standin(directory: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crieur.standins.smtp", "--dir", str(directory), "--port",
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent)
    import socket
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SMTP stand-in did not start")


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n, pool = args.subscribers, args.pool
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(), "subscribers": n, "smtp_pool": pool,
        # The machine may be shared: its load says how far to trust the absolute figures
        # (the ratios compare runs made under the same load).
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "notes": [],
    }
    server = NatsServer(work / "nats")
    server.start()
    try:
        result |= await baselines.nats_publish_and_fetch(server.url, max(n, 10_000))
        (result["kit_null_sink_deliveries_per_s"],
         result["kit_null_sink_cpu_ms_per_delivery"]) = await kit.kit_null_sink(
            server.url, n, concurrency=pool)
        mail = work / "mail"
        smtp_port = free_port()
        smtp = start_smtp_standin(mail, smtp_port)
        try:
            await email_part(result, server, smtp, smtp_port, mail, n, pool, work)
        finally:
            smtp.terminate()
            smtp.wait(10)
    finally:
        server.stop()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    return result


def empty(directory: Path) -> None:
    """The stand-in's mailbox emptied between runs, so each run counts its own messages."""
    shutil.rmtree(directory)
    directory.mkdir()


async def raw_smtp(result: dict[str, Any], smtp: subprocess.Popen[bytes], port: int,
                   mail: Path, n: int, pool: int, message: bytes, label: str) -> float:
    before = (cpu_seconds(smtp.pid), time.process_time())
    rate = await baselines.smtp_loop("127.0.0.1", port, pool, n, message)
    result[f"raw_smtp_{label}_deliveries_per_s"] = rate
    result[f"raw_smtp_{label}_cpu_ms_per_msg_standin"] = (
        (cpu_seconds(smtp.pid) - before[0]) / n * 1000)
    result[f"raw_smtp_{label}_cpu_ms_per_msg_client"] = (
        (time.process_time() - before[1]) / n * 1000)
    empty(mail)
    return rate


async def email_part(result: dict[str, Any], server: NatsServer,
                     smtp: subprocess.Popen[bytes], smtp_port: int, mail: Path, n: int,
                     pool: int, work: Path) -> None:
    """Raw aiosmtplib, the email service, raw again: the machine is shared, so the raw
    rate the pipeline is held to is the mean of one run just before and one just after."""
    from bench import email_service

    notice = kit.bench_notice(email_service.COMMUNE)
    message = email_service.real_email(notice)
    result["email_message_bytes"] = len(message)
    before = await raw_smtp(result, smtp, smtp_port, mail, n, pool, message, "before")
    rate, detail = await email_service.measure(
        server.url, "127.0.0.1", smtp_port, mail, n, pool, work,
        pids={"standin": smtp.pid, "nats_server": _pid(server)}, notice=notice)
    result |= detail
    empty(mail)
    after = await raw_smtp(result, smtp, smtp_port, mail, n, pool, message, "after")
    raw = (before + after) / 2
    result["raw_smtp_deliveries_per_s"] = raw
    if rate is not None:
        result["email_deliveries_per_s"] = rate
        result["email_to_raw_smtp_ratio"] = rate / raw
        result["ratio_target"] = 0.8
        result["ratio_target_met"] = rate / raw >= 0.8


def table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items() if isinstance(v, float | int)]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v!s:>12}" if isinstance(v, bool)
             else f"{k.ljust(width)}  {v:>12,.2f}" if isinstance(v, float)
             else f"{k.ljust(width)}  {v:>12,}" for k, v in rows]
    lines.append(f"{'machine'.ljust(width)}  {result['machine']}")
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=int(os.environ.get("CRIEUR_SMTP_POOL", 4)))
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    os.environ.setdefault("CRIEUR_LOG_LEVEL", "WARNING")
    from crieur import log
    log.configure("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "email.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path}")


def _pid(server: NatsServer) -> int:
    assert server.process is not None
    return server.process.pid


if __name__ == "__main__":
    main()
