"""The sign on a real nats-server: live events, restart, outage, and reports on DELIVERIES."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from crieur.bus import ensure_streams
from crieur.nats_server import NatsServer, free_port
from schemas import Category
from services.panel.app import Panel
from tests.integration.panel.helpers import (
    Mairie,
    eventually,
    make_notice,
    on_sign,
    panel_settings,
)

pytestmark = pytest.mark.integration


async def test_the_sign_follows_the_stream_and_reports_what_it_showed(
    nats_url: str, mairie: Mairie, tmp_path: Path
) -> None:
    panel = Panel(panel_settings(nats_url, mairie.commune, tmp_path))
    await panel.start()
    try:
        await eventually(panel.feed.synced.is_set, "empty commune counts as synced")
        road = make_notice(mairie.commune, "route0001", Category.TRAVAUX)
        storm = make_notice(mairie.commune, "orage0001", Category.ALERTE)
        await mairie.publish(road)
        await mairie.publish(storm)
        await eventually(lambda: on_sign(panel) == ["orage0001", "route0001"],
                         "both notices on the sign, alert first")
        await mairie.withdraw(road)
        await eventually(lambda: on_sign(panel) == ["orage0001"], "withdrawn notice gone")

        async def road_reported() -> bool:
            return any(r["notice_id"] == "route0001" and r["detail"] == "left the sign"
                       for r in await mairie.reports())

        await eventually(road_reported, "a report when the road notice left the sign")
        reports = await mairie.reports()
        road_reports = [r for r in reports if r["notice_id"] == "route0001"]
        assert all(r["outcome"] == "shown" and r["channel"] == "panel" for r in reports)
        assert sum(r["duration_s"] for r in road_reports) > 0
        assert (tmp_path / "panel" / "current.png").exists(), "the PNG driver writes frames"
    finally:
        await panel.stop()


async def test_a_restarted_sign_rebuilds_exactly_what_is_current(
    nats_url: str, mairie: Mairie, tmp_path: Path
) -> None:
    a, b, c = (make_notice(mairie.commune, f"avis{i}0000") for i in "abc")
    first = Panel(panel_settings(nats_url, mairie.commune, tmp_path))
    await first.start()
    try:
        await mairie.publish(a)
        await eventually(lambda: on_sign(first) == [a.id], "A on the sign")
    finally:
        await first.stop()
    # While the sign is off: B and C go out, A is withdrawn.
    await mairie.publish(b)
    await mairie.publish(c)
    await mairie.withdraw(a)
    await mairie.withdraw(c)
    second = Panel(panel_settings(nats_url, mairie.commune, tmp_path))
    await second.start()
    try:
        assert on_sign(second) == [a.id], "before the replay, the saved playlist"
        await eventually(second.feed.synced.is_set, "replay complete")
        assert on_sign(second) == [b.id]
    finally:
        await second.stop()


async def test_the_sign_keeps_its_playlist_through_an_outage_and_catches_up(
    tmp_path: Path,
) -> None:
    # A server of its own, on a fixed port and store, so it can be stopped and restarted.
    server = NatsServer(tmp_path / "nats", port=free_port())
    url = server.start()
    commune = "70299"
    nc = await nats.connect(url, name="test-mairie", max_reconnect_attempts=-1,
                            reconnect_time_wait=0.5)
    await ensure_streams(nc.jetstream())
    mairie = Mairie(nc, commune)
    panel = Panel(panel_settings(url, commune, tmp_path))
    await panel.start()
    try:
        before = make_notice(commune, "avant0000", ends_at=None)
        brief = make_notice(commune, "bref00000")
        await mairie.publish(before)
        await mairie.publish(brief)
        await eventually(lambda: set(on_sign(panel)) == {before.id, brief.id}, "both shown")

        server.stop()
        await eventually(lambda: not panel.connected, "the sign sees the network go")
        assert set(on_sign(panel)) == {before.id, brief.id}, "cut off, it keeps its playlist"
        assert panel.current()["connected"] is False

        server.start()
        await eventually(lambda: nc.is_connected, "the mairie is back")
        after = make_notice(commune, "apres0000", Category.ALERTE)
        await mairie.publish(after)
        await mairie.withdraw(brief)
        await eventually(lambda: on_sign(panel) == [after.id, before.id],
                         "the sign catches up once the server is back", within=90)
        await eventually(lambda: panel.connected, "and says it is connected")
    finally:
        await panel.stop()
        await nc.drain()
        server.stop()


async def test_a_sign_started_without_network_shows_its_saved_playlist(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    url = server.start()
    nc = await nats.connect(url)
    await ensure_streams(nc.jetstream())
    mairie = Mairie(nc, "70299")
    kept = make_notice("70299", "garde0000")
    panel = Panel(panel_settings(url, "70299", tmp_path))
    await panel.start()
    try:
        await mairie.publish(kept)
        await eventually(lambda: on_sign(panel) == [kept.id], "shown")
    finally:
        await panel.stop()
        await nc.drain()
        server.stop()
    offline = Panel(panel_settings(url, "70299", tmp_path))
    await offline.start()
    try:
        assert on_sign(offline) == [kept.id]
        assert not offline.connected
    finally:
        await offline.stop()
