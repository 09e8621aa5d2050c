"""A sign set to a commune nobody registered says so at start-up."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crieur.bus import ensure_all
from schemas import Commune
from services.panel.app import Panel
from tests.integration.panel.helpers import Mairie, eventually, panel_settings

pytestmark = pytest.mark.integration


async def started_and_stopped(nats_url: str, commune: str,
                              tmp_path: Path) -> tuple[Panel, list[MutableMapping[str, Any]]]:
    """A sign started until it has checked its commune, then stopped; what it logged."""
    panel = Panel(panel_settings(nats_url, commune, tmp_path))
    with capture_logs() as logs:
        await panel.start()
        try:
            await eventually(lambda: panel.commune_registered is not None, "commune checked")
        finally:
            await panel.stop()
    return panel, logs


async def test_an_unregistered_commune_is_said_at_start_up(
    nats_url: str, mairie: Mairie, tmp_path: Path
) -> None:
    panel, logs = await started_and_stopped(nats_url, mairie.commune, tmp_path)
    assert panel.commune_registered is False
    said = [e for e in logs if e["event"] == "panel_commune_unregistered"]
    assert said and said[0]["commune"] == mairie.commune
    assert said[0]["log_level"] == "warning"


async def test_a_registered_commune_gives_the_sign_its_name(
    nats_url: str, mairie: Mairie, tmp_path: Path
) -> None:
    buckets = await ensure_all(mairie.nc.jetstream())
    commune = Commune(insee=mairie.commune, name="Fouvent-le-Haut", created_at=datetime.now(UTC))
    await buckets["communes"].put(mairie.commune, commune.model_dump_json().encode())
    panel, logs = await started_and_stopped(nats_url, mairie.commune, tmp_path)
    assert panel.commune_registered is True
    assert panel.commune_name == "Fouvent-le-Haut"
    assert not [e for e in logs if e["event"] == "panel_commune_unregistered"]
