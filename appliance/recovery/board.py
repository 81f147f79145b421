"""The demo's live table: one line per phone, redrawn in place on a terminal, appended otherwise.

Pure: rows and `now` in, text out; `Board.update` decides what to write for the stream it is given.
"""
from __future__ import annotations

from typing import Any, Callable

COLUMNS = (("MAC", 12), ("MODEL", 9), ("LOAD NOW", 20), ("STEP", 4), ("STATE", 22), ("ELAPSED", 7))


def _cells(p: dict[str, Any], now: float) -> list[str]:
    steps = p.get("steps") or 0
    step = f"{min(int(p.get('step') or 0) + 1, steps)}/{steps}" if steps else "-"
    state = str(p.get("state_words") or p.get("state") or "")
    if p.get("diagnosis") and p.get("state") in ("stuck", "waiting"):
        state = f"{state}: {p['diagnosis']}"
    return [str(p.get("mac") or ""), str(p.get("model") or "?"), str(p.get("current_load") or "?"), step, state,
            f"{max(0.0, now - float(p.get('first_seen') or now)):.0f}s"]


def line(cells: list[str]) -> str:
    return "  ".join(c.ljust(w) for c, (_, w) in zip(cells, COLUMNS, strict=False)).rstrip()


def render(phones: list[dict[str, Any]], now: float) -> list[str]:
    """The whole table: a header, then each phone in the order first seen."""
    return [line([name for name, _ in COLUMNS])] + [line(_cells(p, now)) for p in phones]


class Board:
    """Writes the table to `write`: in place on a TTY (cursor up, clear), else only phones that changed.

    Args:
        write: where text goes (e.g. sys.stdout.write); flushed by the caller.
        tty: redraw in place (ANSI) rather than append.
    """

    def __init__(self, write: Callable[[str], Any], tty: bool):
        self.write, self.tty = write, tty
        self._drawn = 0
        self._last: dict[str, list[str]] = {}

    def update(self, phones: list[dict[str, Any]], now: float) -> None:
        if self.tty:
            lines = render(phones, now)
            self.write((f"\x1b[{self._drawn}F\x1b[J" if self._drawn else "") + "\n".join(lines) + "\n")
            self._drawn = len(lines)
            return
        for p in phones:
            cells = _cells(p, now)[:-1]
            if self._last.get(p["mac"]) != cells:
                self._last[p["mac"]] = cells
                self.write(line(_cells(p, now)) + "\n")
