"""One line per event on stdout, human-readable or JSON (`--log-format json`), in every process of the station.

`appliance run` passes the format and level to every service (supervisord.conf's commands, and
APPLIANCE_LOG_FORMAT / APPLIANCE_LOG_LEVEL for the rest): gunicorn's own lines go through `gunicorn_logger`,
supervisor's and lldpd's through appliance/supervise.sh, which writes the same two shapes.  So a station's
output is one format, each line once.

The arguments of every record are cleaned (`CleanArgs`, appliance/text.py) before they are formatted: a file
name, hostname or frame field a client sent cannot put a control or bidi character in the log, or forge a line.
"""
from __future__ import annotations

import copy
import json
import logging
import os
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
        if isinstance(args, dict) and type(args) is not dict:
            # A dict subclass that answers missing keys (gunicorn's SafeAtoms) stays one, cleaned.
            record.args = copy.copy(args)
            for k, v in args.items():
                record.args[k] = _arg(v)
        elif isinstance(args, Mapping):
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


FORMATS = ("text", "json")
_format, _level = "text", "INFO"


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The station's formatter for `fmt` (default: the one `setup` chose)."""
    return JsonFormatter() if (fmt or _format) == "json" else HumanFormatter()


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup(fmt: str | None = None, level: str | None = None) -> None:
    """Every record of this process to stdout, cleaned, in `fmt` ("text" or "json") at `level` and above.

    Either left out comes from APPLIANCE_LOG_FORMAT / APPLIANCE_LOG_LEVEL (what `appliance run` sets for
    its children, and what a container's environment may set), else text at INFO.  A value that is
    neither is said once and the default used: logging must never be why a station does not start.
    """
    global _format, _level
    fmt = fmt or os.environ.get("APPLIANCE_LOG_FORMAT") or "text"
    wanted = (level or os.environ.get("APPLIANCE_LOG_LEVEL") or "INFO").upper()
    _format = fmt if fmt in FORMATS else "text"
    _level = wanted if wanted in LEVELS else "INFO"
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter())
    handler.addFilter(CleanArgs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level)
    _log_uncaught()
    if fmt != _format:
        logging.getLogger("station").warning("log format %r is not text or json: text used", fmt)
    if wanted != _level:
        logging.getLogger("station").warning("log level %r is not one of %s: INFO used", wanted, ", ".join(LEVELS))


def _log_uncaught() -> None:
    """An exception nobody caught (a library's hook, a thread) is logged like everything else, not printed
    as a bare traceback in the middle of the station's log; under supervisord, named after the service."""
    import threading

    name = os.environ.get("SUPERVISOR_PROCESS_NAME") or "appliance"

    def say(kind: type[BaseException], value: BaseException, tb: Any, where: str = "") -> None:
        logging.getLogger(name).critical("stopped by an error%s: %s: %s", where, kind.__name__, value,
                                         exc_info=(kind, value, tb))

    def main(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
        else:
            say(kind, value, tb)

    def thread(args: Any) -> None:
        if args.exc_type is not SystemExit:
            say(args.exc_type, args.exc_value, args.exc_traceback,
                f" in thread {args.thread.name if args.thread else '?'}")

    sys.excepthook = main
    threading.excepthook = thread


def current() -> tuple[str, str]:
    """The format and level `setup` chose (for the processes this one starts)."""
    return _format, _level


class _Named(logging.Filter):
    """Shows a library's records under the service's name (`gunicorn.error` -> `api`)."""

    def __init__(self, name: str):
        super().__init__()
        self.shown = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = self.shown
        return True


def gunicorn_logger(name: str = "api") -> type:
    """A gunicorn `logger_class` whose error and access lines are the station's: same format, cleaned
    (a request line is the client's), named `name`.  Imported here, when asked, so only the API pays for it."""
    from gunicorn.glogging import Logger

    class StationLogger(Logger):
        def setup(self, cfg) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(formatter())
                    handler.addFilter(CleanArgs())
                    handler.addFilter(_Named(name))

    return StationLogger


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
