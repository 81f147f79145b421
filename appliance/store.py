"""The shared store: one SQLite database in WAL mode that every service opens.

Each service process owns one `Store`.  Writes are short `BEGIN IMMEDIATE`
transactions with a busy timeout, so several processes can write at once and
none loses a row.  Hot paths (TFTP blocks, DHCP packets) never write per
packet: they batch through `write_many`/`append_events`.

The `events` table is the bus between services: DHCP and the file service
append facts (see `appliance.events`), the recovery tracker tails them by id.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

BUSY_TIMEOUT_MS = 10_000
# Page cache per connection (SQLite default 2 MiB): every thread of every service has one, and the
# OS page cache already holds the small database; this keeps the station inside a Pi's 512 MB.
CACHE_KIB = 256

# Each entry migrates the schema from version i to i+1.  Never edit a shipped
# entry; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE leases (
        mac TEXT PRIMARY KEY,
        ip TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,            -- offered | bound | released | declined
        expires REAL NOT NULL,
        hostname TEXT,
        vendor_class TEXT,
        client_id TEXT,
        prl TEXT,                       -- option 55 as comma-separated codes
        updated REAL NOT NULL
    );
    CREATE TABLE conflicts (
        ip TEXT PRIMARY KEY,
        until REAL NOT NULL,
        reason TEXT NOT NULL,
        mac TEXT
    );
    CREATE TABLE phones (
        mac TEXT PRIMARY KEY,
        model TEXT,
        ip TEXT,
        hostname TEXT,
        vendor_class TEXT,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        load_before TEXT,               -- load the phone ran when first seen, once known
        current_load TEXT,
        target_load TEXT,
        plan TEXT NOT NULL DEFAULT '[]', -- JSON list of load IDs, stones first
        step INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'seen',
        diagnosis TEXT,
        hints TEXT NOT NULL DEFAULT '{}', -- JSON: tracker's private memory
        updated REAL NOT NULL
    );
    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT UNIQUE,                -- producer's id, so progress updates upsert
        proto TEXT NOT NULL,            -- tftp | http
        client_ip TEXT NOT NULL,
        client_port INTEGER,
        mac TEXT,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        total INTEGER,
        started REAL NOT NULL,
        updated REAL NOT NULL,
        duration REAL,
        result TEXT NOT NULL DEFAULT 'running' -- running|complete|aborted|timeout|not found|refused
    );
    CREATE INDEX transfers_mac ON transfers(mac, started);
    CREATE INDEX transfers_result ON transfers(result);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        source TEXT NOT NULL,           -- dhcp | tftp | http | dns | api | tracker | ...
        kind TEXT NOT NULL,
        mac TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_mac ON events(mac, id);
    CREATE TABLE services (
        name TEXT PRIMARY KEY,
        pid INTEGER,
        started REAL,
        heartbeat REAL,
        last_error TEXT,
        last_error_at REAL,
        info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated REAL NOT NULL
    );
    """,
]


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def unwritable_cause(path: Path, exc: BaseException | None = None) -> str | None:
    """Why the database at `path` cannot be written (read-only mount, permissions, full disk), else None.

    None for anything else (a locked database, a corrupt file): those must still raise, not degrade.
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            return f"no write permission on {target}"
    text = str(exc or "").lower()
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
        return os.strerror(exc.errno).lower()
    if "full" in text:
        return "disk full"
    if "readonly" in text or "read-only" in text:
        return "read-only database"
    return None


class Store:
    """Thread-safe handle on the station database (one connection per thread).

    If the state dir cannot be written (mounted read-only, full before the schema
    exists), the store opens read-only instead of raising and `read_only` names
    the cause: the file service must keep serving phones from what it can read.
    Every write then raises sqlite3.OperationalError as before, so nothing
    pretends to be durable (DHCP withholds its ACKs).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self.read_only: str | None = None
        self._ro_uri: str | None = None
        # Checked first: SQLite quietly opens a write-protected file read-only, and a second open in a
        # process that already reads it can even get through the schema check.
        cause = unwritable_cause(self.path)
        if cause:
            self._open_read_only(cause)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.migrate()
        except (sqlite3.OperationalError, OSError) as exc:
            cause = unwritable_cause(self.path, exc)
            if cause is None:
                raise
            self.close()
            self._open_read_only(f"{cause} ({exc})")

    def _open_read_only(self, cause: str) -> None:
        """Read the existing database without locks or WAL writes; an empty migrated in-memory one if unusable."""
        self.read_only = cause
        self._ro_uri = ":memory:"
        if self.path.exists():
            for query in ("mode=ro", "mode=ro&immutable=1"):
                uri = f"{self.path.resolve().as_uri()}?{query}"
                try:
                    conn = sqlite3.connect(uri, uri=True)
                    try:
                        version = conn.execute("PRAGMA user_version").fetchone()[0]
                    finally:
                        conn.close()
                except sqlite3.Error:
                    continue
                if version == len(MIGRATIONS):
                    self._ro_uri = uri
                break

    # -- connection handling -------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self._ro_uri is not None:
            conn = sqlite3.connect(self._ro_uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            if self._ro_uri == ":memory:":
                for script in MIGRATIONS:
                    conn.executescript(script)
                conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._local.conn = conn
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction; taken IMMEDIATE so concurrent writers queue, not fail."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def query_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, tuple(params)).fetchone()

    def schema_version(self) -> int:
        return self._conn().execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    # -- events ----------------------------------------------------------------
    def append_events(self, events: Iterable[tuple[float, str, str, str | None, dict]]) -> None:
        """Append (ts, source, kind, mac, data) tuples in one transaction."""
        rows = [(ts, source, kind, mac, json.dumps(data, default=str)) for ts, source, kind, mac, data in events]
        if rows:
            with self.write() as conn:
                conn.executemany("INSERT INTO events(ts, source, kind, mac, data) VALUES (?,?,?,?,?)", rows)

    def event(self, source: str, kind: str, mac: str | None = None, **data: Any) -> None:
        self.append_events([(time.time(), source, kind, mac, data)])

    def events_after(self, last_id: int, limit: int = 1000, mac: str | None = None) -> list[dict]:
        if mac:
            rows = self.query("SELECT * FROM events WHERE id > ? AND mac = ? ORDER BY id LIMIT ?", (last_id, mac, limit))
        else:
            rows = self.query("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        return [dict(row, data=_loads(row["data"], {})) for row in rows]

    def last_event_id(self) -> int:
        row = self.query_one("SELECT COALESCE(MAX(id), 0) AS id FROM events")
        return int(row["id"]) if row else 0

    def requests_after(self, cursor: int, kinds: Iterable[str], limit: int = 1000) -> tuple[list[dict], int]:
        """Requests of `kinds` (what the API appended for a service to act on) after `cursor`, and the
        cursor for the next look: the newest id seen, hit or not, so each look reads only new rows (ids up
        to a visible MAX are all committed: one writer at a time)."""
        kinds = list(kinds)
        newest = self.last_event_id()
        marks = ", ".join("?" for _ in kinds)
        rows = self.query(f"SELECT * FROM events WHERE id > ? AND id <= ? AND kind IN ({marks}) ORDER BY id LIMIT ?",
                          (cursor, newest, *kinds, limit))
        found = [dict(row, data=_loads(row["data"], {})) for row in rows]
        return found, (found[-1]["id"] if len(found) == limit else max(cursor, newest))

    def timeline(self, mac: str, limit: int = 500) -> list[dict]:
        """A phone's last `limit` events, oldest first."""
        rows = self.query("SELECT * FROM (SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                          (mac, limit))
        return [dict(row, data=_loads(row["data"], {})) for row in rows]

    def counts(self) -> dict[str, list[dict]]:
        """Rows for /metrics: phones by state, transfers by protocol and result (with bytes), leases by state."""
        return {
            "phones": [dict(r) for r in self.query("SELECT state, COUNT(*) AS n FROM phones GROUP BY state")],
            "transfers": [dict(r) for r in self.query("SELECT proto, result, COUNT(*) AS n, COALESCE(SUM(bytes),0) "
                                                      "AS b FROM transfers GROUP BY proto, result")],
            "leases": [dict(r) for r in self.query("SELECT state, COUNT(*) AS n FROM leases GROUP BY state")],
        }

    # -- services ----------------------------------------------------------------
    def heartbeat(self, name: str, pid: int, info: dict | None = None, started: float | None = None) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO services(name, pid, started, heartbeat, info) VALUES (?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET pid=excluded.pid, heartbeat=excluded.heartbeat, "
                "info=excluded.info, started=COALESCE(?, services.started)",
                (name, pid, started or now, now, json.dumps(info or {}), started),
            )

    def service_error(self, name: str, message: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO services(name, last_error, last_error_at) VALUES (?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET last_error=excluded.last_error, last_error_at=excluded.last_error_at",
                (name, message[:2000], time.time()),
            )

    def services(self) -> list[dict]:
        return [dict(row, info=_loads(row["info"], {})) for row in self.query("SELECT * FROM services ORDER BY name")]

    # -- key/value (small shared facts: guard status, catalog generation) ---------
    def put(self, key: str, value: Any) -> None:
        with self.write() as conn:
            conn.execute("INSERT INTO kv(key, value, updated) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                         "value=excluded.value, updated=excluded.updated", (key, json.dumps(value, default=str), time.time()))

    def get(self, key: str, default: Any = None) -> Any:
        row = self.query_one("SELECT value FROM kv WHERE key = ?", (key,))
        return _loads(row["value"], default) if row else default

    # -- phones ----------------------------------------------------------------------
    PHONE_JSON = {"plan": [], "hints": {}}

    def phone(self, mac: str) -> dict | None:
        row = self.query_one("SELECT * FROM phones WHERE mac = ?", (mac,))
        return self._phone_dict(row) if row else None

    def phones(self) -> list[dict]:
        return [self._phone_dict(r) for r in self.query("SELECT * FROM phones ORDER BY first_seen, mac")]

    def _phone_dict(self, row: sqlite3.Row) -> dict:
        d = dict(row)
        for key, default in self.PHONE_JSON.items():
            d[key] = _loads(d[key], default)
        return d

    def upsert_phone(self, mac: str, conn: sqlite3.Connection | None = None, **fields: Any) -> None:
        """Create the phone row if new, then set `fields` (plan/hints given as Python objects)."""
        now = time.time()
        for key in self.PHONE_JSON:
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        fields.setdefault("last_seen", now)
        fields["updated"] = now

        def run(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR IGNORE INTO phones(mac, first_seen, last_seen, updated) VALUES (?,?,?,?)",
                      (mac, now, now, now))
            if fields:
                cols = ", ".join(f"{k} = ?" for k in fields)
                c.execute(f"UPDATE phones SET {cols} WHERE mac = ?", (*fields.values(), mac))

        if conn is not None:
            run(conn)
        else:
            with self.write() as c:
                run(c)

    # -- transfers ---------------------------------------------------------------------
    TRANSFER_FIELDS = ("proto", "client_ip", "client_port", "mac", "file", "bytes", "total", "started",
                       "updated", "duration", "result")

    def write_transfers(self, records: Iterable[dict]) -> None:
        """Upsert transfer records by their `key` in one transaction (the file service batches these).

        Fields absent from a record keep their stored value, so progress updates can be sparse.
        """
        records = list(records)
        if not records:
            return
        now = time.time()
        inserts = [(r["key"], r.get("proto") or "tftp", r.get("client_ip") or "", r.get("file") or "",
                    r.get("started") or now, r.get("updated") or now) for r in records]
        sets = ", ".join(f"{f} = COALESCE(?, {f})" for f in self.TRANSFER_FIELDS)
        updates = [(*(r.get(f) for f in self.TRANSFER_FIELDS), r["key"]) for r in records]
        with self.write() as conn:
            conn.executemany("INSERT OR IGNORE INTO transfers(key, proto, client_ip, file, started, updated) "
                             "VALUES (?,?,?,?,?,?)", inserts)
            conn.executemany(f"UPDATE transfers SET {sets} WHERE key = ?", updates)

    def transfers(self, mac: str | None = None, limit: int = 200, running_only: bool = False) -> list[dict]:
        where, params = [], []
        if mac:
            where.append("mac = ?")
            params.append(mac)
        if running_only:
            where.append("result = 'running'")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return [dict(r) for r in self.query(f"SELECT * FROM transfers {clause} ORDER BY id DESC LIMIT ?",
                                            (*params, limit))]

    # -- leases ------------------------------------------------------------------------------
    def leases(self) -> list[dict]:
        return [dict(r) for r in self.query("SELECT * FROM leases ORDER BY ip")]

    def lease_for_ip(self, ip: str) -> dict | None:
        row = self.query_one("SELECT * FROM leases WHERE ip = ?", (ip,))
        return dict(row) if row else None

    def lease_of(self, mac: str) -> dict | None:
        row = self.query_one("SELECT * FROM leases WHERE mac = ?", (mac,))
        return dict(row) if row else None

    def phone_mac_at(self, ip: str) -> str | None:
        """The phone last seen at an address (the phones table, for an address with no lease)."""
        row = self.query_one("SELECT mac FROM phones WHERE ip = ? ORDER BY last_seen DESC", (ip,))
        return row["mac"] if row else None

    def lease_book(self) -> tuple[list[dict], list[dict]]:
        """(leases, conflicts) as DHCP's LeaseBook loads them at start."""
        return ([dict(r) for r in self.query("SELECT * FROM leases")],
                [dict(r) for r in self.query("SELECT ip, until FROM conflicts")])

    def save_lease_changes(self, changes: list[tuple[str, tuple]], conn: sqlite3.Connection | None = None) -> None:
        """Apply LeaseBook changes ("upsert" lease, "forget" mac, "conflict" row) in one write transaction.
        DHCP owns the leases and conflicts tables: it is the only caller."""
        def run(c: sqlite3.Connection) -> None:
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

        if conn is not None:
            run(conn)
        else:
            with self.write() as c:
                run(c)

    def forget_lease(self, mac: str) -> bool:
        """Delete a lease (the API's "forget": DHCP drops it from memory on the LEASE_FORGET request)."""
        with self.write() as conn:
            return conn.execute("DELETE FROM leases WHERE mac = ?", (mac,)).rowcount > 0
