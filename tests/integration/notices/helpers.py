"""What the front door's integration tests share: a hand-moved clock, the FrontDoor handle."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from services.notices.store import NatsStore
from tests.integration.helpers import random_insee as random_insee


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FrontDoor:
    http: httpx.AsyncClient
    store: NatsStore
    clock: Clock
    insee: str
    token: str
    app: FastAPI

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def notices_url(self, insee: str | None = None) -> str:
        return f"/api/v1/communes/{insee or self.insee}/notices"


def logged(written: io.StringIO, event: str) -> list[dict[str, object]]:
    """The JSON log lines named `event` in what the `json_logs` fixture captured."""
    lines = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]
