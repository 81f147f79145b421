"""The `events` table: the bus between services and the station's history.

Any service appends facts (appliance/events.py names the kinds); the API appends commands
("forget this lease", "rescan firmware", "retry this phone") that the owning service tails with
`commands_after` and executes.

Bounded (README.md): an event's data is at most MAX_DATA bytes of JSON when appended, whatever a client
sent (strings cut to MAX_TEXT characters, lists to MAX_ITEMS, then to SHORT_TEXT if still too big), and
`prune` keeps the newest MAX_ROWS events of the last MAX_AGE_S.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, TypedDict

from .database import PRUNE_BATCH, PRUNE_BATCHES, PRUNE_PAUSE_S, Database, dumps, loads

EventTuple = tuple[float, str, str, "str | None", dict]

MAX_ROWS = 50_000              # a bench of 300 phones makes ~100 events each per recovery: one full bench kept
MAX_AGE_S = 30 * 86400.0
MAX_DATA = 1024                # bytes of an event's data as stored (JSON); a real event's is under 300
MAX_TEXT = 256                 # characters of one string in it (a file name a client asks for)
SHORT_TEXT = 48                # ... and when the data is still over MAX_DATA
MAX_ITEMS = 32                 # items of one list or object in it
MAX_DEPTH = 4


def bounded(value: Any, text: int = MAX_TEXT, depth: int = MAX_DEPTH) -> Any:
    """`value` with strings cut to `text` characters, lists and objects to MAX_ITEMS, nesting to `depth`."""
    if isinstance(value, str):
        return value if len(value) <= text else value[:text - 3] + "..."
    if isinstance(value, dict):
        return {bounded(str(k), text): bounded(v, text, depth - 1)
                for k, v in list(value.items())[:MAX_ITEMS]} if depth else {}
    if isinstance(value, (list, tuple)):
        return [bounded(v, text, depth - 1) for v in value[:MAX_ITEMS]] if depth else []
    return value


def stored(data: dict) -> str:
    """An event's data as the JSON stored: at most MAX_DATA bytes, cut harder (or to a marker) if need be."""
    for text in (MAX_TEXT, SHORT_TEXT):
        out = dumps(bounded(data, text))
        if len(out) <= MAX_DATA:
            return out
    return dumps({"truncated": True})


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
        rows = [(ts, source, kind, mac, stored(data)) for ts, source, kind, mac, data in events]
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

    def prune(self, now: float, keep: int = MAX_ROWS, max_age: float = MAX_AGE_S, batch: int = PRUNE_BATCH,
              pause: float = PRUNE_PAUSE_S, max_batches: int = PRUNE_BATCHES) -> int:
        """Delete the events beyond the newest `keep` and those older than `max_age`, oldest first, in short
        transactions (Database.prune_oldest); returns how many.  Ids keep growing, so cursors stay valid."""
        return self._db.prune_oldest("events", keep, "ts", now - max_age, batch, pause, max_batches)

    def count(self) -> int:
        row = self._db.row("SELECT COUNT(*) AS n FROM events")
        return int(row["n"]) if row else 0

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
