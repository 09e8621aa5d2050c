"""The email service in-process on the session's nats-server, the real SMTP stand-in, the front door."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crieur_dev.standins.smtp import SmtpStandin
from services.email.service import EmailService
from tests.integration.email.helpers import email_settings
from tests.integration.notices.conftest import front_door

__all__ = ["front_door", "mailbox", "start_email"]


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[SmtpStandin]:
    server = SmtpStandin(tmp_path / "mail").start()
    yield server
    server.stop()


@pytest.fixture
async def start_email(nats_url: str, mailbox: SmtpStandin,
                      tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Starts an EmailService (its kit under a name of its own); stops it at the end."""
    services: list[EmailService] = []
    name = f"email-{uuid.uuid4().hex[:8]}"

    async def start(clock: Callable[[], datetime] | None = None, **changes: Any) -> EmailService:
        settings = email_settings(nats_url, mailbox, tmp_path, **changes)
        service = (EmailService(settings, name=name) if clock is None
                   else EmailService(settings, name=name, clock=clock))
        await asyncio.wait_for(service.start(), 30)
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()
