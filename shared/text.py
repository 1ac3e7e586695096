"""Free text that people read (names, descriptions): what it may not contain.

Control characters (C0, DEL, C1: ANSI escapes, BEL, CR) rewrite terminals and split log lines; the
bidirectional embedding, override and isolate characters (and the direction marks) make text display in
another order than it is stored ("Trojan Source", CVE-2021-42574). Neither belongs in a product name or
a display name; a description may have line breaks.
"""

from __future__ import annotations

import re

# Unicode's explicit directional formatting characters (UAX #9, section 2) and the implicit marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
# General category Cc is exactly C0, DEL and C1; LINE and PARAGRAPH SEPARATOR break lines like LF.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# In multi-line text: any control character except LF and the CR of a CR LF.
_CONTROL_BUT_LINE_BREAKS = re.compile("\r(?!\n)|[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def unsafe_text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why `text` cannot be shown to people as it is, or None.

    `multiline` allows LF and CR LF line breaks (and nothing else of the control characters).
    """
    bidi = _BIDI.search(text)
    if bidi is not None:
        return f"must not contain bidirectional control characters (U+{ord(bidi.group()):04X})"
    control = (_CONTROL_BUT_LINE_BREAKS if multiline else _CONTROL).search(text)
    if control is not None:
        allowed = " (line breaks are allowed)" if multiline else ""
        return f"must not contain control characters (U+{ord(control.group()):04X}){allowed}"
    return None
