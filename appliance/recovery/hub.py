"""The tracker's one door, in the file service's parent process: every fact in, in the order it arrived.

Facts come from three places:
- DHCP sends each DISCOVER/ACK as one datagram on `<state>/tracker.sock`
  *before* the ACK leaves (FactSender), so a lease always precedes the config
  request it causes;
- each TFTP worker has a socketpair to this process: its file facts, and the
  config questions it must answer (a config names what the tracker decides, so
  the worker asks and waits for the reply);
- this process's own HTTP :6970 server, web-page poller and command tail call
  `local`, `config` and `term` directly.
Before any worker message or local call is applied, the DHCP socket is drained,
so cause precedes effect by construction.  Everything touches the tracker
under one lock; what it concludes goes to the store from a writer thread.
Datagrams are checked (size, shape, sender uid) and dropped with a log line,
never trusted.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import selectors
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Callable

from ..batch import BatchWriter
from .facts import FactError, Lease, LoadLearned, LoadReported, Output, PhoneChanged, from_wire, to_event, to_wire
from .tracker import Phone, Tracker

log = logging.getLogger("recovery")

SOCKET_NAME = "tracker.sock"
TICK_S = 0.5
ASK_TIMEOUT_S = 1.0
MAX_MESSAGE = 4096
WRITE_BATCH_S = 0.1
_CREDS = struct.Struct("3i")       # struct ucred: pid, uid, gid


def socket_path(cfg) -> Path:
    return Path(cfg.state.dir) / SOCKET_NAME


class FactSender:
    """DHCP's end: one datagram per fact, never blocking; a missing tracker costs a counter, not a lease."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = self.failed = 0

    def send(self, fact) -> bool:
        try:
            self.sock.sendto(to_wire(fact), self.path)
            self.sent += 1
            return True
        except OSError:
            self.failed += 1       # the file service is restarting: the events table still has the lease
            return False

    def close(self) -> None:
        self.sock.close()


class Channel:
    """A TFTP worker's end of its socketpair: send facts, ask questions and wait for the answer."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._ids = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def send(self, fact) -> None:
        self._put({"fact": json.loads(to_wire(fact))})

    def _put(self, doc: dict) -> bool:
        try:
            self.sock.send(json.dumps(doc, separators=(",", ":")).encode(), socket.MSG_DONTWAIT)
            return True
        except OSError:
            self.dropped += 1
            return False

    def ask(self, question: str, timeout: float = ASK_TIMEOUT_S, **args) -> tuple[bool, str | None]:
        """(answered, load): the tracker's answer to "config" or "term"; (False, None) on timeout."""
        with self._lock:
            self._ids += 1
            qid = self._ids
            if not self._put({"ask": question, "id": qid, **args}):
                return False, None
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, None
                self.sock.settimeout(left)
                try:
                    reply = json.loads(self.sock.recv(MAX_MESSAGE))
                except (OSError, ValueError):
                    return False, None
                finally:
                    self.sock.settimeout(None)
                if isinstance(reply, dict) and reply.get("id") == qid:
                    load = reply.get("load")
                    return True, load if isinstance(load, str) else None


