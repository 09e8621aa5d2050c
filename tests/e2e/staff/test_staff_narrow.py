"""The compose and preview pages fit a 375 px phone: no sideways scrolling, no date input
wider than the form (Chromium, the pages rendered as the front door renders them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import NoticeDraft
from schemas.commune import Commune
from services.notices.pages import TEMPLATES
from services.notices.staff_pages import FIELD_LABELS, STAFF_DEFAULTS, form_values
from tests.e2e.helpers import chromium_browser
from tests.e2e.staff.helpers import axe_problems, keep

NOW = datetime.now(UTC)
COMMUNE = Commune(insee="70299", name="Lavoncourt", created_at=NOW - timedelta(days=1))
PHONE = {"viewport": {"width": 375, "height": 800}, "locale": "fr-FR"}


def compose_html() -> str:
    return TEMPLATES.get_template("staff/compose.html").render(STAFF_DEFAULTS | {
        "csrf": "x", "commune": COMMUNE, "v": form_values(None), "problems": {}, "error": "",
        "field_labels": FIELD_LABELS, "files": [], "attachment_limit": 20_000_000,
        "copied": None, "left_out": []})


def preview_html() -> str:
    draft = NoticeDraft.model_validate({"category": "alerte", "title": "Tempête",
                                        "body": "Restez chez vous."})
    return TEMPLATES.get_template("staff/preview.html").render(STAFF_DEFAULTS | {
        "now": NOW, "csrf": "x", "commune": COMMUNE, "v": form_values(None), "draft": draft,
        "files": [], "category_label": "Alerte", "approval": False, "previews": {
            "push": {"available": True, "title": "Lavoncourt · Alerte", "body": "Tempête",
                     "reach": {"devices": 3, "topics": ["crieur-70299-alerte"]}},
            "sms": {"available": True, "text": "Lavoncourt - Alerte : Tempête",
                    "encoding": "GSM-7", "parts": 1, "reach": 2, "parts_to_pay": 2},
            "email": {"available": True, "subject": "Alerte : Tempête", "html": "<p>x</p>",
                      "text": "x", "reach": 2}}})


def test_compose_and_preview_fit_a_phone(chromium: str, tmp_path: Path) -> None:
    with chromium_browser(chromium) as browser:
        page = browser.new_page(**PHONE)
        for name, body in (("compose", compose_html()), ("preview", preview_html())):
            page.set_content(body)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{name} is {width} px wide"
            # Each field inside its form's box, not only inside the screen.
            overflowing = page.evaluate(
                "[...document.querySelectorAll('input, select, textarea, section')]"
                ".filter(e => e.getBoundingClientRect().right > 375 || (e.form &&"
                " e.getBoundingClientRect().right > e.form.getBoundingClientRect().right))"
                ".map(e => e.id || e.tagName)")
            assert overflowing == [], f"{name}: {overflowing}"
            assert axe_problems(page) == [], name
            shot = tmp_path / f"staff-{name}-375.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)
