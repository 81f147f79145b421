"""The `transfers` table.  Owner: the file service (appliance/tftp/), TFTP and HTTP :6970 alike.

A transfer record is upserted by its producer's `key`, so progress updates can be sparse and batched:
the database never sees a block.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, TypedDict

from .database import Database

FIELDS = ("proto", "client_ip", "client_port", "mac", "file", "bytes", "total", "started", "updated", "duration",
          "result")


class TransferRow(TypedDict):
    id: int
    key: str | None
    proto: str              # tftp | http
    client_ip: str
    client_port: int | None
    mac: str | None
    file: str
    bytes: int
    total: int | None
    started: float
    updated: float
    duration: float | None
    result: str             # running | complete | aborted | timeout | not found | refused


class Transfers:
    def __init__(self, db: Database):
        self._db = db

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Upsert transfer records by their `key` in one transaction; absent fields keep their stored value."""
        records = list(records)
        if not records:
            return
        now = time.time()
        inserts = [(r["key"], r.get("proto") or "tftp", r.get("client_ip") or "", r.get("file") or "",
                    r.get("started") or now, r.get("updated") or now) for r in records]
        sets = ", ".join(f"{f} = COALESCE(?, {f})" for f in FIELDS)
        updates = [(*(r.get(f) for f in FIELDS), r["key"]) for r in records]
        with self._db.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO transfers(key, proto, client_ip, file, started, updated) "
                             "VALUES (?,?,?,?,?,?)", inserts)
            conn.executemany(f"UPDATE transfers SET {sets} WHERE key = ?", updates)

    def recent(self, mac: str | None = None, limit: int = 200, running_only: bool = False) -> list[TransferRow]:
        """Newest first: all, one phone's (`mac`), or only those still running."""
        where, params = [], []
        if mac:
            where.append("mac = ?")
            params.append(mac)
        if running_only:
            where.append("result = 'running'")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.rows(f"SELECT * FROM transfers {clause} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [TransferRow(**dict(r)) for r in rows]     # type: ignore[typeddict-item]

    def count_by_result(self) -> list[dict]:
        return [dict(r) for r in self._db.rows("SELECT proto, result, COUNT(*) AS n, COALESCE(SUM(bytes),0) AS b "
                                               "FROM transfers GROUP BY proto, result")]
