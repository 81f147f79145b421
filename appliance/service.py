"""What every long-lived service shares: the store, a heartbeat, and error reporting.

A service's socket loop calls `ServiceContext.error()` for anything it
survives (a malformed packet, a failed write), so the status API can show the
last error beside the heartbeat.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Callable

from .config import Config
from .store import Store

HEARTBEAT_SECONDS = 2.0
WRITABLE_POLL_SECONDS = 5.0

# Services that cannot do their job without writing, and why: with an unwritable
# state dir they wait, idle and saying so, instead of crash-looping into FATAL
# (which would make `appliance run` stop the file service too).
MUST_WRITE = {"dhcp": "a lease must be stored before its ACK, so no lease can be handed out"}


class ServiceContext:
    def __init__(self, name: str, config: Config, store: Store | None = None):
        self.name = name
        self.config = config
        self.store = store or Store(config.db_path)
        self.log = logging.getLogger(name)
        self.started = time.time()
        self.stopping = threading.Event()
        self._info: Callable[[], dict[str, Any]] = dict
        self._thread: threading.Thread | None = None
        if getattr(self.store, "read_only", None):
            self._unwritable()

    def _unwritable(self) -> None:
        """Say once, naming the state dir and the cause; a MUST_WRITE service then waits until it is writable."""
        where, cause = self.store.path.parent, self.store.read_only
        why = MUST_WRITE.get(self.name)
        if why is None:
            self.log.error("state dir %s cannot be written: %s; serving from what can be read, recording no "
                           "transfers, events or heartbeats", where, cause)
            return
        self.log.error("%s refuses to serve: state dir %s cannot be written: %s; %s; waiting until it is writable",
                       self.name, where, cause, why)
        try:
            signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        except ValueError:
            pass    # not the main thread: the caller stops us through `stopping`
        while not self.stopping.wait(WRITABLE_POLL_SECONDS):
            store = Store(self.store.path)
            if not store.read_only:
                self.log.warning("state dir %s is writable again: %s starts", where, self.name)
                self.store = store
                return
            store.close()
        raise SystemExit(0)

    def start_heartbeat(self, info: Callable[[], dict[str, Any]] | None = None) -> None:
        """Beat every HEARTBEAT_SECONDS from a daemon thread; `info()` adds live figures."""
        if info:
            self._info = info
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if getattr(self.store, "read_only", None):
            return    # said once at start; a warning every beat would bury it
        try:
            self.store.services.beat(self.name, os.getpid(), self._info(), started=self.started)
        except Exception as exc:  # a full disk must not stop the service
            self.log.warning("heartbeat not recorded: %s", exc)

    def _run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()
            release_free_heap()

    def error(self, message: str) -> None:
        self.log.warning("%s", message)
        if getattr(self.store, "read_only", None):
            return
        try:
            self.store.services.error(self.name, message)
        except Exception as exc:
            self.log.warning("error not recorded: %s", exc)

    def stop(self) -> None:
        self.stopping.set()


def _libc_malloc_trim():
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):     # not glibc (musl, macOS): nothing to release this way
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_MALLOC_TRIM = _libc_malloc_trim()


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS.  glibc keeps each thread's arena at its high-water
    mark: a burst of 50 phones left the file service ~10 MiB above idle for good, on a station
    that must fit a Raspberry Pi Zero 2 W.  One malloc_trim(0) per heartbeat costs ~0.14 ms."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
