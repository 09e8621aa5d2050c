"""A front door on the session's nats-server, a fresh commune and a staff token per test."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from tests.integration.notices.helpers import Clock, FrontDoor, open_front_door, random_insee

# Re-exported for tests that import them from this conftest.
__all__ = ["Clock", "FrontDoor", "front_door", "json_logs", "random_insee"]


@pytest.fixture
async def front_door(nats_url: str) -> AsyncIterator[FrontDoor]:
    async with open_front_door(nats_url, max_body_bytes=1_000_000) as door:
        yield door


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logs as in production (JSON, to stderr, here a buffer), then back to the tests' own."""
    from crieur import log

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    log.configure("INFO", "json")
    yield written
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level
