"""The email service as an operator sees it: waits for NATS, refuses a bad configuration."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from crieur.bus import ensure_streams
from crieur.nats_server import NatsServer, free_port
from crieur.standins.smtp import SmtpStandin
from schemas.streams import NOTICES
from services.email.app import EmailService
from tests.helpers import repo_root
from tests.integration.email.helpers import email_settings

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
