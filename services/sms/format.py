"""What an SMS says, its encoding and its parts: pure (no clock, no I/O), exact.

GSM 03.38 (GSM-7): 160 septets in one SMS, 153 per part once split (the user data header
takes 7); the extension characters (€ [ ] { } ^ ~ \\ | and form feed) are sent as ESC +
character, so they count two and a part never splits them. Any other character makes the
whole message UCS-2: 70 UTF-16 code units, 67 per part, a surrogate pair never split.

Transliteration (on by default) replaces only what keeps the meaning (’ by ', « » by ",
ê by e, œ by oe, the narrow no-break space by a space...) so that French text stays in
GSM-7 and costs half as much.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum

from crieur import french
from schemas.events import EventKind

# GSM 03.38 basic character set (ESC, 0x1B, left out: it introduces the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (ESC + the character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# (single SMS, per part when split), in septets for GSM-7 and UTF-16 units for UCS-2.
LIMITS: dict[Encoding, tuple[int, int]] = {
    Encoding.GSM7: (160, 153),
    Encoding.UCS2: (70, 67),
}

# Replacements that keep the meaning; anything not here and outside GSM-7 stays as is.
_TRANSLITERATION: dict[str, str] = {
    "’": "'", "‘": "'", "‚": "'", "′": "'", "´": "'", "`": "'",
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‹": '"', "›": '"', "″": '"',
    "\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u2007": " ", "\u2002": " ",
    "\u2003": " ", "\t": " ",
    "…": "...", "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "•": "-", "·": ".",
    "œ": "oe", "Œ": "OE", "æ": "ae",
    "â": "a", "á": "a", "ã": "a", "ê": "e", "ë": "e", "î": "i", "ï": "i", "í": "i",
    "ô": "o", "ó": "o", "õ": "o", "û": "u", "ú": "u", "ÿ": "y", "ç": "c",
    "À": "A", "Â": "A", "Á": "A", "È": "E", "Ê": "E", "Ë": "E", "Î": "I", "Ï": "I",
    "Í": "I", "Ô": "O", "Ó": "O", "Ù": "U", "Û": "U", "Ú": "U", "Ÿ": "Y",
    "\u200b": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
}
# Guillemets hold their text with (narrow) no-break spaces: « texte » -> "texte".
_OPENING = re.compile(r"«[\s\u00a0\u202f]*")
_CLOSING = re.compile(r"[\s\u00a0\u202f]*»")


def in_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def transliterate(text: str) -> str:
    """Replace what can be replaced without changing the meaning, to stay in GSM-7."""
    text = _CLOSING.sub('"', _OPENING.sub('"', text))
    return "".join(_TRANSLITERATION.get(c, c) if not in_gsm7(c) else c for c in text)


def clean(text: str) -> str:
    """NFC, one kind of line break, no control characters but the line break."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")


def encoding_of(text: str) -> Encoding:
    return Encoding.GSM7 if all(in_gsm7(c) for c in text) else Encoding.UCS2


