"""The real email service (its own process) fanning one alert out to N subscribers.

Subscribers are seeded by a bench-only path: straight into the `email_subscribers`
bucket, already confirmed (`services.email.subscribers.add_confirmed`), skipping the
opt-in a resident goes through. The clock runs from the event stored on NOTICES to the
Nth message on the SMTP stand-in's disk.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import nats

from bench.cpu import cpu_seconds
from bench.kit import publish
from crieur.bus import ensure_bucket
from crieur.nats_server import free_port
from crieur.process import die_with_parent
from schemas.commune import Commune
from schemas.events import EventKind
from schemas.notice import Category, Notice
from schemas.streams import COMMUNES
from services.email.format import build_notice, normalise_address
from services.email.links import Links
from services.email.subscribers import Follow, Registry, add_confirmed

COMMUNE = "70299"
SECRET = "bench-secret-key-bench-secret-key-bench-secret-key"
PUBLIC_URL = "https://crieur.example.fr"


async def seed(url: str, n: int) -> None:
    """N confirmed subscribers following the commune's alerts, and the commune itself."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    communes = await ensure_bucket(js, COMMUNES)
    await communes.put(COMMUNE, Commune(insee=COMMUNE, name="Lavoncourt",
                                        created_at=datetime.now(UTC)).model_dump_json().encode())
    registry = await Registry.open(js)
    links = Links(SECRET, PUBLIC_URL, 3600)
    follows = (Follow(commune=COMMUNE, categories=(Category.ALERTE,)),)
    for start in range(0, n, 500):
        batch = []
        for i in range(start, min(n, start + 500)):
            address = normalise_address(f"habitant{i}@example.org")
            batch.append(add_confirmed(registry, links.recipient_id(address), address, follows))
        await asyncio.gather(*batch)
    await nc.close()


def real_email(notice: Notice) -> bytes:
    """The bench notice's email exactly as the service builds it for one subscriber, so the
    raw aiosmtplib loop carries the same bytes per message as the pipeline."""
    links = Links(SECRET, PUBLIC_URL, 3600)
    address = normalise_address("habitant0@example.org")
    rid = links.recipient_id(address)
    draft = build_notice(EventKind.PUBLISHED, notice, "Lavoncourt",
                         from_address="avis@crieur.localhost", public_url=PUBLIC_URL,
                         now=datetime.now(UTC))
    return draft.personalise(rid, address, links.unsubscribe_url(rid), links.manage_url(rid))


def _start_service(env: dict[str, str], log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.email"], env=env,
                            stdout=log_file, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)


def count_mail(directory: Path) -> int:
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".eml"))


async def measure(url: str, smtp_host: str, smtp_port: int, mail: Path, n: int, pool: int,
                  work: Path, pids: dict[str, int],
                  notice: Notice) -> tuple[float | None, dict[str, Any]]:
    started = time.perf_counter()
    await seed(url, n)
    detail: dict[str, Any] = {"seed_s": time.perf_counter() - started}
    http_port = free_port()
    env = os.environ | {
        "CRIEUR_NATS_URL": url, "CRIEUR_SMTP_HOST": smtp_host, "CRIEUR_SMTP_PORT": str(smtp_port),
        "CRIEUR_SMTP_POOL": str(pool), "CRIEUR_SMTP_TLS": "none",
        "CRIEUR_EMAIL_SECRET_KEY": SECRET, "CRIEUR_PUBLIC_URL": PUBLIC_URL,
        "CRIEUR_DATA_DIR": str(work / "email"), "CRIEUR_EMAIL_HTTP_PORT": str(http_port),
        "CRIEUR_LOG_LEVEL": "WARNING", "CRIEUR_LOG_FORMAT": "json",
    }
    log_file = (work / "email-service.log").open("wb")
    proc = _start_service(env, log_file)
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    health = await client.get(f"http://127.0.0.1:{http_port}/healthz")
                    if health.status_code == 200 and health.json().get("subscribers") == n:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    detail["email_error"] = "the email service did not get ready"
                    return None, detail
                await asyncio.sleep(0.2)
        nc = await nats.connect(url)
        pids = pids | {"email_service": proc.pid}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        start = time.perf_counter()
        await publish(nc, notice)
        await nc.close()
        deadline = time.monotonic() + max(600.0, n / 10)
        while (got := count_mail(mail)) < n:
            if time.monotonic() > deadline or proc.poll() is not None:
                detail["email_error"] = f"only {got} of {n} messages arrived"
                return None, detail
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        detail["email_seconds"] = elapsed
        for name, pid in pids.items():
            detail[f"email_cpu_ms_per_msg_{name}"] = (cpu_seconds(pid) - before[name]) / n * 1000
        await asyncio.sleep(1.0)
        detail["email_messages_received"] = count_mail(mail)  # more than n: duplicates
        return n / elapsed, detail
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
