"""Store under concurrent writer processes: no event is lost or duplicated.

Why: every service writes the same SQLite file; a lost event is lost phone progress.
"""
from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess

import pytest

from appliance.store import MIGRATIONS, Store
from tests.conftest import needs_root, needs_tool

WRITERS = 4
EVENTS_EACH = 150


def _writer(path: str, n: int) -> None:
    store = Store(path)
    for i in range(EVENTS_EACH):
        store.events.add(f"writer{n}", "test", None, seq=i)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "state.db")
    Store(path)._db.migrate()
    # spawned, not forked: like the services supervisord starts, no writer inherits this process's SQLite state
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_writer, args=(path, n)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    events = Store(path).events.after(0, limit=10_000)
    seen = {(e["source"], e["data"]["seq"]) for e in events if e["kind"] == "test"}
    assert len(seen) == WRITERS * EVENTS_EACH
    assert len([e for e in events if e["kind"] == "test"]) == WRITERS * EVENTS_EACH


@needs_root()
@needs_tool("mount", "umount")
def test_read_only_state_dir_store_reads_and_refuses_every_write(tmp_path):
    """Degrading to read-only must never make a write look durable (DHCP ACKs depend on it)."""
    src, mnt = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    mnt.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(mnt)], check=True)
    try:
        writer = Store(mnt / "station.db")
        writer.kv.put("kept", {"a": 1})
        writer.close()
        empty = mnt / "empty"
        empty.mkdir()
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        store = Store(mnt / "station.db")
        assert "read-only file system" in store.read_only
        assert store.kv.get("kept") == {"a": 1}
        for write in (lambda: store.kv.put("x", 1), lambda: store.events.add("t", "k"), store._db.migrate,
                      lambda: store.services.beat("t", 1)):
            with pytest.raises(sqlite3.OperationalError):
                write()
        fresh = Store(empty / "station.db")          # never created: an empty schema to read from
        assert fresh.read_only and fresh.leases.all() == [] and fresh.schema_version() == len(MIGRATIONS)
        with pytest.raises(sqlite3.OperationalError):
            fresh.kv.put("x", 1)
        assert not (empty / "station.db").exists()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    assert Store(src / "station.db").read_only is None


def test_locked_database_still_raises_not_read_only(tmp_path, monkeypatch):
    """Only an unwritable state dir degrades; a busy database is a real error for the caller."""
    import appliance.store.database as storemod
    path = tmp_path / "state.db"
    Store(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(storemod, "BUSY_TIMEOUT_MS", 200)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            Store(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
