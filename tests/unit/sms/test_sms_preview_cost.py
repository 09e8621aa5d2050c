"""The SMS preview's cost: reach × parts, nothing for a category SMS does not carry, off is said."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.notice import Category, Notice, NoticeState
from schemas.previews import ChannelUnavailable, PreviewRequest, SmsPreview
from services.sms.preview import sms_preview
from services.sms.settings import SmsSettings


class Followers:
    """The registry's index, as the preview reads it."""

    def __init__(self, **by_category: int) -> None:
        self.by_category = by_category

    def matching(self, commune: str, category: str) -> list[str]:
        return [f"{commune}-{i}" for i in range(self.by_category.get(category, 0))]


def request(category: Category, body: str) -> PreviewRequest:
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    notice = Notice(id="abcdef0123456789", commune="70299", category=category,
                    title="Coupure d’eau", body=body, author="Mairie", version=1,
                    state=NoticeState.PUBLISHED, created_at=now, updated_at=now,
                    published_at=now)
    return PreviewRequest(commune="70299", commune_name="Lavoncourt", notice=notice)


def settings(**changes: Any) -> SmsSettings:
    return SmsSettings(sms_secret_key="k" * 40, public_url="https://crieur.example", **changes)


def test_an_alert_costs_its_parts_for_every_follower() -> None:
    registry: Any = Followers(alerte=7, travaux=100)
    preview = sms_preview(settings(), registry, request(Category.ALERTE, "Rue Haute. " * 60))
    assert isinstance(preview, SmsPreview)
    assert preview.parts == 3 and preview.cut  # three parts at most, the rest on the web
    assert preview.reach == 7 and preview.parts_to_pay == 21
    assert preview.encoding == "GSM-7" and preview.long_characters == []
    assert preview.text.startswith("Lavoncourt - Alerte : Coupure d'eau\nRue Haute.")


def test_a_category_not_sent_by_sms_reaches_nobody_and_costs_nothing() -> None:
    registry: Any = Followers(alerte=7, travaux=100)
    preview = sms_preview(settings(), registry, request(Category.TRAVAUX, "Du 2 au 4."))
    assert isinstance(preview, SmsPreview)
    assert not preview.category_carried and preview.reach == preview.parts_to_pay == 0
    carried = sms_preview(settings(sms_categories=["alerte", "travaux"]), registry,
                          request(Category.TRAVAUX, "Du 2 au 4."))
    assert isinstance(carried, SmsPreview) and carried.parts_to_pay == 100


def test_a_channel_without_provider_says_so() -> None:
    preview = sms_preview(settings(), Followers(), request(Category.ALERTE, "x"),  # type: ignore[arg-type]
                          on=False)
    assert isinstance(preview, ChannelUnavailable) and "SMS" in preview.reason
