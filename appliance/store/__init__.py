"""The shared store: one SQLite database (WAL) that every service opens, one repository per table.

    store = Store(cfg.db_path)
    store.events.add("api", ev.LEASE_FORGET, mac)      # any service: facts and commands on the bus
    store.leases.of(mac)                               # anyone reads; only the owner writes

Each table has one owner, the only code that writes it (tests/test_store_owners.py holds the code to
this table); everyone else reads, and asks the owner for a change by appending a command event.
SQL lives only in this package (tests/test_layout.py).  Hot paths never write per packet: they batch
(`events.append`, `transfers.write`, `leases.save_changes`), and `atomic()` groups the writes of
several repositories into one transaction.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import events as events_table
from . import transfers as transfers_table
from .database import Database, unwritable_cause
from .events import EventRow, Events
from .kv import KeyValues
from .leases import ConflictRow, LeaseRow, Leases
from .phones import PhoneRow, Phones
from .schema import MIGRATIONS
from .services import ServiceRow, Services
from .transfers import TransferRow, Transfers

StoreError = sqlite3.Error
"""What any repository raises when the database cannot do what was asked (locked past the busy timeout,
read-only, corrupt): callers catch this, not sqlite3's own classes."""

# table -> (the package or module that alone writes it, why).  Events: every service appends.
OWNERS: dict[str, tuple[str, str]] = {
    "leases": ("appliance/dhcp", "a lease is stored before its ACK leaves; DHCP executes the API's LEASE_FORGET"),
    "conflicts": ("appliance/dhcp", "addresses found in use (ping, DECLINE) are the lease book's"),
    "kv": ("appliance/dhcp", "DHCP publishes its status and the rogue-server guard's verdict"),
    "phones": ("appliance/recovery/hub.py", "the recovery tracker's view of each phone, written by its hub"),
    "transfers": ("appliance/tftp", "the file service records every TFTP and HTTP transfer"),
    "services": ("appliance/service.py", "each service's heartbeat and last error, through its ServiceContext"),
}



@dataclass(frozen=True)
class Bound:
    """How much of a table is kept, and which service prunes it (on its heartbeat) and why that one."""
    rows: int
    age_s: float
    pruner: str          # the service name (`appliance serve NAME`)
    why: str


# Tables that grow with traffic; the rest are as big as the bench (leases, phones) or fixed (kv, services).
BOUNDS: dict[str, Bound] = {
    "transfers": Bound(transfers_table.MAX_ROWS, transfers_table.MAX_AGE_S, "tftp",
                       "its owner, the file service"),
    "events": Bound(events_table.MAX_ROWS, events_table.MAX_AGE_S, "tftp",
                    "every service appends, one deletes (two pruners would only contend for the lock): the file "
                    "service, the one always running (DHCP and DNS can be off) and the biggest writer (file facts, "
                    "the tracker's conclusions)"),
}

__all__ = ["Store", "StoreError", "OWNERS", "BOUNDS", "Bound", "MIGRATIONS",
           "unwritable_cause", "EventRow", "LeaseRow", "ConflictRow", "PhoneRow",
           "ServiceRow", "TransferRow"]


class Store:
    """Thread-safe handle on the station database (one connection per thread), one attribute per table.

    If the state dir cannot be written (mounted read-only, full before the schema exists), the store opens
    read-only instead of raising and `read_only` names the cause; every write then raises
    sqlite3.OperationalError, so nothing pretends to be durable (DHCP withholds its ACKs).
    """

    def __init__(self, path: str | Path):
        self._db = Database(path)
        self.path = self._db.path
        self.events = Events(self._db)
        self.leases = Leases(self._db)
        self.phones = Phones(self._db)
        self.transfers = Transfers(self._db)
        self.services = Services(self._db)
        self.kv = KeyValues(self._db)

    @property
    def read_only(self) -> str | None:
        """Why the database cannot be written, or None when it can."""
        return self._db.read_only

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group the writes made inside the block (any repositories, this thread) into one transaction.

        Raises:
            sqlite3.Error: from any write inside; nothing in the block is committed.
        """
        with self._db.transaction():
            yield

    def counts(self) -> dict[str, list[dict]]:
        """Rows for /metrics: phones by state, transfers by protocol and result (with bytes), leases by state."""
        return {"phones": self.phones.count_by_state(), "transfers": self.transfers.count_by_result(),
                "leases": self.leases.count_by_state()}

    def prune(self, service: str, now: float) -> dict[str, int]:
        """Bring the tables `service` prunes (BOUNDS) back within their bounds; {table: rows deleted}.

        Called from the service's heartbeat thread (appliance/service.py), never its loop; each table is cut
        in short transactions with pauses between them, so a flood's backlog costs other writers milliseconds.
        """
        done: dict[str, int] = {}
        for table, bound in BOUNDS.items():
            if bound.pruner == service:
                repo = self.events if table == "events" else self.transfers
                done[table] = repo.prune(now, keep=bound.rows, max_age=bound.age_s)
        return done

    def size(self) -> int:
        """Bytes on disk (database and WAL)."""
        return self._db.size()

    def schema_version(self) -> int:
        return self._db.schema_version()

    def journal_mode(self) -> str:
        return self._db.journal_mode()

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        self._db.close()
