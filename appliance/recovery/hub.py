"""The recovery core's one loop, in the file service's parent: every event in, in the order it arrived.

Events come from:
- DHCP: each DISCOVER/ACK as one datagram on `<state>/tracker.sock`, sent
  *before* the ACK leaves (FactSender), so a lease precedes the requests it causes;
- each TFTP worker: its file facts over a socketpair, never a question;
- this process's threads (HTTP :6970, the web-page and CDP/LLDP pollers, the
  command tail): `post(event)`, which queues and wakes the loop.
One thread runs the loop and is the only one that touches the core, so the
core needs no lock.  Before anything else in each pass the DHCP socket is
drained, so a lease is applied before the file facts it caused.  What the
core concludes goes out from here: the workers' answer table (to every
worker, and to this process's own table for HTTP), page polls, and phone
rows and events to the store through a writer thread.  Datagrams and worker
messages are checked (size, shape, sender uid) and dropped with a log line,
never trusted.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import queue
import selectors
import socket
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from .. import events as ev
from ..batch import BatchWriter
from ..logs import RateLimitedLog
from . import answers as answers_wire
from .answers import AnswerTable
from .facts import (
    Answers,
    Dropped,
    FactError,
    LoadLearned,
    LoadReported,
    OtherRead,
    Output,
    PhoneChanged,
    PollPage,
    Timer,
    from_wire,
    to_event,
    to_wire,
)
from .identify import hardware as page_hardware
from .memory import to_row
from .narrate import Narrator
from .tracker import Tracker
from .words import say

log = logging.getLogger("recovery")

SOCKET_NAME = "tracker.sock"
MAX_WAIT_S = 1.0
MAX_MESSAGE = 1 << 18
ROWS_PER_MESSAGE = 400
WRITE_BATCH_S = 0.1
_CREDS = struct.Struct("3i")       # struct ucred: pid, uid, gid


def socket_path(cfg) -> Path:
    return Path(cfg.state.dir) / SOCKET_NAME


class FactSender:
    """DHCP's end: one datagram per fact, never blocking.

    A Unix datagram socket queues only net.unix.max_dgram_qlen datagrams (10 by default), so a burst of
    leases outruns the core for a moment: those wait here, in order, and go first on the next send or
    `flush` (DHCP calls it every pass).  A file service that is away (restarting) costs the oldest
    waiting facts beyond BACKLOG, counted in `failed`; the events table still has every lease."""

    BACKLOG = 10_000

    def __init__(self, path: Path | str):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = self.failed = 0
        self.waiting: deque[bytes] = deque()

    def send(self, fact) -> bool:
        """Queue one fact behind any waiting ones and send what the socket takes; True if all went out."""
        self.waiting.append(to_wire(fact))
        if len(self.waiting) > self.BACKLOG:
            self.waiting.popleft()
            self.failed += 1
        return self.flush()

    def flush(self) -> bool:
        """Send the waiting facts, oldest first, until the socket is full; True if none is left waiting."""
        while self.waiting:
            try:
                self.sock.sendto(self.waiting[0], self.path)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return False       # the file service is not there (restarting): they wait, bounded
            self.waiting.popleft()
            self.sent += 1
        return True

    def close(self) -> None:
        self.sock.close()


class Channel:
    """A TFTP worker's end of its socketpair: facts out (never waiting), the core's answer table in.

    When the parent is a moment behind and the socket is full, facts wait here in order (bounded) and go
    first on the next send or `flush` (the worker's loop calls it every tick): a phone's files are never
    lost to a burst, and the worker never blocks."""

    BACKLOG = 100_000

    def __init__(self, sock: socket.socket, table: AnswerTable | None = None):
        self.sock = sock
        self.sock.setblocking(False)
        self.table = table if table is not None else AnswerTable()
        self.dropped = self.bad = 0
        self.waiting: deque[bytes] = deque()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, fact) -> None:
        self.waiting.append(to_wire(fact))
        if len(self.waiting) > self.BACKLOG:
            self.waiting.popleft()
            self.dropped += 1          # the parent is gone for long: the store still gets the transfer record
        self.flush()

    def flush(self) -> None:
        """Send the waiting facts, oldest first, until the socket is full."""
        while self.waiting:
            try:
                self.sock.send(self.waiting[0], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.waiting.popleft()

    def receive(self) -> int:
        """Apply every answer-table change waiting on the socket; how many were applied."""
        n = 0
        for _ in range(1000):
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not data:
                break
            try:
                doc = json.loads(data)
                self.table.apply(answers_wire.from_wire(doc["answers"]))
                n += 1
            except (ValueError, KeyError, TypeError):
                self.bad += 1
        return n


class Hub:
    def __init__(self, tracker: Tracker, store, path: Path | str, web=None, identify: Callable | None = None):
        """
        Args:
            tracker: the core (its phones restored by the caller through `handle(Restored(...))`).
            store: where phone rows and events go (a writer thread owns the writes).
            path: the DHCP datagram socket to bind.
            web: a WebPoller (or None): each ACK starts a DeviceInformationX poll.
            identify: fields of a page -> an identify.Identified (load ID or None).
        """
        self.tracker, self.store, self.path = tracker, store, Path(path)
        self.web, self.identify = web, identify
        self.neighbours = None     # an lldp.Poller, woken when a phone leases
        self.table = AnswerTable()   # this process's copy, for HTTP :6970
        self.sel = selectors.DefaultSelector()
        self.workers: list[socket.socket] = []
        self._behind: set[socket.socket] = set()     # workers whose socket was full: they get the whole table
        self.counters = {"facts": 0, "dropped": 0, "answers": 0, "resyncs": 0}
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._writes: BatchWriter[tuple[list, dict]] = BatchWriter("tracker-writer", self._write, WRITE_BATCH_S)
        self._drops = RateLimitedLog(log, 20, 60.0)
        self._narrator = Narrator(tracker.phones)    # the INFO lines per phone event (narrate.py)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bind_error: str | None = None
        try:
            self.dgram: socket.socket | None = self._bind()
        except OSError as exc:      # a read-only state dir: files are still served, phones are not tracked
            self.dgram = None
            self.bind_error = f"{exc.filename or self.path}: {exc.strerror or exc}"

    # ---- sockets ---------------------------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        s.bind(str(self.path))
        os.chmod(self.path, 0o600)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, self._on_datagrams)
        return s

    def worker_pair(self) -> tuple[socket.socket, socket.socket]:
        """(parent end, worker end) for one TFTP worker; the parent keeps both, a restarted worker reuses it."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent.setblocking(False)
        for end in (parent, child):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.workers.append(parent)
        self.sel.register(parent, selectors.EVENT_READ, self._on_worker)
        return parent, child

    def resync(self, parent: socket.socket) -> None:
        """A worker (re)started with an empty table: send it the whole table (from the loop's thread)."""
        self._inbox.put(("resync", parent))
        self._wake()

    def post(self, event) -> None:
        """Queue an event for the core (any thread); applied in arrival order, after pending leases."""
        self._inbox.put(("event", event))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass              # already awake (the socket is full of wake-ups)

    # ---- the loop ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="recovery-core", daemon=True)
        self._thread.start()
        self._writes.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            deadline = self.tracker.next_deadline()
            wait = MAX_WAIT_S if deadline is None else min(MAX_WAIT_S, max(0.0, deadline - time.time()))
            for key, _ in self.sel.select(timeout=wait):
                self._drain_dhcp()
                key.data(key.fileobj)
            self._drain_dhcp()
            self._drain_inbox()
            if deadline is not None and time.time() >= deadline:
                self._handle(Timer(time.time()))
            if self._behind:
                for parent in list(self._behind):
                    self._send_table(parent)

    def _handle(self, event) -> None:
        """One event through the core; a bug in it costs that event, never the loop."""
        self.counters["facts"] += 1
        try:
            out = self.tracker.handle(event, time.time())
        except Exception as exc:
            log.exception("recovery core: %s not applied: %r", type(event).__name__, exc)
            return
        self._narrator.fact(event)
        self._emit(out)

    def run_once(self, event) -> None:
        """Apply one event now, after what is queued (start-up, before the loop runs; tests without the loop)."""
        self.pump()
        self._handle(event)

    def pump(self) -> None:
        """Apply the pending leases and everything posted so far (the loop does this on every pass)."""
        self._drain_dhcp()
        self._drain_inbox()

    def _drain_dhcp(self) -> None:
        if self.dgram is None:
            return
        for _ in range(1000):
            try:
                data, anc, _flags, _addr = self.dgram.recvmsg(4096, socket.CMSG_SPACE(_CREDS.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("tracker socket: %s", exc)
                return
            uid = next((_CREDS.unpack(d[:_CREDS.size])[1] for lvl, typ, d in anc
                        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS), None)
            if uid != os.getuid():
                self._drop(f"datagram from uid {uid} (expected {os.getuid()})")
                continue
            try:
                fact = from_wire(data)
            except FactError as exc:
                self._drop(f"malformed fact datagram ({len(data)} bytes): {exc}")
                continue
            self._handle(fact)

    def _on_datagrams(self, sock) -> None:
        self._drain_dhcp()

    def _on_wake(self, sock) -> None:
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

    def _drain_inbox(self) -> None:
        for _ in range(10_000):
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "resync":
                self._send_table(item)
            else:
                self._drain_dhcp()
                self._handle(item)

    def _on_worker(self, sock: socket.socket) -> None:
        for _ in range(500):
            try:
                data = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not data:
                return
            try:
                fact = from_wire(data)
            except FactError as exc:
                self._drop(f"worker fact: {exc}")
                continue
            self._handle(fact)

    def _drop(self, why: str) -> None:
        self.counters["dropped"] += 1
        self._drops(time.monotonic(), "recovery core: dropped %s", why)

    # ---- outputs -----------------------------------------------------------------------------------------
    def _emit(self, out: list[Output]) -> None:
        rows, phones = [], {}
        for o in out:
            self._narrator.output(o)
            if isinstance(o, PhoneChanged):
                rows.append((o.ts, "tracker", ev.PHONE_STATE, o.mac, {
                    "state": o.state.value, "detail": say(o.note), "step": o.step, "steps": o.steps, "load": o.load,
                    "diagnosis": say(o.note) if o.state.needs_tech else None}))
                phones[o.mac] = None
            elif isinstance(o, LoadLearned):
                rows.append(to_event(o))
                phones[o.mac] = None
            elif isinstance(o, Answers):
                self._publish(o)
            elif isinstance(o, PollPage):
                if self.web is not None:
                    self.web.poll(o.mac, o.ip)
                if self.neighbours is not None:
                    self.neighbours.wake()
            elif isinstance(o, OtherRead):
                pass               # counted by the core ("other reads"): served, and no phone's fact
            elif isinstance(o, Dropped):
                self._drop(o.why)
        if rows or phones:
            for mac in phones:
                p = self.tracker.phones.get(mac)
                if p is not None:
                    phones[mac] = to_row(p)
            self._writes.add([(rows, {m: r for m, r in phones.items() if r is not None})])
            self._writes.wake()

    def _publish(self, change: Answers) -> None:
        self.counters["answers"] += 1
        self.table.apply(change)
        for data in _messages(change):
            for parent in self.workers:
                if parent in self._behind:
                    continue
                try:
                    parent.send(data, socket.MSG_DONTWAIT)
                except OSError:
                    self._behind.add(parent)      # it gets the whole table once its socket drains

    def _send_table(self, parent: socket.socket) -> None:
        try:
            for data in _messages(self.tracker.table()):
                parent.send(data, socket.MSG_DONTWAIT)
        except OSError:
            self._behind.add(parent)
            return
        self.counters["resyncs"] += 1
        self._behind.discard(parent)

    def info(self) -> dict:
        """For the heartbeat: the loop's counters and the core's (reads by other clients, claims refused)."""
        core = self.tracker.counters
        return {**self.counters, "core_facts": core["facts"], "other_reads": core["other reads"],
                "core_dropped": core["dropped"], "claims_refused": core["claims refused"],
                "phones": len(self.tracker.phones), "leases": len(self.tracker.identity), "table": self.table.version}

    def page(self, mac: str, fields: dict[str, str]) -> None:
        """A DeviceInformationX page read (poll thread): the phone's word on its load, mapped to a load ID."""
        found = self.identify(fields) if self.identify else None
        if found is None:
            return
        vid, revision = page_hardware(fields)
        self.post(LoadReported(time.time(), mac, found.load, found.raw, "web", vid, revision))

    def _write(self, batch: list[tuple[list, dict]]) -> None:
        """The writer's pass: the outputs' events and the changed phones' rows in one transaction."""
        rows = [r for rs, _ in batch for r in rs]
        phones: dict[str, dict] = {}
        for _, ps in batch:
            phones.update(ps)
        try:
            with self.store.atomic():
                self.store.events.append(rows)
                for mac, fields in phones.items():
                    self.store.phones.upsert(mac, **fields)
        except Exception as exc:   # the next change of each phone writes it again
            log.warning("tracker: %d events / %d phones not recorded: %s", len(rows), len(phones), exc)

    def flush(self) -> None:
        self._writes.flush()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._writes.stop()
        if self.web is not None:
            self.web.close()
        self.sel.close()
        if self.dgram is not None:
            self.dgram.close()
        self._wake_r.close()
        self._wake_w.close()
        try:
            self.path.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("tracker socket %s not removed: %s", self.path, exc)


def _messages(change: Answers) -> list[bytes]:
    """A table change as socketpair messages of at most ROWS_PER_MESSAGE rows, the defaults in the first."""
    return [answers_wire.to_wire(Answers(change.version, change.rows[start:start + ROWS_PER_MESSAGE],
                                         change.defaults if start == 0 else None))
            for start in range(0, max(1, len(change.rows)), ROWS_PER_MESSAGE)]