class Hub:
    def __init__(self, tracker: Tracker, store, path: Path | str, web=None, identify: Callable | None = None):
        """
        Args:
            tracker: the state machine (restored by the caller).
            store: where outputs and phone rows go (a writer thread owns the writes).
            path: the DHCP datagram socket to bind.
            web: a WebPoller (or None): each ACK starts a DeviceInformationX poll.
            identify: fields of a page -> an identify.Identified (load ID or None).
        """
        self.tracker, self.store, self.path = tracker, store, Path(path)
        self.web, self.identify = web, identify
        self.neighbours = None     # an lldp.Poller: CDP/LLDP claims waiting for a phone's lease
        self.lock = threading.RLock()
        self.sel = selectors.DefaultSelector()
        self.workers: list[socket.socket] = []
        self.counters = {"facts": 0, "dropped": 0, "asked": 0}
        self._writes: BatchWriter[tuple[list, dict]] = BatchWriter("tracker-writer", self._write, WRITE_BATCH_S)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.dgram = self._bind()

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
        self.workers.append(parent)
        self.sel.register(parent, selectors.EVENT_READ, self._on_worker)
        return parent, child

    def _drain_dhcp(self) -> None:
        for _ in range(1000):
            try:
                data, anc, _flags, _addr = self.dgram.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(_CREDS.size))
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
            self._apply(fact)

    def _drop(self, why: str) -> None:
        self.counters["dropped"] += 1
        if self.counters["dropped"] <= 20 or self.counters["dropped"] % 1000 == 0:
            log.warning("tracker: dropped %s", why)

    def _on_datagrams(self, sock) -> None:
        with self.lock:
            self._drain_dhcp()

    def _on_worker(self, sock: socket.socket) -> None:
        for _ in range(200):
            try:
                data = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not data:
                return
            try:
                doc = json.loads(data)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self._drop(f"worker message: {exc}")
                continue
            if "fact" in doc:
                try:
                    fact = from_wire(json.dumps(doc["fact"]).encode())
                except FactError as exc:
                    self._drop(f"worker fact: {exc}")
                    continue
                self.local(fact)
            elif doc.get("ask") in ("config", "term"):
                args = {k: doc.get(k) for k in ("ip", "name", "mac", "model")}
                if not all(isinstance(v, (str, type(None))) for v in args.values()) or not args["ip"]:
                    self._drop("worker question with bad fields")
                    continue
                load = (self.config(args["ip"], args["name"] or "", args["mac"]) if doc["ask"] == "config"
                        else self.term(args["ip"], args["name"] or "", args["model"] or ""))
                try:
                    sock.send(json.dumps({"id": doc.get("id"), "load": load}).encode())
                except OSError:
                    pass

    # ---- the tracker, under the lock ------------------------------------------------------------------
    def local(self, fact) -> None:
        """Apply a fact from this process (HTTP, the page poller, the command tail)."""
        with self.lock:
            self._drain_dhcp()
            self._apply(fact)

    def config(self, ip: str, name: str, mac: str | None = None) -> str | None:
        """The load a phone's config names, after the fact of its asking is applied."""
        with self.lock:
            self._drain_dhcp()
            self.counters["asked"] += 1
            load, out = self.tracker.config(ip, name, time.time(), mac)
            self._emit(out)
            return load

    def term(self, ip: str, term: str, model: str) -> str | None:
        with self.lock:
            self._drain_dhcp()
            load, out = self.tracker.term(ip, term, time.time(), model)
            self._emit(out)
            return load

    def _apply(self, fact) -> None:
        self.counters["facts"] += 1
        try:
            out = self.tracker.feed(fact)
        except Exception as exc:   # a bug costs one fact, never the tracker
            log.exception("tracker: fact %r not applied: %r", fact, exc)
            return
        self._emit(out)
        if not isinstance(fact, Lease):
            return
        if self.web is not None and fact.acked and fact.ip:
            self.web.poll(fact.mac.lower(), fact.ip)
        if self.neighbours is not None:
            for claim in self.neighbours.on_lease(fact.mac.lower()):   # before the config this lease causes
                self._apply(claim)

    def _emit(self, out: list[Output]) -> None:
        if not out:
            return
        rows, phones = [], {}
        for o in out:
            rows.append(to_event(o))
            p = self.tracker.phones.get(o.mac)
            if p is not None:
                phones[p.mac] = _row(p)
        self._writes.add([(rows, phones)])
        self._writes.wake()

    def page(self, mac: str, fields: dict[str, str]) -> None:
        """A DeviceInformationX page read (poll thread): the phone's word on its load, mapped to a load ID."""
        found = self.identify(fields) if self.identify else None
        if found is None:
            return
        self.local(LoadReported(time.time(), mac, found.load, found.raw, "web"))

    # ---- threads ------------------------------------------------------------------------------------
    def start(self) -> None:
        th = threading.Thread(target=self._serve, name="tracker-facts", daemon=True)
        th.start()
        self._threads.append(th)
        self._writes.start()

    def _serve(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=TICK_S):
                key.data(key.fileobj)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_S
                with self.lock:
                    try:
                        self._emit(self.tracker.tick(time.time()))
                    except Exception as exc:
                        log.exception("tracker tick: %r", exc)

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

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=5)
        self._writes.stop()
        if self.web is not None:
            self.web.close()
        self.sel.close()
        self.dgram.close()
        try:
            self.path.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("tracker socket %s not removed: %s", self.path, exc)


def _row(p: Phone) -> dict:
    return {"model": p.model or None, "ip": p.ip or None, "current_load": p.current, "target_load": p.target,
            "load_before": p.before,
            "plan": list(p.plan), "step": p.step, "state": p.state.value, "diagnosis": p.diagnosis or None,
            "hints": {"timeline": [list(t) for t in p.timeline], "memory": p.memory()}}


def outputs_words(out: list[Output]) -> list[str]:
    """Short text of outputs, for logs and tests."""
    words = []
    for o in out:
        if isinstance(o, PhoneChanged):
            words.append(f"{o.mac} {o.state.value}: {o.detail}")
        elif isinstance(o, LoadLearned):
            words.append(f"{o.mac} runs {o.load} ({o.how})")
    return words
