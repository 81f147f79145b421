"""Session caps shared by all worker processes (and the HTTP threads): overall and per client address.

SO_REUSEPORT spreads one client's requests over the workers, so per-worker
counts cannot enforce `[tftp] per_client`; the counts live in shared memory
instead, touched once when a transfer starts and once when it ends.  Client
addresses hash into SLOTS counters; a collision can only make the cap stricter.
"""
from __future__ import annotations

import multiprocessing
import zlib

SLOTS = 1 << 14


class Limits:
    def __init__(self, max_sessions: int, per_client: int, ctx=None):
        ctx = ctx or multiprocessing.get_context("fork")
        self.max_sessions, self.per_client = max_sessions, per_client
        self._counts = ctx.RawArray("i", SLOTS + 1)
        self._lock = ctx.Lock()

    @staticmethod
    def _slot(ip: str) -> int:
        return 1 + zlib.crc32(ip.encode()) % SLOTS

    def acquire(self, ip: str) -> bool:
        slot = self._slot(ip)
        with self._lock:
            if self._counts[0] >= self.max_sessions or self._counts[slot] >= self.per_client:
                return False
            self._counts[0] += 1
            self._counts[slot] += 1
            return True

    def release(self, ip: str) -> None:
        slot = self._slot(ip)
        with self._lock:
            self._counts[0] = max(0, self._counts[0] - 1)
            self._counts[slot] = max(0, self._counts[slot] - 1)

    @property
    def active(self) -> int:
        return self._counts[0]

    def reset(self) -> None:
        """After a worker died holding slots: the parent zeroes and survivors' sessions recount lazily."""
        with self._lock:
            for i in range(SLOTS + 1):
                self._counts[i] = 0
