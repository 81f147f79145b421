"""Session budget shared by all worker processes (and the HTTP threads): per address, overall, a phones' reserve.

SO_REUSEPORT spreads one client's requests over the workers, so per-worker
counts cannot enforce `[tftp] per_client`; the counts live in shared memory
instead, touched once when a transfer starts and once when it ends.  Client
addresses hash into SLOTS counters; a collision can only make the cap stricter.

Which requests get room is admission.room's decision (pure); this module holds
the numbers it decides on and carries the decision out under one lock.  A
TFTP session takes a record (its ticket): who owns it (the worker's pid),
whether it is a phone's, and when it last made progress, so that a phone
finding no room can end the longest-idle session of a stranger, whichever
worker serves it.  Ending it is asynchronous: the record is marked evicted
and its slot passes to the phone at once; the owning worker sees the mark at
its next tick (`evicted(ticket)`), tells its client with an ERROR and hands
the record back with `leave(ticket)`.

HTTP :6970 uses `acquire(ip)`/`release(ip)` (a transfer there is not evicted:
its thread is busy writing), optionally saying the client is a phone.
"""
from __future__ import annotations

import multiprocessing
import os
import zlib

from . import admission
from .admission import Shares

SLOTS = 1 << 14
PHONE, EVICTED, EVICTABLE = 1, 2, 4
# Shared gauges: transfers of clients that are not phones, and how many of those may be ended for a phone.
_OTHERS, _EVICTABLE = 0, 1
STATS = ("refused_per_client", "refused_share", "refused_full", "phones_refused", "evicted")


