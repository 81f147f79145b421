"""The `kv` table: small shared facts as JSON.  Owner: the DHCP service (`dhcp.status`, `dhcp.guard`)."""
from __future__ import annotations

import time
from typing import Any

from .database import Database, dumps, loads


class KeyValues:
    def __init__(self, db: Database):
        self._db = db

    def put(self, key: str, value: Any) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO kv(key, value, updated) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                         "value=excluded.value, updated=excluded.updated", (key, dumps(value), time.time()))

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.row("SELECT value FROM kv WHERE key = ?", (key,))
        return loads(row["value"], default) if row else default
