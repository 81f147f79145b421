"""The `phones` table.  Owner: the recovery hub (appliance/recovery/hub.py) in the file service.

One row per phone the station has seen: what the tracker knows (model, loads, plan, state, diagnosis)
for the API, the dashboard and the report, and for the tracker's restore after a restart.
"""
from __future__ import annotations

import time
from typing import Any, TypedDict

from .database import Database, dumps, loads

JSON_COLUMNS = {"plan": [], "hints": {}}


class PhoneRow(TypedDict):
    mac: str
    model: str | None
    ip: str | None
    hostname: str | None
    vendor_class: str | None
    first_seen: float
    last_seen: float
    load_before: str | None
    current_load: str | None
    target_load: str | None
    plan: list[str]
    step: int
    state: str
    diagnosis: str | None
    hints: dict[str, Any]
    updated: float


def _phone(row: Any) -> PhoneRow:
    d = dict(row)
    for key, default in JSON_COLUMNS.items():
        d[key] = loads(d[key], default)
    return PhoneRow(**d)    # type: ignore[typeddict-item]


class Phones:
    def __init__(self, db: Database):
        self._db = db

    def get(self, mac: str) -> PhoneRow | None:
        row = self._db.row("SELECT * FROM phones WHERE mac = ?", (mac,))
        return _phone(row) if row else None

    def all(self) -> list[PhoneRow]:
        return [_phone(r) for r in self._db.rows("SELECT * FROM phones ORDER BY first_seen, mac")]

    def mac_at(self, ip: str) -> str | None:
        """The phone last seen at an address (for an address with no lease)."""
        row = self._db.row("SELECT mac FROM phones WHERE ip = ? ORDER BY last_seen DESC", (ip,))
        return row["mac"] if row else None

    def count_by_state(self) -> list[dict]:
        return [dict(r) for r in self._db.rows("SELECT state, COUNT(*) AS n FROM phones GROUP BY state")]

    def upsert(self, mac: str, **fields: Any) -> None:
        """Create the phone row if new, then set `fields` (plan and hints as Python objects).

        Raises:
            KeyError: a field that is not a column of the table.
        """
        unknown = set(fields) - set(PhoneRow.__annotations__)
        if unknown:
            raise KeyError(f"not columns of phones: {sorted(unknown)}")
        now = time.time()
        for key in JSON_COLUMNS:
            if key in fields and not isinstance(fields[key], str):
                fields[key] = dumps(fields[key])
        fields.setdefault("last_seen", now)
        fields["updated"] = now
        with self._db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO phones(mac, first_seen, last_seen, updated) VALUES (?,?,?,?)",
                      (mac, now, now, now))
            cols = ", ".join(f"{k} = ?" for k in fields)
            c.execute(f"UPDATE phones SET {cols} WHERE mac = ?", (*fields.values(), mac))
