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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "notes": [],
    }
    server = NatsServer(work / "nats")
    server.start()
    try:
        result |= await baselines.nats_publish_and_fetch(server.url, max(n, 10_000))
        result["kit_null_sink_deliveries_per_s"] = await kit.kit_null_sink(
            server.url, n, concurrency=pool)
        try:
            import aiosmtplib  # noqa: F401

            import crieur.standins.smtp  # noqa: F401
        except ImportError as error:
            result["notes"].append(f"SMTP parts not measured: {error}")
            return result
        mail = work / "mail"
        smtp_port = free_port()
        smtp = start_smtp_standin(mail, smtp_port)
        try:
            message = baselines.sample_email()
            before = (cpu_seconds(smtp.pid), time.process_time())
            result["raw_smtp_deliveries_per_s"] = await baselines.smtp_loop(
                "127.0.0.1", smtp_port, pool, n, message)
            result["raw_smtp_cpu_ms_per_msg_standin"] = (
                (cpu_seconds(smtp.pid) - before[0]) / n * 1000)
            result["raw_smtp_cpu_ms_per_msg_client"] = (time.process_time() - before[1]) / n * 1000
            result["raw_smtp_message_bytes"] = len(message)
            shutil.rmtree(mail)
            mail.mkdir()
            from bench import email_service

            rate, detail = await email_service.measure(
                server.url, "127.0.0.1", smtp_port, mail, n, pool, work,
                pids={"standin": smtp.pid, "nats_server": _pid(server)})
            result |= detail
            if rate is not None:
                result["email_deliveries_per_s"] = rate
                result["email_to_raw_smtp_ratio"] = rate / result["raw_smtp_deliveries_per_s"]
        finally:
            smtp.terminate()
            smtp.wait(10)
    finally:
        server.stop()
    return result


def table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items() if isinstance(v, float | int)
            and not isinstance(v, bool)]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v:>12,.2f}" if isinstance(v, float)
             else f"{k.ljust(width)}  {v:>12,}" for k, v in rows]
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
