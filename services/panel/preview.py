"""The staff preview of a draft on the LED sign: drawn by the sign's own renderer."""

from __future__ import annotations

import base64
import io

from PIL import Image

from schemas.notice import Notice
from schemas.previews import PanelPreview
from services.panel import render
from services.panel.showing import slide_for

# Each LED drawn this many pixels square, so the preview reads without scaling in the page.
PREVIEW_SCALE = 4


def panel_preview(spec: render.PanelSpec, notice: Notice, scroll_speed: float,
                  scale: int = PREVIEW_SCALE) -> PanelPreview:
    """The whole slide as one PNG, and how many frames (and seconds) one pass takes."""
    strip = render.render_strip(slide_for(notice), spec)
    # The strip is wider than the sign only when the text scrolls (render.frames, step 1):
    # it enters on the right and leaves on the left.
    frames = 1 if strip.width <= spec.width else spec.width - 1 + strip.width
    image = strip.resize((strip.width * scale, strip.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return PanelPreview(
        image_png_base64=base64.b64encode(out.getvalue()).decode("ascii"), frames=frames,
        width=spec.width, height=spec.height, scale=scale,
        scroll_seconds=0.0 if frames == 1 else round(frames / scroll_speed, 1))
