"""A sign on a real nats-server: the mairie fixture publishes straight on NOTICES."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from crieur.bus import ensure_streams
from tests.integration.panel.helpers import (
    Mairie,
    eventually,
    make_notice,
    on_sign,
    panel_settings,
    random_insee,
)

# Re-exported for tests that import them from this conftest.
__all__ = ["Mairie", "eventually", "make_notice", "on_sign", "panel_settings", "random_insee"]


@pytest.fixture
async def mairie(nats_url: str) -> AsyncIterator[Mairie]:
    nc = await nats.connect(nats_url, name="test-mairie")
    await ensure_streams(nc.jetstream())
    yield Mairie(nc, random_insee())
    await nc.drain()
