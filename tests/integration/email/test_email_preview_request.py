"""The email channel answers a staff preview with the email it would build and its reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import subjects
from schemas.notice import Attachment, Category, Notice, NoticeState
from schemas.previews import PreviewRequest
from services.email.subscribers import Follow, add_confirmed
from tests.integration.email.helpers import PUBLIC_URL, wait_for

pytestmark = pytest.mark.integration


async def test_the_preview_is_the_email_with_its_attachments_and_reach(
        start_email: Callable[..., Any]) -> None:
    service = await start_email()
    commune = f"{datetime.now(UTC).microsecond % 90000 + 1000:05d}"
    follows = (Follow(commune=commune, categories=(Category.TRAVAUX,)),)
    for i in range(2):
        await add_confirmed(service.registry, f"rid{i}preview{commune}", f"r{i}@example.org",
                            follows)
    await add_confirmed(service.registry, f"ridother{commune}", "o@example.org",
                        (Follow(commune=commune, categories=(Category.ALERTE,)),))
    await wait_for(lambda: len(service.registry.matching(commune, "travaux")) == 2,
                   what="the index")
    now = datetime.now(UTC)
    notice = Notice(
        id="0123456789abcdef", commune=commune, category=Category.TRAVAUX,
        title="Route de Gray fermée", body="Du 2 au 4 décembre.\n\nDéviation par Vellexon.",
        author="Mairie", version=1, state=NoticeState.PUBLISHED, created_at=now,
        updated_at=now, published_at=now, ends_at=now + timedelta(days=3),
        attachments=(Attachment(name="Plan de déviation.pdf",
                                url=f"{PUBLIC_URL}/communes/{commune}/attachments/abcdef0123456789",  # type: ignore[arg-type]
                                media_type="application/pdf", size=1200,
                                id="abcdef0123456789"),))
    request = PreviewRequest(commune=commune, commune_name="Lavoncourt", notice=notice)
    assert service.nc is not None
    msg = await service.nc.request(subjects.channel_preview("email", commune),
                                   request.model_dump_json().encode(), timeout=10)
    answer = json.loads(msg.data)
    assert answer["available"] is True
    assert answer["subject"] == "Travaux : Route de Gray fermée"
    assert answer["reach"] == 2
    assert "Déviation par Vellexon." in answer["text"]
    assert f"{PUBLIC_URL}/communes/{commune}/notices/0123456789abcdef" in answer["text"]
    assert "Plan de déviation.pdf" in answer["text"] and "abcdef0123456789" in answer["html"]
    # The personal links are made per resident at send time; the preview names them.
    assert "[lien personnel]" in answer["text"] and "CRIEUR" not in answer["text"]
    assert "<h1" in answer["html"] and "CRIEUR" not in answer["html"]
