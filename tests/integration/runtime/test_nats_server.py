"""The embedded nats-server: one Go scheduler thread unless the operator says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from crieur.nats_server import NatsServer, server_env


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in raw if b"=" in entry)


def test_the_embedded_server_runs_on_one_scheduler_thread(nats_server: NatsServer) -> None:
    assert nats_server.process is not None
    assert _environ(nats_server.process.pid).get("GOMAXPROCS") == "1"


def test_an_operators_gomaxprocs_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMAXPROCS", "4")
    assert server_env()["GOMAXPROCS"] == "4"
    monkeypatch.delenv("GOMAXPROCS")
    assert server_env()["GOMAXPROCS"] == "1"
