"""The launcher's watch over its services: a dead one is started again, later each time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crieur import village
from crieur.nats_server import NatsServer
from crieur.village import Running, Service


class FakeProcess:
    count = 0

    def __init__(self) -> None:
        FakeProcess.count += 1
        self.pid = 1000 + FakeProcess.count
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code


def test_a_service_that_keeps_dying_is_restarted_with_a_growing_then_reset_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[FakeProcess] = []

    def start(service: Service, env: dict[str, str]) -> Any:
        started.append(FakeProcess())
        return started[-1]

    monkeypatch.setattr(village, "start", start)
    sign = Service("panel", "services.panel", "CRIEUR_PANEL_HTTP_PORT", 8081)
    first = FakeProcess()
    running = Running(sign, first, started=0.0)  # type: ignore[arg-type]
    delays = []
    now = 0.0
    for _ in range(7):
        running.process.code = -9  # type: ignore[attr-defined]
        running.check({}, now)
        assert running.restart_at is not None
        delays.append(running.restart_at - now)
        running.check({}, running.restart_at - 0.01)
        assert len(started) == len(delays) - 1, "not before its backoff"
        now = running.restart_at
        running.check({}, now)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert running.restarts == 7 and running.process is started[-1]
    # Once it has stayed up long enough, the next death starts from 1 s again.
    running.process.code = 1  # type: ignore[attr-defined]
    running.check({}, now + village.STABLE_AFTER_S + 1)
    assert running.restart_at == now + village.STABLE_AFTER_S + 1 + 1.0


def test_the_launchers_nats_server_is_restarted_like_any_service(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    nats = Service("nats-server", "", "CRIEUR_NATS_PORT", server.port, health_path="",
                   spawn=server.spawn)
    try:
        with capture_logs() as logs:
            running = Running(nats, village.start(nats, {}), started=0.0)
            server.wait_ready()
            first = running.process.pid
            server.kill()
            running.check({}, 1.0)  # seen dead: restart in 1 s, as any service
            running.check({}, 1.5)
            assert running.process.pid == first, "not before its backoff"
            running.check({}, 2.0)
        assert running.process.pid != first and running.process is server.process
        assert server.wait_ready().endswith(f":{server.port}"), "back on the same port"
        lines = [(e["event"], e["service"]) for e in logs]
        assert lines == [("service_started", "nats-server"), ("service_died", "nats-server"),
                         ("service_started", "nats-server"),
                         ("service_restarted", "nats-server")]
        assert logs[1]["restart_in_s"] == 1.0 and logs[1]["exit_code"] == -9
    finally:
        server.stop()
