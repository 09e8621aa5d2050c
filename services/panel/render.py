"""Pure rendering of notices for the LED street sign: slides in, RGB images out.

Layout on a two-line sign (128x32 and up): the top half holds the category
heading, fixed and centred; the bottom half holds the notice text, centred
when it fits, otherwise scrolling right to left. Taller signs reuse the same
layout with the font doubled/tripled pixel by pixel (192x64 -> 2x).

Signs too short for two lines (the common 96x16 or 128x16 made of P10 modules)
get a single scrolling line "HEADING : text".

Alerts look different at pixel level: the heading sits knocked out of a full
width bar (red on RGB signs) instead of being drawn as plain text over a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageColor

from services.panel.font import FONT, BitmapFont

Rgb = tuple[int, int, int]

_BLACK: Final[Rgb] = (0, 0, 0)
# Role colours on full-colour signs; the plain text keeps spec.color so the
# configured colour still means something in RGB mode.
_RGB_HEADING: Final[Rgb] = (0, 200, 255)
_RGB_RULE: Final[Rgb] = (0, 90, 140)
_RGB_ALERT_BAR: Final[Rgb] = (255, 0, 0)
_RGB_ALERT_TEXT: Final[Rgb] = (255, 255, 255)

# Collapse newlines and runs of ordinary whitespace, but keep the French
# no-break spaces: they carry their own (narrow) width.
_WHITESPACE: Final = re.compile(r"[^\S\u00a0\u202f]+")
_ELLIPSIS: Final = "…"


@dataclass(frozen=True)
class PanelSpec:
    """Geometry and colour of a physical sign."""

    width: int = 128
    height: int = 32
    color: str = "#ffb000"  # the LED colour of one-colour signs
    rgb: bool = False

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"panel width must be positive, got {self.width}")
        if self.height < FONT.height:
            raise ValueError(f"panel height must be at least {FONT.height} rows, got {self.height}")
        ImageColor.getrgb(self.color)  # fail early on a bad colour, not at first frame

    @classmethod
    def from_string(cls, size: str, *, color: str = "#ffb000", rgb: bool = False) -> PanelSpec:
        """Parse a size such as '128x32' (also '192X64', '96 x 16')."""
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", size)
        if match is None:
            raise ValueError(f"panel size must look like 128x32, got {size!r}")
        return cls(width=int(match[1]), height=int(match[2]), color=color, rgb=rgb)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in LEDs."""
        return (self.width, self.height)

    @property
    def led_rgb(self) -> Rgb:
        """spec.color as an RGB triple."""
        r, g, b = ImageColor.getrgb(self.color)[:3]
        return (r, g, b)


@dataclass(frozen=True)
class Slide:
    """One notice as the sign shows it."""

    notice_id: str
    heading: str  # short French category label, e.g. "ALERTE", "Travaux"
    text: str  # the title, possibly followed by more
    alert: bool = False


@dataclass(frozen=True)
class _Layout:
    """Where lines go on a given sign, in LED pixels."""

    scale: int
    two_lines: bool
    heading_top: int  # top row of the heading's font cell
    bar_height: int  # rows of the heading zone (alert bar / above the rule)
    rule_row: int  # first row of the separator under a normal heading
    text_top: int  # top row of the text line's font cell


@dataclass(frozen=True)
class _Palette:
    """Colours of each role of a slide."""

    heading: Rgb
    text: Rgb
    bar: Rgb
    rule: Rgb