def _units(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def length(text: str, encoding: Encoding | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes."""
    encoding = encoding or encoding_of(text)
    return sum(_units(c, encoding) for c in text)


def split(text: str) -> list[str]:
    """The parts the text is sent in (never splitting an escape or a surrogate pair)."""
    encoding = encoding_of(text)
    single, per_part = LIMITS[encoding]
    if length(text, encoding) <= single:
        return [text] if text else []
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        units = _units(char, encoding)
        if used + units > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += units
    if current:
        parts.append("".join(current))
    return parts


def parts(text: str) -> int:
    encoding = encoding_of(text)
    single = LIMITS[encoding][0]
    total = length(text, encoding)
    if total <= single:
        return 1 if total else 0
    return len(split(text))


def ucs2_characters(text: str) -> list[str]:
    """The characters that make the text UCS-2, each once, in order of appearance."""
    seen: dict[str, None] = {}
    for char in text:
        if not in_gsm7(char):
            seen.setdefault(char)
    return list(seen)


@dataclass(frozen=True)
class Sms:
    """A message as it will be sent, and what it costs."""

    text: str
    encoding: Encoding
    parts: int
    ucs2_characters: tuple[str, ...]
    # The notice was cut to fit CRIEUR_SMS_MAX_PARTS (the link to the full notice ends it).
    cut: bool = False

    def preview(self) -> dict[str, object]:
        """The answer of POST /api/v1/previews/sms."""
        return {"text": self.text, "encoding": str(self.encoding), "parts": self.parts,
                "ucs2_characters": list(self.ucs2_characters), "cut": self.cut}


def measure(text: str, cut: bool = False) -> Sms:
    return Sms(text=text, encoding=encoding_of(text), parts=parts(text),
               ucs2_characters=tuple(ucs2_characters(text)), cut=cut)


def prepare_text(text: str, transliterated: bool = True) -> Sms:
    """A free text as it would be sent (the staff preview), without cutting it."""
    text = clean(text)
    if not transliterated:
        return measure(text)
    sent = measure(transliterate(text))
    # Still UCS-2 (a character with no GSM-7 stand-in): accents cost nothing, keep them.
    return _with_accents(measure(text), sent)


ELLIPSIS = "..."


def fit(content: str, tail: str, link: str, max_parts: int, transliterated: bool = True) -> Sms:
    """`content` then `tail` (the STOP mention) in at most `max_parts` parts.

    When it does not fit, the content is cut at a word boundary, marked with "..." and
    followed by `link` (the full notice), and the tail always stays. Transliterated to stay
    in GSM-7; a text that stays UCS-2 all the same keeps its accents (« arrêter »).
    """
    if not transliterated:
        return _fit(content, tail, link, max_parts, transliterated=False)
    sent = _fit(content, tail, link, max_parts, transliterated=True)
    return _with_accents(_fit(content, tail, link, max_parts, transliterated=False), sent)


def _with_accents(kept: Sms, transliterated: Sms) -> Sms:
    """The text with its accents when the transliterated one is UCS-2 all the same; the
    characters to blame stay those with no GSM-7 stand-in (« ≥ », not « ê »)."""
    if transliterated.encoding is Encoding.GSM7:
        return transliterated
    return replace(kept, ucs2_characters=transliterated.ucs2_characters)


def _fit(content: str, tail: str, link: str, max_parts: int, transliterated: bool) -> Sms:
    def prepare(text: str) -> str:
        text = clean(text)
        return transliterate(text) if transliterated else text

    content, tail, link = prepare(content).strip(), prepare(tail), prepare(link)
    whole = f"{content}\n{tail}" if tail else content
    if parts(whole) <= max_parts:
        return measure(whole)

    def cut_at(n: int) -> str:
        kept = content[:n].rstrip()
        return f"{kept}{ELLIPSIS}\n{link}" + (f"\n{tail}" if tail else "")

    # The parts of cut_at(n) only grow with n (more characters, and UCS-2 once, UCS-2
    # for good): the longest n that fits is found by bisection.
    low, high = 0, len(content)
    while low < high:
        middle = (low + high + 1) // 2
        if parts(cut_at(middle)) <= max_parts:
            low = middle
        else:
            high = middle - 1
    n = low
    # Back to the end of a word when one is near (never leave half a word).
    if 0 < n < len(content) and not content[n].isspace():
        space = max(content.rfind(" ", 0, n), content.rfind("\n", 0, n))
        if space > n - 30 and space > 0:
            n = space
    return measure(cut_at(n), cut=True)


# What a resident sees first: who speaks, and what kind of message it is.
_KIND_LABELS: dict[EventKind, str] = {
    EventKind.PUBLISHED: "",
    EventKind.CORRECTED: "RECTIFICATIF",
    EventKind.WITHDRAWN: "ANNULÉ",
}


def stop_mention(stop_number: str | None) -> str:
    """How to stop, in a few characters (every notice SMS ends with it)."""
    if stop_number:
        return french.STOP_TO_NUMBER.format(number=stop_number)
    return french.STOP_BY_REPLY


def compose_notice(*, kind: EventKind, commune_name: str, label: str, title: str, body: str,
                   link: str, stop: str, max_parts: int, transliterated: bool = True) -> Sms:
    """The SMS of one notice event: "<Commune> - <Catégorie> : <titre>" then the text.

    A correction says so first; a withdrawal is short (the title, and that it is annulled).
    """
    marker = _KIND_LABELS[kind]
    head = f"{commune_name} - {label}"
    if marker:
        head = f"{head} - {marker}"
    if kind is EventKind.WITHDRAWN:
        content = f"{head} : {title}\nCet avis est annulé."
    else:
        content = f"{head} : {title}\n{body}"
    return fit(content, stop, link, max_parts, transliterated)


def compose_code(code: str, commune_names: list[str], transliterated: bool = True,
                 valid_s: int = 900) -> Sms:
    """The confirmation code SMS, in one part (the communes named only when they fit); it
    says how long the code may be typed (CRIEUR_SMS_CODE_TTL_S)."""
    short = french.CODE_SMS.format(code=code, minutes=max(1, valid_s // 60))
    if not commune_names:
        return prepare_text(short, transliterated)
    full = prepare_text(f"{short} Avis de : {', '.join(commune_names)}", transliterated)
    return full if full.parts == 1 else prepare_text(short, transliterated)
