"""Transfer records and FILE_* events: told to the recovery tracker at once, kept for history in the store.

Every admitted request, finished transfer and miss is one fact for the
recovery core, sent as it happens (`facts`: the worker's Channel, or the
Hub's `post` in the parent), so the core sees a phone's files in the order it
asked for them; whether a fact is about a phone is the core's call
(recovery/identity.py), never this module's.  A refused request (busy,
unservable name, write) is no fact.
For history, the send path only bumps integers on an in-memory record; a writer
thread upserts the changed records with `store.write_transfers` and appends the
queued events in one transaction each, so the database never sees a block.
The MAC on a transfer record, for the dashboard's progress, is the phone the
core's table places at the client address (recovery/answers.py), and none
when the name carries another MAC.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import Callable

from .. import events as ev
from ..batch import BatchWriter
from ..firmware.names import classify
from ..recovery.answers import AnswerTable
from ..recovery.facts import MAX_TEXT as MAX_AGENT
from ..recovery.facts import FileAsked, FileMissing, FileSent
from ..text import clean

log = logging.getLogger("tftp")

FLUSH_SECONDS = 1.0
MAX_QUEUE = 100_000
def mac_from_name(name: str) -> str | None:
    """The MAC a requested name carries (SEP<MAC>..., CTLSEP<MAC>.tlv, SIP<MAC>.cnf), lower case, or None."""
    return classify(name or "").mac


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
    def __init__(self, store, source: str = "tftp", facts: Callable | None = None, table: AnswerTable | None = None):
        """`facts(fact)`: where each file fact goes at once (the core), besides the store; `table`: the core's
        answer table (which phone is at which address), for the MAC on transfer records."""
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
        self.table = table
        self.counters = {"complete": 0, "aborted": 0, "timeout": 0, "not found": 0, "refused": 0, "bytes": 0}

    # -- lookups --------------------------------------------------------------------------------
    def mac_for(self, ip: str, name: str) -> str | None:
        """The phone this transfer is for, as the core's table says: the one at `ip`, unless the name is another's."""
        named = mac_from_name(name)
        row = self.table.at(ip) if self.table is not None else None
        if row is None:
            return None
        return row.mac if named is None or named == row.mac else None

    # -- producers (called from the serving loop) ------------------------------------------------
    def _tell(self, fact) -> None:
        if self.facts is None:
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

    def begin(self, proto: str, ip: str, port: int, asked: str, resolved: str, total: int | None,
              names: str | None = None, agent: str | None = None) -> Transfer:
        """An admitted transfer starts (`names`: the load a generated config or term file names; `agent`: an HTTP
        request's User-Agent, told to the core cleaned and cut to what a fact may carry)."""
        mac = self.mac_for(ip, asked)
        t = Transfer(f"{proto}-{self._prefix}-{next(self._ids)}", proto, ip, port, mac, asked, resolved, total,
                     time.time())
        with self.lock:
            self.running[t.key] = t
        said = clean(agent, MAX_AGENT) if agent else None
        if said is not None and not (said.isascii() and said.isprintable()):
            said = None        # the core refuses such a fact whole: the request must still count, the agent need not
        self._tell(FileAsked(t.started, ip, asked, proto, mac, served=names, agent=said))
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
        if result == "not found":
            self._tell(FileMissing(now, ip, asked, proto, mac))
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
