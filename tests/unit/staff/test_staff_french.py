"""The staff pages' French: counts agree with their number, decimals take a comma."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import NoticeDraft
from schemas.commune import Commune
from services.notices.pages import TEMPLATES
from services.notices.staff_pages import STAFF_DEFAULTS, form_values

NOW = datetime.now(UTC)


def preview_page(channels: dict[str, Any]) -> str:
    draft = NoticeDraft.model_validate({"category": "alerte", "title": "Tempête",
                                        "body": "Restez chez vous."})
    commune = Commune(insee="70299", name="Lavoncourt", created_at=NOW - timedelta(days=1))
    page = TEMPLATES.get_template("staff/preview.html").render(STAFF_DEFAULTS | {
        "now": NOW, "csrf": "x", "commune": commune, "v": form_values(None), "draft": draft,
        "previews": channels, "files": [], "category_label": "Alerte", "approval": False})
    text = re.sub(r"</?strong>", "", html.unescape(page))
    return " ".join(text.replace("\u00a0", " ").split())


def test_one_of_each_is_said_in_the_singular() -> None:
    page = preview_page({
        "push": {"available": True, "title": "t", "body": "b",
                 "reach": {"devices": 1, "topics": ["crieur-70299-alerte"]}},
        "sms": {"available": True, "text": "x", "encoding": "GSM-7", "parts": 1,
                "reach": 1, "parts_to_pay": 1},
        "panel": {"available": True, "image_png_base64": "", "frames": 40,
                  "scroll_seconds": 18.2},
        "email": {"available": True, "subject": "s", "html": "", "text": "", "reach": 1}})
    assert "Portée : 1 téléphone · type d'avis suivi : Alerte" in page
    assert "Portée : 1 abonné · 1 SMS à payer" in page
    assert "Le texte défile en 18,2 s (40 images)." in page
    assert "Portée : 1 abonné" in page
    assert "(s)" not in page and "abonnés" not in page and "18.2" not in page


def test_several_are_said_in_the_plural() -> None:
    page = preview_page({
        "push": {"available": True, "title": "t", "body": "b",
                 "reach": {"devices": 3, "topics": ["a", "b"]}},
        "sms": {"available": True, "text": "x", "encoding": "GSM-7", "parts": 2,
                "reach": 2, "parts_to_pay": 4}})
    assert "Portée : 3 téléphones · types d'avis suivis : a, b" in page
    assert "Portée : 2 abonnés · 4 SMS à payer" in page
