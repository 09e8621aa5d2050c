"""What the sign's integration tests share: a mairie publishing on NOTICES, settings, notices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from schemas import Category, Notice, NoticePublished, NoticeState, NoticeWithdrawn, subjects
from services.panel.app import Panel
from services.panel.settings import PanelSettings
from tests.helpers import eventually, read_subject
from tests.integration.helpers import random_insee as random_insee


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


def on_sign(panel: Panel) -> list[str]:
    return [n["id"] for n in panel.current()["notices"]]



__all__ = ["Mairie", "eventually", "make_notice", "on_sign", "panel_settings", "random_insee"]