class Limits:
    def __init__(self, max_sessions: int, per_client: int, ctx=None, phone_reserve: int = 0):
        """`phone_reserve`: how many of `max_sessions` only clients holding a phone's lease may use."""
        ctx = ctx or multiprocessing.get_context("fork")
        self.shares = Shares(max_sessions, per_client, max(0, min(phone_reserve, max_sessions)))
        self.max_sessions, self.per_client = max_sessions, per_client
        self._counts = ctx.RawArray("i", SLOTS + 1)       # [0]: everyone's; [slot]: one address hash's
        self._gauges = ctx.RawArray("i", 2)
        self._stats = ctx.RawArray("q", len(STATS))
        # Records: up to max_sessions running, plus as many evicted ones their owners have not yet seen.
        records = 2 * max(1, max_sessions)
        self._owner = ctx.RawArray("i", records)          # pid of the worker serving it; 0 = free
        self._slot = ctx.RawArray("i", records)
        self._flags = ctx.RawArray("i", records)
        self._since = ctx.RawArray("d", records)          # last progress, time.monotonic() (system-wide clock)
        self._lock = ctx.Lock()

    @staticmethod
    def _slot_of(ip: str) -> int:
        return 1 + zlib.crc32(ip.encode()) % SLOTS

    # -- under the lock ---------------------------------------------------------------------------
    def _room(self, slot: int, phone: bool) -> str | admission.Refusal:
        decision = admission.room(self.shares, phone=phone, total=self._counts[0], others=self._gauges[_OTHERS],
                                  mine=self._counts[slot], evictable=self._gauges[_EVICTABLE])
        if isinstance(decision, admission.Refusal):
            key = {admission.BUSY_CLIENT: "refused_per_client", admission.BUSY_SHARE: "refused_share"}.get(
                decision, "refused_full")
            self._stats[STATS.index(key)] += 1
            if phone:
                self._stats[STATS.index("phones_refused")] += 1
        elif decision == admission.EVICT and not self._evict_one():
            self._stats[STATS.index("refused_full")] += 1
            self._stats[STATS.index("phones_refused")] += 1
            return admission.BUSY          # the gauge and the records disagree: refuse rather than overrun
        return decision

    def _evict_one(self) -> bool:
        """Mark the longest-idle evictable session of a client that is not a phone, and free its counts."""
        victim = admission.longest_idle(
            (i, self._since[i]) for i in range(len(self._owner))
            if self._owner[i] and self._flags[i] & (PHONE | EVICTED | EVICTABLE) == EVICTABLE)
        if victim is None:
            return False
        self._flags[victim] |= EVICTED
        self._drop(self._slot[victim], phone=False, evictable=True)
        self._stats[STATS.index("evicted")] += 1
        return True

    def _take(self, slot: int, phone: bool, evictable: bool) -> None:
        self._counts[0] += 1
        self._counts[slot] += 1
        if not phone:
            self._gauges[_OTHERS] += 1
            if evictable:
                self._gauges[_EVICTABLE] += 1

    def _drop(self, slot: int, phone: bool, evictable: bool) -> None:
        self._counts[0] = max(0, self._counts[0] - 1)
        self._counts[slot] = max(0, self._counts[slot] - 1)
        if not phone:
            self._gauges[_OTHERS] = max(0, self._gauges[_OTHERS] - 1)
            if evictable:
                self._gauges[_EVICTABLE] = max(0, self._gauges[_EVICTABLE] - 1)

    # -- HTTP: a transfer without a record ----------------------------------------------------------
    def acquire(self, ip: str, phone: bool = False) -> bool:
        """Room for one transfer to `ip` that cannot be evicted (HTTP).  `phone`: `ip` holds a phone's lease
        (may use the reserve, and end a stranger's TFTP session when there is no room).  Pair with
        `release(ip, phone)`."""
        slot = self._slot_of(ip)
        with self._lock:
            if self._room(slot, phone) not in (admission.ADMIT, admission.EVICT):
                return False
            self._take(slot, phone, evictable=False)
            return True

    def release(self, ip: str, phone: bool = False) -> None:
        slot = self._slot_of(ip)
        with self._lock:
            self._drop(slot, phone, evictable=False)

    # -- TFTP: a transfer with a record --------------------------------------------------------------
    def admit(self, ip: str, phone: bool, now: float, owner: int | None = None) -> int | admission.Refusal:
        """Room for one TFTP session to `ip` (a stranger's may be ended for a phone).

        Args:
            ip: the client address; phone: it holds a phone's lease; now: time.monotonic();
            owner: the pid serving it (default: this process), for `forget`.
        Returns:
            a ticket for `touch`, `evicted` and `leave`, or the refusal to send.
        """
        slot = self._slot_of(ip)
        with self._lock:
            decision = self._room(slot, phone)
            if isinstance(decision, admission.Refusal):
                return decision
            for i in range(len(self._owner)):
                if not self._owner[i]:
                    break
            else:                      # cannot happen (twice max_sessions records); refuse rather than overrun
                return admission.BUSY
            self._owner[i] = owner or os.getpid()
            self._slot[i] = slot
            self._flags[i] = (PHONE if phone else 0) | EVICTABLE
            self._since[i] = now
            self._take(slot, phone, evictable=True)
            return i

    def touch(self, ticket: int, now: float) -> None:
        """The session made progress at `now` (its owner's tick).  Unlocked: one double written by its
        one owner; a reader choosing whom to evict at worst sees the previous value."""
        self._since[ticket] = now

    def evicted(self, ticket: int) -> bool:
        """The session was ended for a phone: its owner tells the client and calls `leave`."""
        return bool(self._flags[ticket] & EVICTED)

    def leave(self, ticket: int) -> None:
        """The session ended (however): its record and, unless it was evicted, its counts go back."""
        with self._lock:
            if not self._owner[ticket]:
                return
            flags = self._flags[ticket]
            if not flags & EVICTED:
                self._drop(self._slot[ticket], phone=bool(flags & PHONE), evictable=True)
            self._owner[ticket] = 0
            self._flags[ticket] = 0

    def forget(self, pid: int) -> int:
        """A worker died: the sessions it held end (their records and counts go back); -> how many."""
        with self._lock:
            held = [i for i in range(len(self._owner)) if self._owner[i] == pid]
        for i in held:
            self.leave(i)
        return len(held)

    # -- reading -------------------------------------------------------------------------------------
    @property
    def active(self) -> int:
        return self._counts[0]

    def info(self) -> dict:
        """For the heartbeat: the budget, what is in use, and what was refused or ended for a phone."""
        return {"max_sessions": self.max_sessions, "per_client": self.per_client,
                "phone_reserve": self.shares.phone_reserve, "sessions": self._counts[0],
                "others": self._gauges[_OTHERS], **{key: self._stats[i] for i, key in enumerate(STATS)}}

    def reset(self) -> None:
        """Zero every count and record (the HTTP transfers running recount lazily as they end)."""
        with self._lock:
            for i in range(SLOTS + 1):
                self._counts[i] = 0
            for i in range(len(self._gauges)):
                self._gauges[i] = 0
            for i in range(len(self._owner)):
                self._owner[i] = self._flags[i] = 0
