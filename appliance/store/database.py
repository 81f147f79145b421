"""The SQLite connection every repository shares: one per thread, WAL, short IMMEDIATE write transactions.

Only the repositories in this package hold a `Database`; nothing outside `appliance.store` sees SQL or a
connection (tests/test_layout.py checks it).  If the state dir cannot be written, the database opens
read-only and `read_only` names the cause: the file service keeps serving phones from what it can read,
and every write still raises sqlite3.OperationalError, so nothing pretends to be durable.
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

from .schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000
# Page cache per connection (SQLite default 2 MiB): every thread of every service has one, and the
# OS page cache already holds the small database; this keeps the station inside a Pi's 512 MB.
CACHE_KIB = 256
# Pruning: rows per transaction (~1.5 ms on the 2-CPU bench machine, so a writer waits that long at most),
# the pause between two, and how many per call (one call per heartbeat: 50,000 rows every 2 s at most).
PRUNE_BATCH = 500
PRUNE_PAUSE_S = 0.005
PRUNE_BATCHES = 100


def loads(text: str | None, default: Any) -> Any:
    """A JSON column's value; `default` for an empty or unreadable one."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


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


class Database:
    """Thread-safe handle on the station database file (one connection per thread)."""

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
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, taken IMMEDIATE so concurrent writers queue, not fail.

        Nested on one thread, the inner block joins the outer transaction: `Store.atomic()` groups
        writes of several repositories into one commit this way.
        """
        conn = self._conn()
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield conn
            finally:
                self._local.depth = depth
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def row(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, tuple(params)).fetchone()

    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def journal_mode(self) -> str:
        return str(self._conn().execute("PRAGMA journal_mode").fetchone()[0])

    def prune_oldest(self, table: str, keep: int, age_column: str, before: float, batch: int, pause: float,
                     max_batches: int) -> int:
        """Delete `table`'s oldest rows (by its AUTOINCREMENT id) beyond the newest `keep`, and those whose
        `age_column` is older than `before`, in transactions of at most `batch` rows.

        Ids only grow, so "the id is within `keep` of the newest" is a hard bound on the rows kept, found without
        a scan; the age is read only in the oldest `batch` rows each time (ids follow time), stopping at the
        first young one.  Between transactions it sleeps `pause` so other writers (DHCP's group commit, the
        file service's batch writer) take the lock; at most `max_batches` per call, the rest at the next.
        Returns the rows deleted.
        """
        if table not in ("events", "transfers") or age_column not in ("ts", "started"):
            raise ValueError(f"not a bounded table: {table}.{age_column}")
        deleted = 0
        for n in range(max_batches):
            ends = self.row(f"SELECT MIN(id) AS lo, MAX(id) AS hi FROM {table}")
            if ends is None or ends["lo"] is None:
                break
            lo, hi = int(ends["lo"]), int(ends["hi"])
            upto = min(hi - keep, lo + batch - 1)
            old = self.row(f"SELECT MAX(id) AS id FROM (SELECT id, {age_column} AS t FROM {table} "
                           f"WHERE id <= ? ORDER BY id LIMIT ?) WHERE t < ?", (lo + batch - 1, batch, before))
            if old is not None and old["id"] is not None:
                upto = max(upto, int(old["id"]))
            if upto < lo:
                break
            if n:
                time.sleep(pause)
            with self.transaction() as conn:
                deleted += conn.execute(f"DELETE FROM {table} WHERE id <= ?", (upto,)).rowcount
        return deleted

    def size(self) -> int:
        """Bytes on disk: the database file and its WAL."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total

    def migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
