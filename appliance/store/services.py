"""The `services` table.  Owner: each service writes its own row through appliance/service.py.

A heartbeat every few seconds with live figures, and the last error a service survived, so the status
API can say which service is alive and what went wrong.
"""
from __future__ import annotations

import time
from typing import Any, TypedDict

from .database import Database, dumps, loads


class ServiceRow(TypedDict):
    name: str
    pid: int | None
    started: float | None
    heartbeat: float | None
    last_error: str | None
    last_error_at: float | None
    info: dict[str, Any]


class Services:
    def __init__(self, db: Database):
        self._db = db

    def beat(self, name: str, pid: int, info: dict | None = None, started: float | None = None) -> None:
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO services(name, pid, started, heartbeat, info) VALUES (?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET pid=excluded.pid, heartbeat=excluded.heartbeat, "
                "info=excluded.info, started=COALESCE(?, services.started)",
                (name, pid, started or now, now, dumps(info or {}), started),
            )

    def error(self, name: str, message: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO services(name, last_error, last_error_at) VALUES (?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET last_error=excluded.last_error, last_error_at=excluded.last_error_at",
                (name, message[:2000], time.time()),
            )

    def all(self) -> list[ServiceRow]:
        return [ServiceRow(**dict(row, info=loads(row["info"], {})))    # type: ignore[typeddict-item]
                for row in self._db.rows("SELECT * FROM services ORDER BY name")]
