"""Text safe for XML 1.0, shared by the Atom feed and CAP (one cleaner, not two)."""

from __future__ import annotations

import re

# XML 1.0 cannot carry most C0 controls even escaped, nor U+FFFE, U+FFFF or a lone
# surrogate (which cannot even be encoded as UTF-8); a pasted text may contain any of them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Invalid characters dropped, line ends normalised as a parser would."""
    return _XML_INVALID.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
