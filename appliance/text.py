"""Strings a phone or a client controls, made safe for the places people read them.

A file name asked over HTTP :6970, a DHCP hostname, a CDP platform or a page field ends up on a terminal
(`appliance status`), in a spreadsheet (the report CSV), in a log line and on the dashboard.  There a C0 or
C1 control (ESC, CSI U+009B) can move the cursor, clear the screen or retitle the window, a bidi override
(U+202E) can make `exe.txt` read as `txt.exe`, and a cell starting with `=` is a formula.  The sinks call
this module; the store keeps what was said (bounded), so nothing is lost for a later look.

Pure: no I/O.
"""
from __future__ import annotations

import re
from typing import Any

MAX_SHOWN = 256            # characters of one field shown (a real file name, hostname or load ID is under 64)
MAX_LOGGED = 512           # characters of one %-argument in a log line
ELLIPSIS = "..."
REPLACEMENT = "?"
# C0 and DEL, C1, the bidi embeddings/overrides/isolates and marks, and the Unicode line/paragraph separators
# (a terminal or a log reader may start a new line at them).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def clean(value: str, limit: int = MAX_SHOWN) -> str:
    """`value` with every control and bidi character replaced by '?', cut to `limit` characters.

    Args:
        value: any string (from a phone, a client, a frame).
        limit: at most this many characters come back; a longer value ends in "..." within the limit.
    Returns:
        a string that cannot move a terminal's cursor, reorder the text around it or break a line.
    """
    if len(value) > limit:
        value = value[:max(0, limit - len(ELLIPSIS))] + ELLIPSIS
    return _UNSAFE.sub(REPLACEMENT, value)


def shown(value: Any, limit: int = MAX_SHOWN) -> Any:
    """`clean` for strings; anything else (numbers, None, booleans) as it is."""
    return clean(value, limit) if isinstance(value, str) else value


def cleaned(value: Any, limit: int = MAX_SHOWN, depth: int = 8) -> Any:
    """A JSON-like value (an event's data) with every string in it, keys too, cleaned; nesting cut at `depth`."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, dict):
        if depth <= 0:
            return {}
        return {clean(str(k), limit): cleaned(v, limit, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return []
        return [cleaned(v, limit, depth - 1) for v in value]
    return value


def csv_cell(value: Any, limit: int = MAX_SHOWN) -> Any:
    """A value for a CSV cell: cleaned, and a string a spreadsheet would read as a formula prefixed with "'"."""
    if not isinstance(value, str):
        return value
    text = clean(value, limit)
    return "'" + text if value.startswith(FORMULA_LEADS) else text     # the original: a tab or CR lead is cleaned
