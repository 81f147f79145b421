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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000
# Page cache per connection (SQLite default 2 MiB): every thread of every service has one, and the
# OS page cache already holds the small database; this keeps the station inside a Pi's 512 MB.
CACHE_KIB = 256


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

    def migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
