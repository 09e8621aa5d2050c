"""Pixel-level tests of the LED sign's bitmap font."""

from __future__ import annotations

import unicodedata

import pytest

from services.panel.font import FONT, Glyph

FRENCH_UPPER = "ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸÆŒ"
FRENCH_LOWER = "àâäçéèêëîïôöùûüÿæœ"
TYPOGRAPHY = "«»’‘“”…€°–—·"
NO_BREAK_SPACES = "\u00a0\u202f"
ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
ALL_LISTED = ASCII + FRENCH_UPPER + FRENCH_LOWER + TYPOGRAPHY + NO_BREAK_SPACES

# Each accented letter and the plain letter it must differ from.
PLAIN_OF = {
    **{ch: unicodedata.normalize("NFD", ch)[0] for ch in FRENCH_UPPER + FRENCH_LOWER},
    "Æ": "A",
    "Œ": "O",
    "æ": "a",
    "œ": "o",
}


def lit_rows(glyph: Glyph) -> set[int]:
    """Row indexes where the glyph has at least one lit pixel."""
    return {y for y, bits in enumerate(glyph.rows) if bits}


def test_font_geometry() -> None:
    assert FONT.height == 12
    assert FONT.cap_top == 3
    assert FONT.baseline == 9
    assert FONT.cap_height == 7


@pytest.mark.parametrize("ch", list(ALL_LISTED))
def test_every_listed_character_is_covered(ch: str) -> None:
    assert FONT.covers(ch), f"{ch!r} (U+{ord(ch):04X}) has no glyph"
    assert FONT.resolve(ch) == ch


@pytest.mark.parametrize("ch", list(ALL_LISTED))
def test_glyph_shape_is_consistent(ch: str) -> None:
    glyph = FONT.glyph(ch)
    assert len(glyph.rows) == FONT.height
    assert glyph.width >= 1
    assert all(0 <= bits < (1 << glyph.width) for bits in glyph.rows)


@pytest.mark.parametrize("ch", [c for c in ALL_LISTED if c != "?"])
def test_no_listed_character_draws_the_fallback(ch: str) -> None:
    assert FONT.glyph(ch) != FONT.glyph("?")


@pytest.mark.parametrize("ch", list(FRENCH_UPPER + FRENCH_LOWER))
def test_accented_letter_differs_from_plain_letter(ch: str) -> None:
    plain = PLAIN_OF[ch]
    assert plain != ch
    assert FONT.glyph(ch) != FONT.glyph(plain), f"{ch} looks like {plain}"


@pytest.mark.parametrize("ch", [c for c in FRENCH_UPPER if c not in "ÆŒÇ"])
def test_capital_accent_sits_above_a_gap(ch: str) -> None:
    glyph = FONT.glyph(ch)
    rows = lit_rows(glyph)
    assert rows & {0, 1}, "accent expected in rows 0-1"
    assert 2 not in rows, "row 2 must stay empty so the accent does not touch"
    # The letter under the accent is the plain capital, pixel for pixel.
    plain = FONT.glyph(PLAIN_OF[ch])
    offset = (glyph.width - plain.width) // 2
    for y in range(FONT.cap_top, FONT.height):
        for x in range(plain.width):
            assert glyph.lit(x + offset, y) == plain.lit(x, y)


@pytest.mark.parametrize("ch", [c for c in FRENCH_LOWER if c not in "æœç"])
def test_lowercase_accent_sits_above_x_height(ch: str) -> None:
    rows = lit_rows(FONT.glyph(ch))
    assert rows & {2, 3}
    assert 4 not in rows
    assert not rows & {0, 1}


@pytest.mark.parametrize("ch", ["Ç", "ç", "g", "j", "p", "q", "y", "ÿ"])
def test_descenders_go_below_the_baseline(ch: str) -> None:
    assert lit_rows(FONT.glyph(ch)) & {FONT.baseline + 1, FONT.baseline + 2}


def test_capitals_sit_on_the_baseline() -> None:
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        rows = lit_rows(FONT.glyph(ch))
        assert min(rows) == FONT.cap_top and max(rows) == FONT.baseline, ch


@pytest.mark.parametrize("ch", [" ", *NO_BREAK_SPACES])
def test_spaces_are_blank(ch: str) -> None:
    glyph = FONT.glyph(ch)
    assert glyph.width >= 1
    assert not any(glyph.rows)


def test_exact_bitmap_of_e_acute() -> None:
    assert FONT.glyph("É").pattern() == (
        "...#.",
        "..#..",
        ".....",
        "#####",
        "#....",
        "#....",
        "####.",
        "#....",
        "#....",
        "#####",
        ".....",
        ".....",
    )


def test_text_width_of_known_strings() -> None:
    # F(5) ê(5) t(4) e(5) plus three 1-pixel gaps.
    assert FONT.text_width("Fête") == 22
    assert FONT.text_width("") == 0
    assert FONT.text_width("i") == 1
    assert FONT.text_width("AI") == 5 + 1 + 3
    assert FONT.text_width("a b") == 5 + 1 + 3 + 1 + 5


def test_uncovered_letters_fall_back_to_their_base_letter() -> None:
    assert not FONT.covers("ñ")
    assert FONT.glyph("ñ") == FONT.glyph("n")
    assert FONT.glyph("Å") == FONT.glyph("A")
    assert FONT.glyph("ő") == FONT.glyph("o")


def test_unknown_symbols_fall_back_to_question_mark() -> None:
    assert FONT.glyph("☃") == FONT.glyph("?")
    assert FONT.glyph("中") == FONT.glyph("?")


def test_text_level_clean_up() -> None:
    # Decomposed input is recomposed, compatibility forms expand, invisible
    # format characters vanish, other spaces draw as a space.
    assert FONT.glyphs("e\u0301") == [FONT.glyph("é")]
    assert FONT.glyphs("ﬁ") == [FONT.glyph("f"), FONT.glyph("i")]
    assert FONT.glyphs("a\u00adb") == [FONT.glyph("a"), FONT.glyph("b")]
    assert FONT.glyphs("\u2009") == [FONT.glyph(" ")]
    assert FONT.glyphs("\u2011") == [FONT.glyph("-")]
