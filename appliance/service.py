"""What every long-lived service shares: the store, a heartbeat, and error reporting.

A service's socket loop calls `ServiceContext.error()` for anything it
survives (a malformed packet, a failed write), so the status API can show the
last error beside the heartbeat.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from .config import Config
from .store import Store

HEARTBEAT_SECONDS = 2.0


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

    def start_heartbeat(self, info: Callable[[], dict[str, Any]] | None = None) -> None:
        """Beat every HEARTBEAT_SECONDS from a daemon thread; `info()` adds live figures."""
        if info:
            self._info = info
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        try:
            self.store.heartbeat(self.name, os.getpid(), self._info(), started=self.started)
        except Exception as exc:  # a full disk must not stop the service
            self.log.warning("heartbeat not recorded: %s", exc)

    def _run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()

    def error(self, message: str) -> None:
        self.log.warning("%s", message)
        try:
            self.store.service_error(self.name, message)
        except Exception as exc:
            self.log.warning("error not recorded: %s", exc)

    def stop(self) -> None:
        self.stopping.set()
