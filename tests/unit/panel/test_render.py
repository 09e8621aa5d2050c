"""Pixel-level tests of slide rendering and of the PNG frame driver."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from services.panel.driver import PanelDriver, PngFrameDriver
from services.panel.font import FONT
from services.panel.render import PanelSpec, Slide, frames, render_blank, render_strip

AMBER = (0xFF, 0xB0, 0x00)
BLACK = (0, 0, 0)
SPEC = PanelSpec()  # 128x32, one colour
SHORT = Slide("n-1", "TRAVAUX", "Route barrée")
LONG = Slide(
    "n-2",
    "Information",
    "Fête du village à Lavoncourt samedi 14 juin : repas, bal et feu d'artifice",
)


def lit(image: Image.Image, x: int, y: int) -> bool:
    """Whether the pixel is on (anything but black)."""
    return image.getpixel((x, y)) != BLACK


def column(image: Image.Image, x: int, rows: range) -> tuple[bool, ...]:
    """The on/off pattern of one pixel column over `rows`."""
    return tuple(lit(image, x, y) for y in rows)


def lit_columns(image: Image.Image, rows: range) -> list[int]:
    """Indexes of columns with at least one lit pixel in `rows`."""
    return [x for x in range(image.width) if any(column(image, x, rows))]


def heading_rows(spec: PanelSpec) -> range:
    """The heading occupies the top half of a two-line sign."""
    return range(0, spec.height // 2)


def text_rows(spec: PanelSpec) -> range:
    """The text line occupies the bottom half of a two-line sign."""
    return range(spec.height // 2, spec.height)


def colours(image: Image.Image) -> set[tuple[int, int, int]]:
    """Distinct colours used in an image."""
    return {rgb for _, rgb in image.getcolors(maxcolors=1 << 16) or []}


# ---- PanelSpec ----------------------------------------------------------------


def test_panel_spec_defaults_and_parsing() -> None:
    assert SPEC.size == (128, 32)
    assert SPEC.color == "#ffb000" and not SPEC.rgb
    assert PanelSpec.from_string("192x64") == PanelSpec(192, 64)
    assert PanelSpec.from_string(" 96 X 16 ", rgb=True) == PanelSpec(96, 16, rgb=True)
    with pytest.raises(ValueError):
        PanelSpec.from_string("128 by 32")
    with pytest.raises(ValueError):
        PanelSpec(128, 8)  # shorter than one line of text
    with pytest.raises(ValueError):
        PanelSpec(color="not-a-colour")


# ---- sizes -------------------------------------------------------------------


@pytest.mark.parametrize("size", ["128x32", "192x64", "96x16", "160x48", "64x32"])
@pytest.mark.parametrize("slide", [SHORT, LONG, Slide("n-3", "ALERTE", "Crue", alert=True)])
def test_every_frame_has_the_spec_size(size: str, slide: Slide) -> None:
    spec = PanelSpec.from_string(size)
    out = list(frames(slide, spec, step=8))
    assert out
    for frame in out:
        assert frame.mode == "RGB"
        assert frame.size == spec.size
    strip = render_strip(slide, spec)
    assert strip.mode == "RGB"
    assert strip.height == spec.height
    assert strip.width >= spec.width


def test_blank_is_black_at_spec_size() -> None:
    blank = render_blank(PanelSpec(192, 64))
    assert blank.size == (192, 64) and blank.mode == "RGB"
    assert colours(blank) == {BLACK}


def test_one_colour_sign_uses_only_led_colour_and_black() -> None:
    for slide in (SHORT, LONG, Slide("a", "ALERTE", "Crue", alert=True)):
        assert colours(render_strip(slide, SPEC)) == {AMBER, BLACK}
    green = PanelSpec(color="#00ff00")
    assert colours(render_strip(SHORT, green)) == {(0, 255, 0), BLACK}


# ---- widths -------------------------------------------------------------------


def test_known_string_renders_to_its_font_width() -> None:
    slide = Slide("n", "X", "Fête")
    frame = next(frames(slide, SPEC))
    cols = lit_columns(frame, text_rows(SPEC))
    assert FONT.text_width("Fête") == 22
    assert cols[-1] - cols[0] + 1 == 22
    # Centred on the sign.
    assert cols[0] == (128 - 22) // 2


def test_taller_sign_doubles_the_font() -> None:
    spec = PanelSpec(192, 64)
    frame = next(frames(Slide("n", "X", "Fête"), spec))
    rows = text_rows(spec)
    cols = lit_columns(frame, rows)
    assert cols[-1] - cols[0] + 1 == 44
    lit_rows = [y for y in rows if any(lit(frame, x, y) for x in range(spec.width))]
    # From the lowercase circumflex (cell row 2) down to the baseline, doubled.
    assert lit_rows[-1] - lit_rows[0] + 1 == 2 * (FONT.baseline - 2 + 1)
    # Pixel doubling: every lit pixel belongs to a lit 2x2 block.
    x0, y0 = cols[0], lit_rows[0]
    for y in range(y0, lit_rows[-1] + 1, 2):
        for x in range(x0, cols[-1] + 1, 2):
            block = {lit(frame, x + dx, y + dy) for dx in (0, 1) for dy in (0, 1)}
            assert len(block) == 1


def test_strip_is_as_wide_as_the_long_text() -> None:
    strip = render_strip(LONG, SPEC)
    assert strip.width == FONT.text_width(LONG.text) > SPEC.width
    assert render_strip(SHORT, SPEC).width == SPEC.width


# ---- scrolling ----------------------------------------------------------------


def test_short_title_gives_one_frame() -> None:
    assert FONT.text_width(SHORT.text) <= SPEC.width
    out = list(frames(SHORT, SPEC))
    assert len(out) == 1
    assert out[0].tobytes() == render_strip(SHORT, SPEC).tobytes()


def test_long_title_scrolls_from_entering_to_leaving() -> None:
    width = FONT.text_width(LONG.text)
    out = list(frames(LONG, SPEC))
    assert len(out) == SPEC.width + width - 1
    rows = text_rows(SPEC)
    # The text enters on the right edge and leaves on the left edge.
    assert lit_columns(out[0], rows) == [SPEC.width - 1]
    assert lit_columns(out[-1], rows) == [0]


def test_text_moves_left_one_step_per_frame() -> None:
    rows = text_rows(SPEC)
    out = list(frames(LONG, SPEC, step=3))
    assert len(out) > 10
    for before, after in zip(out[5:10], out[6:11], strict=True):
        assert before.tobytes() != after.tobytes()
        for x in range(SPEC.width - 3):
            assert column(after, x, rows) == column(before, x + 3, rows)


def test_scroll_frames_are_windows_of_the_strip() -> None:
    strip = render_strip(LONG, SPEC)
    rows = text_rows(SPEC)
    out = list(frames(LONG, SPEC))
    frame = out[SPEC.width - 1 + 40]  # text start has moved 40 columns past the left edge
    for x in range(SPEC.width):
        assert column(frame, x, rows) == column(strip, x + 40, rows)


def test_heading_stays_fixed_while_text_scrolls() -> None:
    rows = heading_rows(SPEC)
    out = list(frames(LONG, SPEC, step=5))
    first = out[0].crop((0, 0, SPEC.width, len(rows))).tobytes()
    assert any(b for b in first)  # there is a heading to keep still
    for frame in out[1:]:
        assert frame.crop((0, 0, SPEC.width, len(rows))).tobytes() == first


def test_overlong_heading_is_cut_to_the_sign() -> None:
    slide = Slide("n", "Information importante de la mairie", "Bal")
    frame = next(frames(slide, SPEC))
    cols = lit_columns(frame, range(0, SPEC.height // 2 - 2))  # above the rule
    assert cols[0] > 0 and cols[-1] < SPEC.width - 1


def test_blank_text_still_shows_heading() -> None:
    out = list(frames(Slide("n", "Information", "  \n "), SPEC))
    assert len(out) == 1
    assert lit_columns(out[0], heading_rows(SPEC))
    assert not lit_columns(out[0], text_rows(SPEC))


def test_step_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(frames(SHORT, SPEC, step=0))


# ---- alerts -------------------------------------------------------------------


def test_alert_and_normal_slides_differ() -> None:
    normal = Slide("n", "ALERTE", "Crue de la Saône", alert=False)
    alert = Slide("n", "ALERTE", "Crue de la Saône", alert=True)
    normal_frame = next(frames(normal, SPEC))
    alert_frame = next(frames(alert, SPEC))
    assert normal_frame.tobytes() != alert_frame.tobytes()
    # Alert: the heading zone is a lit bar with the heading knocked out.
    rows = heading_rows(SPEC)
    lit_normal = sum(lit(normal_frame, x, y) for x in range(SPEC.width) for y in rows)
    lit_alert = sum(lit(alert_frame, x, y) for x in range(SPEC.width) for y in rows)
    assert lit_alert > SPEC.width * len(rows) // 2 > lit_normal
    assert all(lit(alert_frame, x, 0) for x in range(SPEC.width))
    # Same text line either way.
    trows = range(SPEC.height // 2 + 1, SPEC.height)
    for x in range(SPEC.width):
        assert column(normal_frame, x, trows) == column(alert_frame, x, trows)


def test_rgb_alert_is_red_and_normal_is_not() -> None:
    spec = PanelSpec(rgb=True)
    alert = next(frames(Slide("n", "ALERTE", "Crue", alert=True), spec))
    normal = next(frames(Slide("n", "Information", "Crue"), spec))
    assert alert.getpixel((0, 0)) == (255, 0, 0)
    assert (255, 0, 0) not in colours(normal)
    assert len(colours(normal)) >= 3  # heading, rule and text in their own colours


def test_single_line_sign_shows_heading_and_text() -> None:
    spec = PanelSpec(96, 16)
    strip = render_strip(Slide("n", "Travaux", "Rue fermée"), spec)
    head_and_text = FONT.text_width("Travaux\u202f:") + FONT.text_width("Rue fermée")
    assert strip.width > head_and_text
    alert = render_strip(Slide("n", "ALERTE", "Rue fermée", alert=True), spec)
    normal = render_strip(Slide("n", "ALERTE", "Rue fermée"), spec)
    assert alert.tobytes() != normal.tobytes()


# ---- full coverage on a real French title -------------------------------------


def test_french_title_draws_every_character() -> None:
    text = "Fête du village à Lavoncourt : « bal » ! 12 €"
    assert all(FONT.covers(ch) for ch in unicodedata.normalize("NFC", text))
    spec = PanelSpec(256, 32)  # wide enough to show it in one frame
    out = list(frames(Slide("n", "Information", text), spec))
    assert len(out) == 1
    frame = out[0]
    rows = text_rows(spec)
    cols = lit_columns(frame, rows)
    assert cols[-1] - cols[0] + 1 == FONT.text_width(text)
    cell_rows = [y for y in rows if any(lit(frame, x, y) for x in range(spec.width))]
    cell_top = cell_rows[-1] - (FONT.height - 1)  # the g of "village" reaches the cell bottom
    columns = [column(frame, x, range(cell_top, cell_top + FONT.height)) for x in range(spec.width)]
    # A missing-glyph box would light a whole cell-high column; none may.
    assert not any(all(col) for col in columns)
    # Nor may the fallback '?' appear anywhere in the line.
    question = FONT.glyph("?")
    pattern = [
        tuple(question.lit(x, y) for y in range(FONT.height)) for x in range(question.width)
    ]
    for x in range(len(columns) - len(pattern) + 1):
        assert columns[x : x + len(pattern)] != pattern


# ---- PNG driver -----------------------------------------------------------------


async def test_png_driver_writes_current_frame(tmp_path: Path) -> None:
    driver: PanelDriver = PngFrameDriver(tmp_path / "out")
    frame = next(frames(SHORT, SPEC))
    await driver.show(frame, SHORT)
    current = tmp_path / "out" / "current.png"
    with Image.open(current) as png:
        assert png.format == "PNG"
        assert png.size == SPEC.size
        assert png.convert("RGB").tobytes() == frame.tobytes()
    await driver.show(render_blank(SPEC), None)
    with Image.open(current) as png:
        assert colours(png.convert("RGB")) == {BLACK}
    # Only the final file remains: no temp files left behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["current.png"]


async def test_png_driver_keeps_a_bounded_numbered_history(tmp_path: Path) -> None:
    driver = PngFrameDriver(tmp_path, keep_frames=3, scale=2)
    for frame in list(frames(LONG, SPEC, step=16))[:5]:
        await driver.show(frame, LONG)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["current.png", "frame-000003.png", "frame-000004.png", "frame-000005.png"]
    with Image.open(tmp_path / "frame-000005.png") as png:
        assert png.size == (256, 64)
