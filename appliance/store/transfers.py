"""The `transfers` table.  Owner: the file service (appliance/tftp/), TFTP and HTTP :6970 alike.

A transfer record is upserted by its producer's `key`, so progress updates can be sparse and batched:
the database never sees a block.

Bounded (README.md): a file name is cut to MAX_NAME characters when written, and `prune` keeps the newest
MAX_ROWS transfers started in the last MAX_AGE_S.  A running transfer pruned under a flood comes back
with its next progress update (the upsert inserts what is missing).
"""
from __future__ import annotations

import time
from typing import Any, Iterable, TypedDict

from .database import PRUNE_BATCH, PRUNE_BATCHES, PRUNE_PAUSE_S, Database

MAX_ROWS = 20_000              # a bench of 300 phones fetches ~20 files each per recovery: three benches kept
MAX_AGE_S = 30 * 86400.0
MAX_NAME = 256                 # characters of a file name kept (a real one is under 64; HTTP allows 64 KiB)

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
        records = [{**r, "file": _name(r["file"])} if isinstance(r.get("file"), str) else r for r in records]
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

    def prune(self, now: float, keep: int = MAX_ROWS, max_age: float = MAX_AGE_S, batch: int = PRUNE_BATCH,
              pause: float = PRUNE_PAUSE_S, max_batches: int = PRUNE_BATCHES) -> int:
        """Delete the transfers beyond the newest `keep` and those started more than `max_age` ago, oldest
        first, in short transactions (Database.prune_oldest); returns how many.  Owner only: the file service."""
        return self._db.prune_oldest("transfers", keep, "started", now - max_age, batch, pause, max_batches)

    def count(self) -> int:
        row = self._db.row("SELECT COUNT(*) AS n FROM transfers")
        return int(row["n"]) if row else 0

    def count_by_result(self) -> list[dict]:
        return [dict(r) for r in self._db.rows("SELECT proto, result, COUNT(*) AS n, COALESCE(SUM(bytes),0) AS b "
                                               "FROM transfers GROUP BY proto, result")]


def _name(file: str) -> str:
    return file if len(file) <= MAX_NAME else file[:MAX_NAME - 3] + "..."
