"""The SMS channel answers a staff preview over NATS with the SMS it would send and its cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client

from crieur.channel.port import Edition
from schemas import subjects
from schemas.notice import Category
from schemas.previews import PreviewRequest
from services.sms.handlers import draft_for
from services.sms.phones import recipient_id
from services.sms.service import SmsService
from services.sms.subscribers import Follow, Subscriber
from tests.integration.sms.helpers import StartSms, make_notice, number, random_insee, wait_for

pytestmark = pytest.mark.integration

KEY = "k" * 40


async def confirmed(service: SmsService, commune: str, count: int,
                    categories: tuple[Category, ...]) -> None:
    assert service.registry is not None
    registry = service.registry
    now = datetime.now(UTC)
    for i in range(count):
        phone = number(700 + i)
        await registry.put(recipient_id(KEY, phone), Subscriber(
            phone=phone, confirmed=True, confirmed_at=now, created_at=now,
            follows=(Follow(commune=commune, categories=categories),)))
    await wait_for(lambda: len(registry.matching(commune, str(categories[0]))) >= count,
                   what="the index")


async def preview(nc: Client, request: PreviewRequest) -> dict[str, Any]:
    msg = await nc.request(subjects.channel_preview("sms", request.commune),
                           request.model_dump_json().encode(), timeout=10)
    answer: dict[str, Any] = json.loads(msg.data)
    return answer


async def test_the_preview_is_the_sms_that_would_be_sent_and_what_it_costs(
        nc: Client, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    await confirmed(service, commune, 3, (Category.ALERTE,))
    notice = make_notice(commune, title="Tempête : restez à l’abri",
                         body="Vents ≥ 120 km/h : « prudence ». " * 20)
    request = PreviewRequest(commune=commune, commune_name="Lavoncourt", notice=notice)
    answer = await preview(nc, request)

    sent = draft_for(service.settings, Edition(request.kind, notice, "Lavoncourt")).sms
    assert answer["available"] is True
    assert answer["text"] == sent.text and answer["parts"] == sent.parts
    # ≥ is outside GSM-7 and has no transliteration: the whole SMS goes UCS-2 (the
    # guillemets and the apostrophe are transliterated, so they cost nothing).
    assert answer["encoding"] == "UCS-2" and answer["long_characters"] == ["≥"]
    assert answer["reach"] == 3 and answer["parts_to_pay"] == 3 * sent.parts
    assert answer["cut"] is True  # three parts at most by default: the text was cut


async def test_a_category_sms_does_not_carry_reaches_nobody(
        nc: Client, start_sms: StartSms) -> None:
    service = await start_sms()
    commune = random_insee()
    await confirmed(service, commune, 2, (Category.TRAVAUX, Category.ALERTE))
    notice = make_notice(commune, category=Category.TRAVAUX, title="Route fermée",
                         body="Du 2 au 4.")
    answer = await preview(nc, PreviewRequest(commune=commune, commune_name="Lavoncourt",
                                              notice=notice))
    assert answer["encoding"] == "GSM-7" and answer["parts"] == 1
    assert answer["category_carried"] is False
    assert answer["reach"] == 0 and answer["parts_to_pay"] == 0


async def test_an_unreadable_request_is_answered_not_left_to_time_out(
        nc: Client, start_sms: StartSms) -> None:
    await start_sms()
    msg = await nc.request(subjects.channel_preview("sms", "70299"), b'{"commune": 1}',
                           timeout=10)
    answer = json.loads(msg.data)
    assert answer["available"] is False and answer["reason"]
