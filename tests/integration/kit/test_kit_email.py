"""The kit's faults again, on the real email channel: the email service, the real SMTP server.

nats-server killed and restarted mid-fan-out: every subscriber gets the notice; a graceful
stop mid-fan-out and a restart: every subscriber gets it exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crieur.nats_server import NatsServer
from crieur_dev.standins.smtp import SmtpStandin
from services.email.links import Links
from services.email.service import EmailService
from services.email.settings import EmailSettings
from services.email.subscribers import Follow, Registry, add_confirmed
from tests.integration.kit.conftest import (
    FAST,
    Mairie,
    connect,
    make_notice,
    random_insee,
    wait_for,
)

SECRET = "kit-test-secret-" + "k" * 32


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[SmtpStandin]:
    server = SmtpStandin(tmp_path / "mail").start()
    yield server
    server.stop()


def delivered_to(mailbox: SmtpStandin) -> Counter[str]:
    """Recipients as the SMTP server wrote them down (its Delivered-To line), with counts."""
    found: Counter[str] = Counter()
    for path in mailbox.messages():
        with path.open("rb") as f:
            for line in (f.readline(), f.readline()):
                if line.startswith(b"Delivered-To: "):
                    found[line[14:].strip().decode()] += 1
    return found


async def seed(url: str, commune: str, n: int) -> set[str]:
    nc = await connect(url)
    registry = await Registry.open(nc.jetstream())
    links = Links(SECRET, "https://crieur.example", 3600)
    follows = (Follow.model_validate({"commune": commune, "categories": ["alerte"]}),)
    addresses = [f"habitant{i:04d}@example.org" for i in range(n)]
    await asyncio.gather(*(add_confirmed(registry, links.recipient_id(a), a, follows)
                           for a in addresses))
    await nc.close()
    return set(addresses)


def settings(url: str, mailbox: SmtpStandin, tmp_path: Path) -> EmailSettings:
    return EmailSettings(nats_url=url, smtp_host=mailbox.host, smtp_port=mailbox.port,
                         smtp_pool=4, smtp_rate_per_s=150, email_secret_key=SECRET,
                         public_url="https://crieur.example", data_dir=tmp_path, **FAST)


async def test_nats_server_restarted_mid_fan_out_every_email_arrives(
        tmp_path: Path, mailbox: SmtpStandin) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    service: EmailService | None = None
    try:
        commune = random_insee()
        everyone = await seed(server.url, commune, 400)
        service = EmailService(settings(server.url, mailbox, tmp_path),
                               name=f"email-{uuid.uuid4().hex[:6]}")
        await asyncio.wait_for(service.start(), 30)
        nc = await connect(server.url)
        await Mairie(nc).publish(make_notice(commune))
        await wait_for(lambda: len(mailbox.messages()) >= 60, what="60 emails")
        server.kill()
        await asyncio.sleep(2.0)
        server.start()
        await wait_for(lambda: set(delivered_to(mailbox)) == everyone, within_s=120,
                       what="every subscriber's email after the restart")
        await nc.close()
    finally:
        if service is not None:
            await service.stop()
        server.stop()
    counts = delivered_to(mailbox)
    # At most the sends whose record died with the server (the pool's 4 in flight, twice).
    assert sum(c - 1 for c in counts.values()) <= 8, counts.most_common(5)


async def test_a_graceful_stop_mid_fan_out_then_a_restart_sends_each_email_once(
        nats_url: str, tmp_path: Path, mailbox: SmtpStandin) -> None:
    commune = random_insee()
    everyone = await seed(nats_url, commune, 300)
    name = f"email-{uuid.uuid4().hex[:6]}"
    first = EmailService(settings(nats_url, mailbox, tmp_path), name=name)
    await asyncio.wait_for(first.start(), 30)
    nc = await connect(nats_url)
    await Mairie(nc).publish(make_notice(commune))
    await wait_for(lambda: len(mailbox.messages()) >= 50, what="50 emails")
    await first.stop()  # what SIGTERM does: the sends in flight finish, the rest go back
    stopped_at = len(mailbox.messages())
    assert stopped_at < 300, "stopped too late to prove anything"

    second = EmailService(settings(nats_url, mailbox, tmp_path), name=name)
    await asyncio.wait_for(second.start(), 30)
    try:
        await wait_for(lambda: set(delivered_to(mailbox)) == everyone, within_s=90,
                       what="every subscriber's email after the restart")
        await asyncio.sleep(1.0)
    finally:
        await second.stop()
        await nc.close()
    assert set(delivered_to(mailbox).values()) == {1}  # nobody twice
