"""The email service as an operator sees it: waits for NATS, refuses a bad configuration,
says on /readyz when it cannot deliver."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import pytest

from crieur.bus import ensure_streams
from crieur.channel.errors import Transient
from crieur.channel.service import create_app
from crieur.nats_server import NatsServer, free_port
from crieur_dev.standins.smtp import SmtpStandin
from schemas.streams import NOTICES
from services.email.service import EmailService
from tests.helpers import repo_root
from tests.integration.email.helpers import email_settings, wait_for

pytestmark = pytest.mark.integration


async def test_started_before_nats_it_waits_then_runs(mailbox: SmtpStandin,
                                                      tmp_path: Path) -> None:
    port = free_port()
    service = EmailService(email_settings(f"nats://127.0.0.1:{port}", mailbox, tmp_path))
    starting = asyncio.create_task(service.start())
    await asyncio.sleep(1.5)
    assert not service.healthy and not starting.done()
    server = NatsServer(tmp_path / "nats", port=port)
    server.start()
    # NOTICES is the front door's to create: here it comes up with the server.
    nc = await nats.connect(server.url)
    await ensure_streams(nc.jetstream(), (NOTICES,))
    await nc.close()
    try:
        await asyncio.wait_for(starting, 30)
        assert service.healthy
    finally:
        await service.stop()
        server.stop()


def test_an_impossible_configuration_is_refused_at_start_up() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    for bad in ({"CRIEUR_SMTP_TLS": "ssl"}, {"CRIEUR_SMTP_USERNAME": "crieur"},
                {"CRIEUR_SMTP_FROM": "avis@crieur.fr\r\nBcc: x@y.fr"},
                {"CRIEUR_EMAIL_SECRET_KEY": "short"}):
        done = subprocess.run([sys.executable, "-m", "services.email"], env=env | bad,
                              cwd=repo_root(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, bad
        assert "configuration refused" in done.stderr and "Traceback" not in done.stderr, bad


async def test_readyz_is_503_while_the_relay_cannot_be_reached_and_says_why(
        nats_url: str, tmp_path: Path) -> None:
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), (NOTICES,))  # the front door's, as above
    await nc.close()
    relay = SmtpStandin(tmp_path / "mail").start()
    settings = email_settings(nats_url, relay, tmp_path, smtp_timeout_s=2.0)
    service = EmailService(settings, name=f"email-ready-{free_port()}")
    await asyncio.wait_for(service.start(), 30)
    app = create_app(service)  # its lifespan is not run: the service is ours
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://email")

    async def ready() -> httpx.Response:
        return await http.get("/readyz")

    try:
        assert (await ready()).json() == {"status": "ready"}
        relay.stop()
        with pytest.raises(Transient):
            await service.send_confirmation("jean@example.org", "https://x/confirm", ["70299"])
        answer = await ready()
        assert answer.status_code == 503
        (reason,) = [r for r in answer.json()["reasons"] if r.startswith("smtp")]
        assert "cannot deliver" in reason and "jean@" not in reason
        relay = SmtpStandin(tmp_path / "mail", port=relay.port).start()
        # The check probes the relay: no email needed for it to clear.
        await wait_for(lambda: not service.pool.not_ready(), 20, "the relay probed")
        answer = await ready()
        assert (answer.status_code, answer.json()) == (200, {"status": "ready"})
    finally:
        await http.aclose()
        await service.stop()
        relay.stop()
