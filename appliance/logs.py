"""One line per event on stdout, human-readable or JSON (`--log-format json`)."""
from __future__ import annotations

import json
import logging
import sys
import time


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
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
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