def _layout(spec: PanelSpec, font: BitmapFont = FONT) -> _Layout:
    """Choose scale and line positions for a sign."""
    cell = font.height
    caps_below_cell_top = font.cap_top
    # Two lines need two font cells plus a little air; 4 rows per scale step
    # keeps 128x32 at 1x and 192x64 at 2x.
    scale = spec.height // (2 * cell + 4)
    if scale >= 1:
        zone = spec.height // 2
        bar = zone - scale
        cap_top = (bar - font.cap_height * scale) // 2
        heading_top = max(0, cap_top - caps_below_cell_top * scale)
        text_cap_top = zone + (spec.height - zone - font.cap_height * scale) // 2
        text_top = min(text_cap_top - caps_below_cell_top * scale, spec.height - cell * scale)
        return _Layout(scale, True, heading_top, bar, bar, text_top)
    scale = max(1, spec.height // (cell + 2))
    cap_top = (spec.height - font.cap_height * scale) // 2
    text_top = min(max(0, cap_top - caps_below_cell_top * scale), spec.height - cell * scale)
    return _Layout(scale, False, 0, 0, 0, text_top)


def _palette(spec: PanelSpec, alert: bool) -> _Palette:
    """Per-role colours: everything in spec.color unless the sign is RGB."""
    led = spec.led_rgb
    if not spec.rgb:
        return _Palette(heading=led, text=led, bar=led, rule=led)
    if alert:
        return _Palette(
            heading=_RGB_ALERT_BAR, text=_RGB_ALERT_TEXT, bar=_RGB_ALERT_BAR, rule=_RGB_RULE
        )
    return _Palette(heading=_RGB_HEADING, text=led, bar=_RGB_HEADING, rule=_RGB_RULE)


def _clean(text: str) -> str:
    """One line of text: newlines and whitespace runs become single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def _mask(text: str, scale: int, font: BitmapFont = FONT) -> Image.Image | None:
    """A mode 'L' mask of `text` (255 = lit), scaled, or None when empty."""
    width = font.text_width(text)
    if width == 0:
        return None
    data = bytearray(width * font.height)
    x0 = 0
    for glyph in font.glyphs(text):
        for y, bits in enumerate(glyph.rows):
            if not bits:
                continue
            for x in range(glyph.width):
                if (bits >> (glyph.width - 1 - x)) & 1:
                    data[y * width + x0 + x] = 255
        x0 += glyph.width + font.spacing
    mask = Image.frombytes("L", (width, font.height), bytes(data))
    if scale != 1:
        # Integer pixel doubling: a taller sign shows bigger LEDs-per-pixel,
        # never interpolated grey.
        mask = mask.resize((width * scale, font.height * scale), Image.Resampling.NEAREST)
    return mask


def _fit(text: str, max_width: int, scale: int, font: BitmapFont = FONT) -> str:
    """`text` cut with an ellipsis so it is at most `max_width` LEDs wide."""
    if font.text_width(text) * scale <= max_width:
        return text
    for end in range(len(text) - 1, 0, -1):
        candidate = text[:end].rstrip() + _ELLIPSIS
        if font.text_width(candidate) * scale <= max_width:
            return candidate
    return ""


def _colored(mask: Image.Image, color: Rgb) -> Image.Image:
    """Lit pixels of `mask` in `color` on black."""
    image = Image.new("RGB", mask.size, _BLACK)
    image.paste(color, (0, 0, *mask.size), mask)
    return image


def _text_line(slide: Slide, spec: PanelSpec, layout: _Layout) -> Image.Image | None:
    """The (possibly long) line that scrolls, as an RGB image one cell tall."""
    palette = _palette(spec, slide.alert)
    scale = layout.scale
    text = _clean(slide.text)
    if layout.two_lines:
        mask = _mask(text, scale)
        return None if mask is None else _colored(mask, palette.text)
    # Single-line sign: the heading leads the text on the same line.
    heading = _clean(slide.heading)
    parts: list[Image.Image] = []
    if heading:
        if slide.alert:
            head_mask = _mask(heading, scale)
            assert head_mask is not None
            pad = 2 * scale
            block = Image.new("RGB", (head_mask.width + 2 * pad, head_mask.height), palette.bar)
            block.paste(_BLACK, (pad, 0, pad + head_mask.width, head_mask.height), head_mask)
            parts.append(block)
        else:
            head_mask = _mask(heading + "\u202f:", scale)
            assert head_mask is not None
            parts.append(_colored(head_mask, palette.heading))
    text_mask = _mask(text, scale)
    if text_mask is not None:
        parts.append(_colored(text_mask, palette.text))
    if not parts:
        return None
    gap = FONT.glyph(" ").width * scale + 2 * FONT.spacing * scale
    width = sum(p.width for p in parts) + gap * (len(parts) - 1)
    line = Image.new("RGB", (width, FONT.height * scale), _BLACK)
    x = 0
    for part in parts:
        line.paste(part, (x, 0))
        x += part.width + gap
    return line


def _fixed_layer(slide: Slide, spec: PanelSpec, layout: _Layout, width: int) -> Image.Image:
    """Everything that does not scroll: heading, alert bar or rule."""
    image = Image.new("RGB", (width, spec.height), _BLACK)
    if not layout.two_lines:
        return image
    palette = _palette(spec, slide.alert)
    scale = layout.scale
    margin = 2 * scale
    heading = _fit(_clean(slide.heading), spec.width - 2 * margin, scale)
    mask = _mask(heading, scale)
    box = (0, 0, 0, 0)
    if mask is not None:
        x = (spec.width - mask.width) // 2
        box = (x, layout.heading_top, x + mask.width, layout.heading_top + mask.height)
    if slide.alert:
        image.paste(palette.bar, (0, 0, width, layout.bar_height))
        if mask is not None:
            image.paste(_BLACK, box, mask)  # knocked out of the bar
        return image
    if mask is not None:
        image.paste(palette.heading, box, mask)
    # A dotted rule: separates heading from text without the weight of a bar.
    for rx in range(0, width, 2 * scale):
        image.paste(palette.rule, (rx, layout.rule_row, rx + scale, layout.rule_row + scale))
    return image


def render_blank(spec: PanelSpec) -> Image.Image:
    """An all-dark frame."""
    return Image.new("RGB", spec.size, _BLACK)


def render_strip(slide: Slide, spec: PanelSpec) -> Image.Image:
    """The whole slide on one image: spec.height tall, as wide as the text needs."""
    layout = _layout(spec)
    line = _text_line(slide, spec, layout)
    width = spec.width if line is None else max(spec.width, line.width)
    image = _fixed_layer(slide, spec, layout, width)
    if line is not None:
        x = (spec.width - line.width) // 2 if line.width <= spec.width else 0
        image.paste(line, (x, layout.text_top))
    return image


def frames(slide: Slide, spec: PanelSpec, step: int = 1) -> Iterator[Image.Image]:
    """Frames of spec.size: one if the text fits, else the text scrolling through."""
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    layout = _layout(spec)
    base = _fixed_layer(slide, spec, layout, spec.width)
    line = _text_line(slide, spec, layout)
    if line is None or line.width <= spec.width:
        frame = base.copy()
        if line is not None:
            frame.paste(line, ((spec.width - line.width) // 2, layout.text_top))
        yield frame
        return
    # From the first column entering on the right to the last one leaving on
    # the left; paste() clips whatever falls outside the frame.
    x = spec.width - step
    while x > -line.width:
        frame = base.copy()
        frame.paste(line, (x, layout.text_top))
        yield frame
        x -= step
