"""A sign on a real nats-server: events published straight on NOTICES, reports read back."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from crieur.bus import ensure_streams
from schemas import Category, Notice, NoticePublished, NoticeState, NoticeWithdrawn, subjects
from services.panel.app import Panel
from services.panel.settings import PanelSettings
from tests.conftest import read_subject


def random_insee() -> str:
    return f"{random.randint(1000, 95999):05d}"


def make_notice(commune: str, nid: str, category: Category = Category.INFORMATION,
                **fields: Any) -> Notice:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "id": nid, "commune": commune, "category": category, "title": f"Avis {nid}",
        "body": "Texte.", "author": "Secrétariat", "version": 1,
        "state": NoticeState.PUBLISHED, "created_at": now - timedelta(minutes=1),
        "updated_at": now, "published_at": now,
    }
    return Notice.model_validate(data | fields)


@dataclass
class Mairie:
    """Publishes on NOTICES the way the front door does, and reads DELIVERIES."""

    nc: Client
    commune: str

    async def publish(self, notice: Notice) -> None:
        event = NoticePublished(occurred_at=notice.updated_at, notice=notice)
        await self.nc.jetstream().publish(subjects.notice(self.commune, notice.id),
                                          event.model_dump_json().encode(), stream="NOTICES")

    async def withdraw(self, notice: Notice) -> None:
        gone = notice.model_copy(update={"state": NoticeState.WITHDRAWN})
        event = NoticeWithdrawn(occurred_at=datetime.now(UTC), notice=gone)
        await self.nc.jetstream().publish(subjects.notice(self.commune, notice.id),
                                          event.model_dump_json().encode(), stream="NOTICES")

    async def reports(self) -> list[dict[str, Any]]:
        subject = subjects.delivery("panel", self.commune)
        messages = await read_subject(self.nc.jetstream(), subject, wait_s=0.5)
        return [json.loads(msg.data) for msg in messages]


def panel_settings(nats_url: str, commune: str, data_dir: Path) -> PanelSettings:
    return PanelSettings(
        nats_url=nats_url, data_dir=data_dir, panel_commune=commune, panel_blank_hours="",
        panel_slide_seconds=0.2, panel_scroll_speed=400, panel_png_interval_s=0.1,
        panel_report_interval_s=1.0,
    )


async def eventually(check: Callable[[], Any], what: str, within: float = 60.0) -> None:
    """Poll `check` until truthy; generous bound, never a speed assertion."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover - timeout raises first


def on_sign(panel: Panel) -> list[str]:
    return [n["id"] for n in panel.current()["notices"]]


@pytest.fixture
async def mairie(nats_url: str) -> AsyncIterator[Mairie]:
    nc = await nats.connect(nats_url, name="test-mairie")
    await ensure_streams(nc.jetstream())
    yield Mairie(nc, random_insee())
    await nc.drain()
