"""Server-Sent Events tail of the `events` table, in bounded streams.

A stream holds one of the API server's threads while it is open, so streams
are bounded three ways (issue 24): in time (MAX_STREAM_SECONDS; the browser's
EventSource reconnects with Last-Event-ID and resumes exactly), in number
(`Slots`: a total that leaves most threads to `/api/v1/health`, the API and the
dashboard, and a share per address; past either the client gets 503 with
Retry-After, and the dashboard keeps refreshing by polling), and by its client
(a stream whose client hung up ends at the next tick, not at its next write).
A comment line every KEEPALIVE seconds keeps proxies from cutting it.
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from typing import Callable, Iterator

from ..store import Store
from . import views

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 10.0
MAX_STREAM_SECONDS = 60.0
BATCH = 200
RETRY_MS = 1000
RESERVED_THREADS = 8          # server threads streams never take: health, the API and the dashboard's requests
PER_ADDRESS = 2               # streams one address may hold (a wall screen and a laptop behind one NAT: ask more)
RETRY_AFTER_S = 30


class Slots:
    """How many event streams may be open at once, in all and per client address (thread-safe).

    `take(ip)` -> None when a slot is taken (pair it with `give(ip)`), else the words for the 503."""

    def __init__(self, total: int, per_address: int = PER_ADDRESS, on_refuse: Callable[[], None] | None = None):
        self.total, self.per_address = max(1, total), max(1, per_address)
        self.on_refuse = on_refuse
        self._lock = threading.Lock()
        self._open = 0
        self._by_ip: dict[str, int] = {}
        self.refused = 0

    @classmethod
    def for_threads(cls, threads: int, on_refuse: Callable[[], None] | None = None) -> "Slots":
        """The slots for a server of `threads` threads: all but RESERVED_THREADS (at least one)."""
        return cls(max(1, threads - RESERVED_THREADS), on_refuse=on_refuse)

    def take(self, ip: str) -> str | None:
        why = self._take(ip)
        if why is not None and self.on_refuse is not None:
            self.on_refuse()
        return why

    def _take(self, ip: str) -> str | None:
        with self._lock:
            if self._by_ip.get(ip, 0) >= self.per_address:
                self.refused += 1
                return (f"this address already has {self.per_address} event streams open (the most one address "
                        "may hold): close a dashboard tab, or let the dashboard refresh by polling")
            if self._open >= self.total:
                self.refused += 1
                return (f"all {self.total} event streams are in use: the dashboard still refreshes every few "
                        "seconds; try again later")
            self._open += 1
            self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
            return None

    def give(self, ip: str) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)
            n = self._by_ip.get(ip, 0) - 1
            if n > 0:
                self._by_ip[ip] = n
            else:
                self._by_ip.pop(ip, None)

    def info(self) -> dict:
        with self._lock:
            return {"open": self._open, "total": self.total, "per_address": self.per_address, "refused": self.refused}


def hung_up(sock: socket.socket | None) -> bool:
    """True once the client closed its end (an EOF is waiting); never blocks.  No socket (a test client): False."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class Stream:
    """The body of one event stream: an iterator whose `close()` (the WSGI server calls it, started or not)
    closes the thread's store connection and gives back its slot exactly once."""

    def __init__(self, store: Store, after: int, duration: float, mac: str | None = None,
                 slots: Slots | None = None, ip: str = "", sock: socket.socket | None = None):
        self.store, self.slots, self.ip, self.sock = store, slots, ip, sock
        self._gen = _events(store, after, duration, mac, sock)
        self._closed = False

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> str:
        try:
            return next(self._gen)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._gen.close()
        self.store.close()
        if self.slots is not None:
            self.slots.give(self.ip)


def _events(store: Store, after: int, duration: float, mac: str | None, sock: socket.socket | None) -> Iterator[str]:
    deadline = time.monotonic() + max(0.0, min(duration, MAX_STREAM_SECONDS))
    last_sent = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        rows = store.events.after(after, limit=BATCH, mac=mac)
        for row in rows:
            after = row["id"]
            doc = views.event(row)
            yield f"id: {after}\nevent: {row['kind']}\ndata: {json.dumps(doc, default=str)}\n\n"
            last_sent = time.monotonic()
        if time.monotonic() >= deadline or hung_up(sock):
            return
        if rows and len(rows) == BATCH:
            continue
        if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        time.sleep(POLL_SECONDS)


def stream(store: Store, after: int, duration: float, mac: str | None = None) -> Stream:
    """An unbounded-in-number stream (no slot): what tests and tools use directly."""
    return Stream(store, after, duration, mac)


def latest_id(store: Store) -> int:
    return store.events.last_id()
