"""The sign's preview of a draft: its own renderer's strip, and the frames one pass takes."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

from PIL import Image

from schemas.notice import Category, Notice, NoticeState
from services.panel import render
from services.panel.preview import panel_preview
from services.panel.showing import slide_for


def notice(title: str, category: Category = Category.INFORMATION) -> Notice:
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    return Notice(id="abcdef0123456789", commune="70299", category=category, title=title,
                  body="Texte.", author="Mairie", version=1, state=NoticeState.PUBLISHED,
                  created_at=now, updated_at=now, published_at=now)


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def test_a_short_title_stays_still_in_one_frame() -> None:
    spec = render.PanelSpec(128, 32)
    preview = panel_preview(spec, notice("Marché"), scroll_speed=24, scale=2)
    assert preview.frames == 1 and preview.scroll_seconds == 0
    image = decoded(preview.image_png_base64)
    assert image.size == (256, 64)
    # Exactly the sign's own frame, each LED two pixels square.
    [frame] = render.frames(slide_for(notice("Marché")), spec)
    assert image == frame.resize((256, 64), Image.Resampling.NEAREST)


def test_a_long_title_scrolls_and_counts_the_frames_the_sign_shows() -> None:
    spec = render.PanelSpec(96, 16)
    long = notice("Fête de la Saint-Martin : défilé, vin chaud et feu d’artifice", Category.EVENEMENT)
    preview = panel_preview(spec, long, scroll_speed=24, scale=1)
    shown = sum(1 for _ in render.frames(slide_for(long), spec, step=1))
    assert preview.frames == shown > 1
    assert preview.scroll_seconds == round(shown / 24, 1)
    assert decoded(preview.image_png_base64).height == 16
