"""Transfer records and FILE_* events: told to the recovery tracker at once, kept for history in the store.

Every request, finished transfer and miss is one fact for the tracker, sent
as it happens (`facts`: the worker's Channel, or the Hub's `local` in the
parent), so the tracker sees a phone's files in the order it asked for them.
For history, the send path only bumps integers on an in-memory record; a writer
thread upserts the changed records with `store.write_transfers` and appends the
queued events in one transaction each, so the database never sees a block.
The MAC comes from `SEP<MAC>` in the file name, else from the DHCP lease of the
client address (looked up once per address per LEASE_TTL, not per request).
Generated configs are not sent as facts here: asking for one is itself the
question the tracker answers (recovery/station.py), told once.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from typing import Callable

from .. import events as ev
from ..batch import BatchWriter
from ..firmware.names import Kind, classify
from ..recovery.facts import FileAsked, FileMissing, FileSent

log = logging.getLogger("tftp")

FLUSH_SECONDS = 1.0
LEASE_TTL = 5.0
MAX_QUEUE = 100_000
SEP_MAC = re.compile(r"(?:^|/)(?:CTL|ITL)?SEP([0-9A-Fa-f]{12})", re.IGNORECASE)


def mac_from_name(name: str) -> str | None:
    m = SEP_MAC.search(name or "")
    return m.group(1).lower() if m else None


class Transfer:
    __slots__ = ("key", "proto", "ip", "port", "mac", "file", "resolved", "bytes", "total", "started",
                 "result", "dirty", "ended")

    def __init__(self, key, proto, ip, port, mac, file, resolved, total, started):
        self.key, self.proto, self.ip, self.port, self.mac = key, proto, ip, port, mac
        self.file, self.resolved, self.total, self.started = file, resolved, total, started
        self.bytes, self.result, self.dirty, self.ended = 0, "running", True, None

    def record(self, now: float) -> dict:
        return {"key": self.key, "proto": self.proto, "client_ip": self.ip, "client_port": self.port,
                "mac": self.mac, "file": self.file, "bytes": self.bytes, "total": self.total,
                "started": self.started, "updated": now,
                "duration": (self.ended - self.started) if self.ended else None, "result": self.result}


class TransferLog:
    def __init__(self, store, source: str = "tftp", facts: Callable | None = None):
        """`facts(fact)`: where each file fact goes at once (the tracker), besides the store."""
        self.store = store
        self.source = source
        self.facts = facts
        self.lock = threading.Lock()
        self.running: dict[str, Transfer] = {}
        self.finished: list[Transfer] = []
        self.writer: BatchWriter[tuple] = BatchWriter(f"{source}-tracking", self._write, FLUSH_SECONDS,
                                                      limit=MAX_QUEUE, idle_writes=True)
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{time.time():.6f}"
        self._macs: dict[str, tuple[float, str | None]] = {}
        self.counters = {"complete": 0, "aborted": 0, "timeout": 0, "not found": 0, "refused": 0, "bytes": 0}

    # -- lookups --------------------------------------------------------------------------------
    def mac_for(self, ip: str, name: str) -> str | None:
        mac = mac_from_name(name)
        if mac:
            return mac
        now = time.monotonic()
        cached = self._macs.get(ip)
        if cached and now - cached[0] < LEASE_TTL:
            return cached[1]
        try:
            lease = self.store.leases.at(ip)
            mac = lease["mac"] if lease else None
        except Exception as exc:
            log.warning("lease lookup for %s failed: %s", ip, exc)
            mac = None
        if len(self._macs) > 10_000:
            self._macs.clear()
        self._macs[ip] = (now, mac)
        return mac

    # -- producers (called from the serving loop) ------------------------------------------------
    def _tell(self, fact) -> None:
        if self.facts is None or classify(fact.name).kind == Kind.CONFIG:
            return
        try:
            self.facts(fact)
        except Exception as exc:  # the tracker being away must never stop a transfer
            log.warning("fact not told to the tracker: %r", exc)

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    def _event(self, kind: str, mac: str | None, data: dict, proto: str) -> None:
        self.writer.add([(time.time(), proto, kind, mac, data)])

    def begin(self, proto: str, ip: str, port: int, asked: str, resolved: str, total: int | None) -> Transfer:
        mac = self.mac_for(ip, asked)
        t = Transfer(f"{proto}-{self._prefix}-{next(self._ids)}", proto, ip, port, mac, asked, resolved, total,
                     time.time())
        with self.lock:
            self.running[t.key] = t
        self._tell(FileAsked(t.started, ip, asked, proto, mac))
        self._event(ev.FILE_REQUEST, mac, {"ip": ip, "mac": mac, "file": asked, "resolved": resolved,
                                           "total": total, "proto": proto}, proto)
        return t

    def end(self, t: Transfer, result: str, sent: int) -> None:
        t.bytes, t.result, t.ended, t.dirty = sent, result, time.time(), True
        with self.lock:
            self.running.pop(t.key, None)
            self.finished.append(t)
            self.counters[result] = self.counters.get(result, 0) + 1
            self.counters["bytes"] += sent
        self._tell(FileSent(t.ended, t.ip, t.file, t.proto, t.mac, result=result, bytes=sent, total=t.total))
        self._event(ev.FILE_DONE, t.mac, {"ip": t.ip, "mac": t.mac, "file": t.file, "resolved": t.resolved,
                                          "bytes": sent, "total": t.total, "duration": round(t.ended - t.started, 4),
                                          "result": result, "proto": t.proto}, t.proto)

    def failed(self, proto: str, ip: str, port: int, asked: str, result: str, reason: str = "") -> None:
        """A request that never became a transfer: "not found" or "refused"."""
        mac = self.mac_for(ip, asked)
        now = time.time()
        t = Transfer(f"{proto}-{self._prefix}-{next(self._ids)}", proto, ip, port, mac, asked, None, None, now)
        t.result, t.ended = result, now
        with self.lock:
            self.finished.append(t)
            self.counters[result] = self.counters.get(result, 0) + 1
        self._tell(FileAsked(now, ip, asked, proto, mac) if result != "not found" else FileMissing(now, ip, asked, proto, mac))
        if result == "not found":
            self._event(ev.FILE_NOT_FOUND, mac, {"ip": ip, "mac": mac, "file": asked, "proto": proto}, proto)
        else:
            self._event(ev.FILE_REFUSED, mac, {"ip": ip, "mac": mac, "file": asked, "reason": reason,
                                               "proto": proto}, proto)

    def malformed(self, ip: str, reason: str, proto: str = "tftp") -> None:
        self._event(ev.FILE_MALFORMED, None, {"ip": ip, "reason": reason, "proto": proto}, proto)

    # -- writer ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()

    def flush(self) -> None:
        self.writer.flush()

    def _write(self, events: list[tuple]) -> None:
        """One pass of the batch writer: finished and progressed transfers, then the queued events."""
        now = time.time()
        with self.lock:
            finished, self.finished = self.finished, []
            running = list(self.running.values())
        records = [t.record(now) for t in finished]
        records += [t.record(now) for t in running if t.dirty]
        for t in running:
            t.dirty = False
        try:
            if records:
                self.store.transfers.write(records)
            if events:
                self.store.events.append(events)
        except Exception as exc:
            log.warning("transfers/events not recorded (%d/%d): %s", len(records), len(events), exc)
            self.writer.requeue(events)
            with self.lock:
                self.finished[:0] = finished
