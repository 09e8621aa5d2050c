"""The launcher's watch over its services: a dead one is started again, later each time."""

from __future__ import annotations

from typing import Any

import pytest

from crieur import village
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
