"""The `leases` and `conflicts` tables.  Owner: the DHCP service (appliance/dhcp/), the only writer.

DHCP's LeaseBook (appliance/dhcp/leases.py) keeps the leases in memory and hands its changes to
`save_changes` before the ACK that depends on them leaves; others only read.  The API's "forget this
lease" is a LEASE_FORGET command on the events bus that DHCP executes.
"""
from __future__ import annotations

from typing import Any, TypedDict

from .database import Database


class LeaseRow(TypedDict):
    mac: str
    ip: str
    state: str          # offered | bound | released | declined
    expires: float
    hostname: str | None
    vendor_class: str | None
    client_id: str | None
    prl: str | None
    updated: float


class ConflictRow(TypedDict):
    ip: str
    until: float


def _lease(row: Any) -> LeaseRow:
    return LeaseRow(mac=row["mac"], ip=row["ip"], state=row["state"], expires=row["expires"], hostname=row["hostname"],
                    vendor_class=row["vendor_class"], client_id=row["client_id"], prl=row["prl"],
                    updated=row["updated"])


class Leases:
    def __init__(self, db: Database):
        self._db = db

    def all(self) -> list[LeaseRow]:
        return [_lease(r) for r in self._db.rows("SELECT * FROM leases ORDER BY ip")]

    def at(self, ip: str) -> LeaseRow | None:
        row = self._db.row("SELECT * FROM leases WHERE ip = ?", (ip,))
        return _lease(row) if row else None

    def of(self, mac: str) -> LeaseRow | None:
        row = self._db.row("SELECT * FROM leases WHERE mac = ?", (mac,))
        return _lease(row) if row else None

    def count_by_state(self) -> list[dict]:
        return [dict(r) for r in self._db.rows("SELECT state, COUNT(*) AS n FROM leases GROUP BY state")]

    def book(self) -> tuple[list[LeaseRow], list[ConflictRow]]:
        """(leases, conflicts) as DHCP's LeaseBook loads them at start."""
        return ([_lease(r) for r in self._db.rows("SELECT * FROM leases")],
                [ConflictRow(ip=r["ip"], until=r["until"]) for r in self._db.rows("SELECT ip, until FROM conflicts")])

    def save_changes(self, changes: list[tuple[str, tuple]]) -> None:
        """Apply LeaseBook changes in one write transaction.

        Args:
            changes: ("upsert", (lease,)) with a dhcp.leases.Lease, ("forget", (mac,)), or
                ("conflict", (ip, until, reason, mac)).
        Raises:
            sqlite3.Error: nothing was written (DHCP then withholds the ACKs that needed it).
        """
        with self._db.transaction() as c:
            for op, args in changes:
                if op == "upsert":
                    lease = args[0]
                    c.execute("DELETE FROM leases WHERE ip = ? AND mac <> ?", (lease.ip, lease.mac))
                    c.execute(
                        "INSERT INTO leases(mac, ip, state, expires, hostname, vendor_class, client_id, prl, updated) "
                        "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(mac) DO UPDATE SET ip=excluded.ip, "
                        "state=excluded.state, expires=excluded.expires, hostname=excluded.hostname, "
                        "vendor_class=excluded.vendor_class, client_id=excluded.client_id, prl=excluded.prl, "
                        "updated=excluded.updated",
                        (lease.mac, lease.ip, lease.state, lease.expires, lease.hostname, lease.vendor_class,
                         lease.client_id, lease.prl, lease.updated))
                elif op == "forget":
                    c.execute("DELETE FROM leases WHERE mac = ?", args)
                elif op == "conflict":
                    c.execute("INSERT INTO conflicts(ip, until, reason, mac) VALUES (?,?,?,?) ON CONFLICT(ip) DO "
                              "UPDATE SET until=excluded.until, reason=excluded.reason, mac=excluded.mac", args)
                else:
                    raise ValueError(f"unknown lease change {op!r}")
