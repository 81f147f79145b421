"""One batching writer for every service: items queued from any thread, written by one thread.

The hot paths (a DHCP burst, a TFTP transfer, the tracker's conclusions) must never wait for SQLite:
they queue, and the writer's thread commits everything queued since its last pass in one call of
`write` (one transaction), every `interval` seconds or sooner when woken.  SQLite releases the GIL
while it writes, so the serving thread keeps going.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")
log = logging.getLogger("appliance")


class BatchWriter(Generic[T]):
    """A bounded queue and the thread that drains it into `write`.

    Args:
        name: the thread's name, and the writer's in its log lines.
        write: called with the items queued since the last pass (an empty list too when `idle_writes`,
            for writers that also flush state of their own, such as transfer progress).
        interval: seconds between passes.
        limit: queued items beyond this are dropped and counted in `dropped` (a stuck disk must cost
            history, not memory).
        on_error: told each failed write (default: a warning); the items of a failed pass are not retried
            unless `write` re-queues them itself.
    """

    def __init__(self, name: str, write: Callable[[list[T]], None], interval: float, limit: int = 200_000,
                 on_error: Callable[[Exception, int], None] | None = None, idle_writes: bool = False):
        self.name, self._write, self.interval, self.limit = name, write, interval, limit
        self._on_error = on_error or (lambda exc, n: log.warning("%s: %d items not recorded: %s", name, n, exc))
        self._idle = idle_writes
        self._lock = threading.Lock()
        self._queue: list[T] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def add(self, items: Iterable[T]) -> bool:
        """Queue `items`; False (and counted in `dropped`) when the queue is full."""
        items = list(items)
        with self._lock:
            if len(self._queue) + len(items) > self.limit:
                self.dropped += len(items)
                return False
            self._queue.extend(items)
        return True

    def requeue(self, items: list[T]) -> None:
        """Put a failed pass's items back in front, as far as the limit allows."""
        with self._lock:
            room = max(0, self.limit - len(self._queue))
            self._queue[:0] = items[:room]
            self.dropped += len(items) - min(room, len(items))

    def wake(self) -> None:
        self._wake.set()

    def flush(self) -> None:
        """Write what is queued now, on the calling thread."""
        with self._lock:
            items, self._queue = self._queue, []
        if not items and not self._idle:
            return
        try:
            self._write(items)
        except Exception as exc:
            self._on_error(exc, len(items))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def stop(self) -> None:
        """Stop the thread, then write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
