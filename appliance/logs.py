"""One line per event on stdout, human-readable or JSON (`--log-format json`).

The arguments of every record are cleaned (`CleanArgs`, appliance/text.py) before they are formatted: a file
name, hostname or frame field a client sent cannot put a control or bidi character in the log, or forge a line.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from .text import MAX_LOGGED, clean

_PLAIN = (int, float, bool, type(None))


class _Shown:
    """An argument that is not a string, shown cleaned whether the message says %s or %r."""
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return clean(str(self.value), MAX_LOGGED)

    def __repr__(self) -> str:
        return clean(repr(self.value), MAX_LOGGED)


def _arg(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value, MAX_LOGGED)
    return value if isinstance(value, _PLAIN) else _Shown(value)


class CleanArgs(logging.Filter):
    """Replace each %-argument of a record with its cleaned form (numbers stay numbers, for %d and %.1f).

    The message itself is the code's own text; what a client controls arrives as an argument.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            record.args = {k: _arg(v) for k, v in args.items()}
        elif isinstance(args, tuple) and args:
            record.args = tuple(_arg(a) for a in args)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": getattr(record, "service", record.name),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name:<10} {record.getMessage()}"
        if record.exc_info:
            # An exception's words may quote a client (a file name, with a newline in it): each line of the
            # traceback is cleaned and marked as this record's continuation, so none can pass for a record.
            line += "".join("\n  | " + clean(part, 4 * MAX_LOGGED)
                            for part in self.formatException(record.exc_info).splitlines())
        return line


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(CleanArgs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RateLimitedLog:
    """Warn about malformed packets without letting a flood of them flood the log (or the disk behind it)."""

    def __init__(self, logger: logging.Logger, per_window: int = 5, window: float = 10.0):
        self.log, self.per_window, self.window = logger, per_window, window
        self.start, self.count, self.suppressed = 0.0, 0, 0

    def __call__(self, now: float, message: str, *args) -> bool:
        """Log unless this window's quota is spent; True if it was logged."""
        if now - self.start > self.window:
            if self.suppressed:
                self.log.warning("%d more malformed packets not logged", self.suppressed)
            self.start, self.count, self.suppressed = now, 0, 0
        if self.count < self.per_window:
            self.count += 1
            self.log.warning(message, *args)
            return True
        self.suppressed += 1
        return False
