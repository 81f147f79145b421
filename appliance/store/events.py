"""The `events` table: the bus between services and the station's history.

Any service appends facts (appliance/events.py names the kinds); the API appends commands
("forget this lease", "rescan firmware", "retry this phone") that the owning service tails with
`commands_after` and executes.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, TypedDict

from .database import Database, dumps, loads

EventTuple = tuple[float, str, str, "str | None", dict]


class EventRow(TypedDict):
    id: int
    ts: float
    source: str
    kind: str
    mac: str | None
    data: dict[str, Any]


class Events:
    def __init__(self, db: Database):
        self._db = db

    def _typed(self, rows: list) -> list[EventRow]:
        return [EventRow(id=r["id"], ts=r["ts"], source=r["source"], kind=r["kind"], mac=r["mac"],
                         data=loads(r["data"], {})) for r in rows]

    def append(self, events: Iterable[EventTuple]) -> None:
        """Append (ts, source, kind, mac, data) tuples in one transaction."""
        rows = [(ts, source, kind, mac, dumps(data)) for ts, source, kind, mac, data in events]
        if rows:
            with self._db.transaction() as conn:
                conn.executemany("INSERT INTO events(ts, source, kind, mac, data) VALUES (?,?,?,?,?)", rows)

    def add(self, source: str, kind: str, mac: str | None = None, **data: Any) -> None:
        """Append one event stamped now."""
        self.append([(time.time(), source, kind, mac, data)])

    def after(self, last_id: int, limit: int = 1000, mac: str | None = None) -> list[EventRow]:
        """Events with id > `last_id`, oldest first, at most `limit` (one phone's only, with `mac`)."""
        if mac:
            rows = self._db.rows("SELECT * FROM events WHERE id > ? AND mac = ? ORDER BY id LIMIT ?", (last_id, mac, limit))
        else:
            rows = self._db.rows("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        return self._typed(rows)

    def last_id(self) -> int:
        row = self._db.row("SELECT COALESCE(MAX(id), 0) AS id FROM events")
        return int(row["id"]) if row else 0

    def commands_after(self, cursor: int, kinds: Iterable[str], limit: int = 1000) -> tuple[list[EventRow], int]:
        """Commands of `kinds` (appended for a service to execute) after `cursor`, and the next cursor.

        The next cursor is the newest id seen, hit or not, so each look reads only new rows (ids up to a
        visible MAX are all committed: one writer at a time).
        """
        kinds = list(kinds)
        newest = self.last_id()
        marks = ", ".join("?" for _ in kinds)
        found = self._typed(self._db.rows(
            f"SELECT * FROM events WHERE id > ? AND id <= ? AND kind IN ({marks}) ORDER BY id LIMIT ?",
            (cursor, newest, *kinds, limit)))
        return found, (found[-1]["id"] if len(found) == limit else max(cursor, newest))

    def timeline(self, mac: str, limit: int = 500) -> list[EventRow]:
        """A phone's last `limit` events, oldest first."""
        return self._typed(self._db.rows(
            "SELECT * FROM (SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?) ORDER BY id", (mac, limit)))
