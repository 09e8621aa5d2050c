"""The push channel answers a staff preview with the notification and the phones on its topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from schemas import subjects
from schemas.notice import Category, Notice, NoticeState
from schemas.previews import PreviewRequest
from tests.helpers import eventually
from tests.integration.push.helpers import StartPush, http, phone_token

pytestmark = pytest.mark.integration


def notice(commune: str, category: Category) -> Notice:
    now = datetime.now(UTC)
    return Notice(id="abcdef0123456789", commune=commune, category=category,
                  title="Coupure d’eau rue Haute", body="De 9 h à 12 h.", author="Mairie",
                  version=1, state=NoticeState.PUBLISHED, created_at=now, updated_at=now,
                  published_at=now, ends_at=now + timedelta(hours=2))


async def test_the_preview_is_the_notification_and_counts_the_phones_on_its_topic(
        nc: Client, start_push: StartPush, commune: str) -> None:
    service = await start_push()
    for name, categories in (("a", ["alerte"]), ("b", ["alerte", "travaux"]),
                             ("c", ["travaux"])):
        created = await http(nc, "POST", "/api/v1/devices", {
            "token": phone_token(name),
            "follows": [{"commune": commune, "categories": categories}]})
        assert created.status == 201

    async def ask(category: Category) -> dict[str, object]:
        request = PreviewRequest(commune=commune, commune_name="Lavoncourt",
                                 notice=notice(commune, category))
        msg = await nc.request(subjects.channel_preview("push", commune),
                               request.model_dump_json().encode(), timeout=10)
        answer: dict[str, object] = json.loads(msg.data)
        return answer

    async def two_on_alerts() -> bool:
        return (await ask(Category.ALERTE))["reach"] == {
            "devices": 2, "topics": [f"crieur-{commune}-alerte"]}

    await eventually(two_on_alerts, "the phones counted from the devices bucket")
    alert = await ask(Category.ALERTE)
    assert alert["title"] == "Lavoncourt · Alerte"
    assert alert["body"] == "Coupure d’eau rue Haute"
    assert alert["high_priority"] is True
    assert 0 < int(str(alert["ttl_s"])) <= 2 * 3600
    info = await ask(Category.INFORMATION)
    assert info["high_priority"] is False
    assert info["reach"] == {"devices": 0, "topics": [f"crieur-{commune}-information"]}
    assert service.phones is not None
