"""A nats-server that goes away and comes back: one line when it goes, one when it is back,
however many reconnect attempts and timed-out requests fall in between."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from nats import errors
from structlog.testing import capture_logs

from crieur import bus
from crieur.nats_server import NatsServer
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> bus.Outage:
    # The process's one tracker, as a service has it, cleared of any earlier test's outage.
    monkeypatch.setattr(bus.OUTAGE, "since", None)
    return bus.OUTAGE


def events(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [e["event"] for e in logs if str(e["event"]).startswith("nats_")]


async def test_a_server_restart_is_two_lines_not_one_per_attempt(
        tmp_path: Path, outage: bus.Outage) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    nc = await bus.connect(server.url, name="outage-test")
    try:
        js = nc.jetstream()
        await js.add_stream(name="OUTAGE", subjects=["outage.>"])
        # An ordered consumer, as the services follow streams: missed heartbeats while the
        # server is away make nats-py recreate it, and each try times out.
        await js.subscribe("outage.>", ordered_consumer=True,
                           idle_heartbeat=bus.IDLE_HEARTBEAT_S, cb=_ignore)
        with capture_logs() as logs:
            server.kill()
            await eventually(lambda: not nc.is_connected, "the loss noticed")
            # Several reconnect attempts (one a second) and heartbeats missed meanwhile.
            await asyncio.sleep(4)
            server.start()
            await eventually(lambda: nc.is_connected, "reconnected", within=30)
            await js.publish("outage.after", b"back")
        assert events(logs) == ["nats_disconnected", "nats_reconnected"], logs
        gone, back = (e for e in logs if str(e["event"]).startswith("nats_"))
        assert gone["log_level"] == "warning" and "UnexpectedEOF" in gone["error"]
        assert back["errors_while_away"] >= 3, "the failed attempts were counted, not logged"
        assert back["outage_s"] >= 4
    finally:
        await nc.close()
        server.stop()


async def test_a_service_started_before_its_server_says_so_once(
        tmp_path: Path, outage: bus.Outage) -> None:
    server = NatsServer(tmp_path / "nats")  # its port chosen, nothing listening yet
    with capture_logs() as logs:
        connecting = asyncio.create_task(bus.connect(server.url, name="outage-test"))
        await asyncio.sleep(3.5)
        assert not connecting.done()
        server.start()
        nc = await asyncio.wait_for(connecting, 30)
    try:
        assert events(logs) == ["nats_disconnected", "nats_connected"], logs
        assert logs[-1]["errors_while_away"] >= 2
        # The outage is over: the next one is said again.
        with capture_logs() as later:
            server.kill()
            await eventually(lambda: not nc.is_connected, "the loss noticed")
        assert events(later) == ["nats_disconnected"]
    finally:
        await nc.close()
        server.stop()


async def test_an_error_that_is_no_outage_is_still_said(outage: bus.Outage) -> None:
    with capture_logs() as logs:
        await outage.on_error(errors.Error("nats: permissions violation"))
        await outage.on_error(TimeoutError())  # one slow request: no outage begins
    assert events(logs) == ["nats_error", "nats_error"]
    assert outage.since is None


async def _ignore(_: Any) -> None:
    return None
