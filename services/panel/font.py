"""Hand-made proportional bitmap font for the LED street sign.

A real LED sign shows every pixel as one diode, so anti-aliased TTF rendering
looks smeared; a bitmap font drawn pixel by pixel stays crisp.

Cell layout (12 rows, top to bottom):

    rows 0-1   accent marks of capitals (É, Ê, Ü ...)
    row  2     gap, so an accent never touches its capital
    rows 3-9   cap height (7 rows); lowercase x-height is rows 5-9,
               lowercase accents use rows 2-3 with row 4 as gap
    rows 10-11 descenders (g, p, q, y, j, cedilla)

Twelve rows rather than ten because accents need two rows to be told apart
(acute vs grave vs circumflex) plus a gap row above the capital.

A `Glyph` stores its bitmap as `rows`: one int per cell row, bit
`width - 1 - x` set when pixel (x, row) is lit (the most significant bit is
the leftmost column).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

CELL_HEIGHT: Final = 12
CAP_TOP: Final = 3  # first row of a capital
BASELINE: Final = 9  # last row of a capital (letters sit on it)
_BODY_ROWS: Final = 9  # rows drawn in the tables below: cap height + descenders
_UPPER_ACCENT_ROW: Final = 0
_LOWER_ACCENT_ROW: Final = 2
_CEDILLA_ROW: Final = BASELINE + 1


@dataclass(frozen=True)
class Glyph:
    """A glyph bitmap: `rows` has one int per cell row, MSB = leftmost pixel."""

    width: int
    rows: tuple[int, ...]

    def lit(self, x: int, y: int) -> bool:
        """Whether pixel (x, y) of the glyph is on."""
        return bool((self.rows[y] >> (self.width - 1 - x)) & 1)

    def pattern(self) -> tuple[str, ...]:
        """The bitmap as '#'/'.' strings, handy in tests and debugging."""
        return tuple(
            "".join("#" if self.lit(x, y) else "." for x in range(self.width))
            for y in range(len(self.rows))
        )


# Glyph drawings. Row 0 of each drawing is the top of the cap height (cell
# row 3). Drawings have 7 rows (nothing below the baseline) or 9 rows (with
# the two descender rows). Lowercase letters keep their first two rows empty
# (x-height is 5 rows) unless they have an ascender.
_DRAWINGS: Final[dict[str, tuple[str, ...]]] = {
    # ---- space and punctuation -------------------------------------------
    " ": ("...",) * 7,
    "!": ("#", "#", "#", "#", "#", ".", "#"),
    '"': ("#.#", "#.#", "...", "...", "...", "...", "..."),
    "#": (".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."),
    "$": ("..#..", ".####", "#.#..", ".###.", "..#.#", "####.", "..#.."),
    "%": ("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
    "&": (".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#"),
    "'": ("#", "#", ".", ".", ".", ".", "."),
    "(": ("..#", ".#.", "#..", "#..", "#..", ".#.", "..#"),
    ")": ("#..", ".#.", "..#", "..#", "..#", ".#.", "#.."),
    "*": (".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    ",": ("..", "..", "..", "..", "..", "..", ".#", "#.", ".."),
    "-": ("....", "....", "....", "####", "....", "....", "...."),
    ".": (".", ".", ".", ".", ".", ".", "#"),
    "/": ("....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."),
    ":": (".", ".", "#", ".", ".", ".", "#"),
    ";": ("..", "..", ".#", "..", "..", "..", ".#", "#.", ".."),
    "<": ("...", "..#", ".#.", "#..", ".#.", "..#", "..."),
    "=": (".....", ".....", "#####", ".....", "#####", ".....", "....."),
    ">": ("...", "#..", ".#.", "..#", ".#.", "#..", "..."),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
    "@": (".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".###."),
    "[": ("###", "#..", "#..", "#..", "#..", "#..", "###"),
    "\\": ("#....", "#....", ".#...", "..#..", "...#.", "....#", "....#"),
    "]": ("###", "..#", "..#", "..#", "..#", "..#", "###"),
    "^": ("..#..", ".#.#.", "#...#", ".....", ".....", ".....", "....."),
    "_": (".....",) * 7 + ("#####", "....."),
    "`": ("#.", ".#", "..", "..", "..", "..", ".."),
    "{": ("..#", ".#.", ".#.", "#..", ".#.", ".#.", "..#"),
    "|": ("#",) * 9,
    "}": ("#..", ".#.", ".#.", "..#", ".#.", ".#.", "#.."),
    "~": (".....", ".....", ".#...", "#.#.#", "...#.", ".....", "....."),
    # ---- digits ------------------------------------------------------------
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": (".#.", "##.", ".#.", ".#.", ".#.", ".#.", "###"),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    # ---- capitals ----------------------------------------------------------
    "A": (
        ".###.",
        "#...#",
        "#...#",
        "#####",
        "#...#",
        "#...#",
        "#...#",
    ),
    "B": (
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#...#",
        "#...#",
        "####.",
    ),
    "C": (
        ".###.",
        "#...#",
        "#....",
        "#....",
        "#....",
        "#...#",
        ".###.",
    ),
    "D": (
        "####.",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "####.",
    ),
    "E": (
        "#####",
        "#....",
        "#....",
        "####.",
        "#....",
        "#....",
        "#####",
    ),
    "F": (
        "#####",
        "#....",
        "#....",
        "####.",
        "#....",
        "#....",
        "#....",
    ),
    "G": (
        ".###.",
        "#...#",
        "#....",
        "#.###",
        "#...#",
        "#...#",
        ".###.",
    ),
    "H": (
        "#...#",
        "#...#",
        "#...#",
        "#####",
        "#...#",
        "#...#",
        "#...#",
    ),
    "I": (
        "###",
        ".#.",
        ".#.",
        ".#.",
        ".#.",
        ".#.",
        "###",
    ),
    "J": (
        "....#",
        "....#",
        "....#",
        "....#",
        "#...#",
        "#...#",
        ".###.",
    ),
    "K": (
        "#...#",
        "#..#.",
        "#.#..",
        "##...",
        "#.#..",
        "#..#.",
        "#...#",
    ),
    "L": (
        "#....",
        "#....",
        "#....",
        "#....",
        "#....",
        "#....",
        "#####",
    ),
    "M": (
        "#...#",
        "##.##",
        "#.#.#",
        "#.#.#",
        "#...#",
        "#...#",
        "#...#",
    ),
    "N": (
        "#...#",
        "#...#",
        "##..#",
        "#.#.#",
        "#..##",
        "#...#",
        "#...#",
    ),
    "O": (
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ),
    "P": (
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#....",
        "#....",
        "#....",
    ),
    "Q": (
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        "#.#.#",
        "#..#.",
        ".##.#",
    ),
    "R": (
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#.#..",
        "#..#.",
        "#...#",
    ),
    "S": (
        ".###.",
        "#...#",
        "#....",
        ".###.",
        "....#",
        "#...#",
        ".###.",
    ),
    "T": (
        "#####",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
    ),
    "U": (
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ),
    "V": (
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
    ),
    "W": (
        "#...#",
        "#...#",
        "#...#",
        "#.#.#",
        "#.#.#",
        "#.#.#",
        ".#.#.",
    ),
    "X": (
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
        ".#.#.",
        "#...#",
        "#...#",
    ),
    "Y": (
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
    ),
    "Z": (
        "#####",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "#....",
        "#####",
    ),
    "Æ": (
        ".#####",
        "#..#..",
        "#..#..",
        "######",
        "#..#..",
        "#..#..",
        "#..###",
    ),
    "Œ": (
        ".#####",
        "#..#..",
        "#..#..",
        "#..###",
        "#..#..",
        "#..#..",
        ".#####",
    ),
    # ---- lowercase ---------------------------------------------------------
    "a": (
        ".....",
        ".....",
        ".###.",
        "....#",
        ".####",
        "#...#",
        ".####",
    ),
    "b": (
        "#....",
        "#....",
        "#.##.",
        "##..#",
        "#...#",
        "#...#",
        "####.",
    ),
    "c": (
        ".....",
        ".....",
        ".###.",
        "#....",
        "#....",
        "#...#",
        ".###.",
    ),
    "d": (
        "....#",
        "....#",
        ".##.#",
        "#..##",
        "#...#",
        "#...#",
        ".####",
    ),
    "e": (
        ".....",
        ".....",
        ".###.",
        "#...#",
        "#####",
        "#....",
        ".###.",
    ),
    "f": (
        "..##",
        ".#..",
        "###.",
        ".#..",
        ".#..",
        ".#..",
        ".#..",
    ),
    "g": (
        ".....",
        ".....",
        ".####",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        ".###.",
    ),
    "h": (
        "#....",
        "#....",
        "#.##.",
        "##..#",
        "#...#",
        "#...#",
        "#...#",
    ),
    "i": (
        "#",
        ".",
        "#",
        "#",
        "#",
        "#",
        "#",
    ),
    # Dotless i: internal base for î and ï (their accent replaces the dot).
    "ı": (
        ".",
        ".",
        "#",
        "#",
        "#",
        "#",
        "#",
    ),
    "j": (
        "..#",
        "...",
        "..#",
        "..#",
        "..#",
        "..#",
        "..#",
        "..#",
        "##.",
    ),
    "k": (
        "#...",
        "#...",
        "#..#",
        "#.#.",
        "##..",
        "#.#.",
        "#..#",
    ),
    "l": (
        "#.",
        "#.",
        "#.",
        "#.",
        "#.",
        "#.",
        ".#",
    ),
    "m": (
        ".....",
        ".....",
        "##.#.",
        "#.#.#",
        "#.#.#",
        "#.#.#",
        "#.#.#",
    ),
    "n": (
        ".....",
        ".....",
        "#.##.",
        "##..#",
        "#...#",
        "#...#",
        "#...#",
    ),
    "o": (
        ".....",
        ".....",
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ),
    "p": (
        ".....",
        ".....",
        "####.",
        "#...#",
        "#...#",
        "#...#",
        "####.",
        "#....",
        "#....",
    ),
    "q": (
        ".....",
        ".....",
        ".####",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        "....#",
    ),
    "r": (
        "....",
        "....",
        "#.##",
        "##..",
        "#...",
        "#...",
        "#...",
    ),
    "s": (
        ".....",
        ".....",
        ".####",
        "#....",
        ".###.",
        "....#",
        "####.",
    ),
    "t": (
        "....",
        ".#..",
        "###.",
        ".#..",
        ".#..",
        ".#..",
        "..##",
    ),
    "u": (
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        "#..##",
        ".##.#",
    ),
    "v": (
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
    ),
    "w": (
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#.#.#",
        "#.#.#",
        ".#.#.",
    ),
    "x": (
        ".....",
        ".....",
        "#...#",
        ".#.#.",
        "..#..",
        ".#.#.",
        "#...#",
    ),
    "y": (
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        ".###.",
    ),
    "z": (
        ".....",
        ".....",
        "#####",
        "...#.",
        "..#..",
        ".#...",
        "#####",
    ),
    "æ": (
        ".......",
        ".......",
        ".##.##.",
        "...#..#",
        ".######",
        "#..#...",
        ".##.###",
    ),
    "œ": (
        ".......",
        ".......",
        ".##.##.",
        "#..#..#",
        "#..####",
        "#..#...",
        ".##.###",
    ),
    # ---- French typography and symbols -----------------------------------
    "«": (
        ".....",
        ".....",
        "..#.#",
        ".#.#.",
        "#.#..",
        ".#.#.",
        "..#.#",
    ),
    "»": (
        ".....",
        ".....",
        "#.#..",
        ".#.#.",
        "..#.#",
        ".#.#.",
        "#.#..",
    ),
    "‘": (".#", "#.", "##", "..", "..", "..", ".."),
    "’": ("##", ".#", "#.", "..", "..", "..", ".."),
    "“": (".#.#", "#.#.", "####", "....", "....", "....", "...."),
    "”": ("####", ".#.#", "#.#.", "....", "....", "....", "...."),
    "…": (".....", ".....", ".....", ".....", ".....", ".....", "#.#.#"),
    "€": (
        "..###",
        ".#...",
        "####.",
        ".#...",
        "####.",
        ".#...",
        "..###",
    ),
    "°": (".##.", "#..#", "#..#", ".##.", "....", "....", "...."),
    "–": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "—": ("........", "........", "........", "########", "........", "........", "........"),
    "·": (".", ".", ".", "#", ".", ".", "."),
    # No-break spaces: French puts them before ; : ! ? » and after «.
    "\u00a0": ("...",) * 7,
    "\u202f": ("..",) * 7,
}

# Accent marks, two rows each, centred over the base letter.
_ACCENTS: Final[dict[str, tuple[str, str]]] = {
    "acute": ("..#", ".#."),
    "grave": ("#..", ".#."),
    "circumflex": (".#.", "#.#"),
    "diaeresis": ("...", "#.#"),
    "cedilla": (".#.", "#.."),  # drawn below the baseline, under the letter
}

# Accented letters built from a base drawing plus a mark, so every É shares
# the exact E of the font and the accent shapes stay consistent.
_COMPOSED: Final[dict[str, tuple[str, str]]] = {
    "À": ("A", "grave"),
    "Â": ("A", "circumflex"),
    "Ä": ("A", "diaeresis"),
    "Ç": ("C", "cedilla"),
    "É": ("E", "acute"),
    "È": ("E", "grave"),
    "Ê": ("E", "circumflex"),
    "Ë": ("E", "diaeresis"),
    "Î": ("I", "circumflex"),
    "Ï": ("I", "diaeresis"),
    "Ô": ("O", "circumflex"),
    "Ö": ("O", "diaeresis"),
    "Ù": ("U", "grave"),
    "Û": ("U", "circumflex"),
    "Ü": ("U", "diaeresis"),
    "Ÿ": ("Y", "diaeresis"),
    "à": ("a", "grave"),
    "â": ("a", "circumflex"),
    "ä": ("a", "diaeresis"),
    "ç": ("c", "cedilla"),
    "é": ("e", "acute"),
    "è": ("e", "grave"),
    "ê": ("e", "circumflex"),
    "ë": ("e", "diaeresis"),
    "î": ("ı", "circumflex"),
    "ï": ("ı", "diaeresis"),
    "ô": ("o", "circumflex"),
    "ö": ("o", "diaeresis"),
    "ù": ("u", "grave"),
    "û": ("u", "circumflex"),
    "ü": ("u", "diaeresis"),
    "ÿ": ("y", "diaeresis"),
}

# Characters that look the same as one we already draw (hyphen variants,
# primes...) and that NFKD would not map for us.
_ALIASES: Final[dict[str, str]] = {
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "–",  # figure dash
    "\u2212": "-",  # minus sign
    "\u2015": "—",  # horizontal bar
    "\u02bc": "’",  # modifier letter apostrophe
    "\u2032": "'",  # prime
    "\u2033": '"',  # double prime
    "\u2044": "/",  # fraction slash, so ½ reads 1/2
    "\u2022": "·",  # bullet
    "\u201a": ",",  # single low-9 quotation mark
    "\u2039": "<",  # single guillemets
    "\u203a": ">",
}


def _parse(drawing: tuple[str, ...]) -> tuple[int, list[list[bool]]]:
    """Turn a drawing into (width, cell-sized pixel grid)."""
    if len(drawing) not in (7, _BODY_ROWS):
        raise ValueError(f"drawing must have 7 or {_BODY_ROWS} rows: {drawing!r}")
    width = len(drawing[0])
    if any(len(row) != width for row in drawing):
        raise ValueError(f"ragged drawing: {drawing!r}")
    grid = [[False] * width for _ in range(CELL_HEIGHT)]
    for i, row in enumerate(drawing):
        for x, cell in enumerate(row):
            if cell not in "#.":
                raise ValueError(f"unexpected {cell!r} in drawing {drawing!r}")
            grid[CAP_TOP + i][x] = cell == "#"
    return width, grid


def _to_glyph(width: int, grid: list[list[bool]]) -> Glyph:
    """Pack a pixel grid into a Glyph."""
    rows = tuple(sum(1 << (width - 1 - x) for x in range(width) if row[x]) for row in grid)
    return Glyph(width=width, rows=rows)


def _compose(base: tuple[str, ...], accent: str, upper: bool) -> Glyph:
    """Build an accented glyph: base drawing plus a centred two-row mark."""
    base_width, base_grid = _parse(base)
    mark = _ACCENTS[accent]
    mark_width = len(mark[0])
    width = max(base_width, mark_width)
    base_x = (width - base_width) // 2
    mark_x = (width - mark_width) // 2
    grid = [[False] * width for _ in range(CELL_HEIGHT)]
    for y, row in enumerate(base_grid):
        for x, on in enumerate(row):
            grid[y][base_x + x] = on
    if accent == "cedilla":
        top = _CEDILLA_ROW
    else:
        top = _UPPER_ACCENT_ROW if upper else _LOWER_ACCENT_ROW
    for dy, mark_row in enumerate(mark):
        for dx, cell in enumerate(mark_row):
            if cell == "#":
                grid[top + dy][mark_x + dx] = True
    return _to_glyph(width, grid)


def _build_glyphs() -> dict[str, Glyph]:
    """Assemble the full glyph table from drawings, compositions and aliases."""
    glyphs = {ch: _to_glyph(*_parse(drawing)) for ch, drawing in _DRAWINGS.items()}
    for ch, (base, accent) in _COMPOSED.items():
        glyphs[ch] = _compose(_DRAWINGS[base], accent, upper=ch.isupper())
    for ch, target in _ALIASES.items():
        glyphs[ch] = glyphs[target]
    return glyphs


class BitmapFont:
    """A fixed-height proportional bitmap font with a no-box fallback policy."""

    def __init__(
        self,
        glyphs: Mapping[str, Glyph],
        *,
        height: int,
        baseline: int,
        cap_top: int,
        spacing: int = 1,
        fallback: str = "?",
    ) -> None:
        if fallback not in glyphs:
            raise ValueError("the fallback character must have a glyph")
        if any(len(g.rows) != height for g in glyphs.values()):
            raise ValueError("every glyph must be exactly `height` rows tall")
        self._glyphs = dict(glyphs)
        self.height = height
        self.baseline = baseline  # row index of the baseline (last row of a capital)
        self.cap_top = cap_top  # row index of the top of a capital
        self.cap_height = baseline - cap_top + 1
        self.spacing = spacing  # blank columns between two glyphs
        self.fallback = fallback

    def covers(self, ch: str) -> bool:
        """Whether `ch` has a glyph of its own (no fallback needed)."""
        return ch in self._glyphs

    def resolve(self, ch: str) -> str:
        """The character actually drawn for `ch`: itself, its NFKD base, or '?'."""
        if ch in self._glyphs:
            return ch
        if ch.isspace():
            return " "
        for part in unicodedata.normalize("NFKD", ch):
            if part in self._glyphs:
                return part
        return self.fallback

    def glyph(self, ch: str) -> Glyph:
        """The glyph drawn for one character (never a 'missing glyph' box)."""
        return self._glyphs[self.resolve(ch)]

    def glyphs(self, text: str) -> list[Glyph]:
        """The glyphs drawn for a whole string, after Unicode clean-up."""
        out: list[Glyph] = []
        for ch in unicodedata.normalize("NFC", text):
            if ch in self._glyphs:
                out.append(self._glyphs[ch])
                continue
            if unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc") and not ch.isspace():
                # Stray combining marks, soft hyphens, zero-width joiners:
                # invisible in print, so draw nothing rather than '?'.
                continue
            if ch.isspace():
                out.append(self._glyphs[" "])
                continue
            # Compatibility forms may expand to several letters (ﬁ -> fi, ½ -> 1⁄2).
            parts = [p for p in unicodedata.normalize("NFKD", ch) if self.covers(p)]
            if parts:
                out.extend(self.glyph(p) for p in parts)
            else:
                out.append(self._glyphs[self.fallback])
        return out

    def text_width(self, text: str) -> int:
        """Width in pixels of `text` drawn on one line (no trailing spacing)."""
        glyphs = self.glyphs(text)
        if not glyphs:
            return 0
        return sum(g.width for g in glyphs) + self.spacing * (len(glyphs) - 1)

    def characters(self) -> frozenset[str]:
        """Every character with a glyph of its own."""
        return frozenset(self._glyphs)


FONT: Final = BitmapFont(
    _build_glyphs(), height=CELL_HEIGHT, baseline=BASELINE, cap_top=CAP_TOP
)
