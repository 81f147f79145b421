"""The events and transfers tables stay within their documented bounds (appliance/store/README.md), pruned by
the service store.BOUNDS names from its heartbeat, in short transactions (issue 24 item 4)."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from appliance.store import BOUNDS, OWNERS, Store
from appliance.store import events as events_table
from appliance.store import transfers as transfers_table

# What the README states: the database stays under this many bytes with both tables full of the largest rows
# a client can cause (every string at its cut), besides the phones and leases a bench has.
STATED_MIB = 64


def _events(store: Store, n: int, ts: float, file: str = "SEP001B2C3D4E5F.cnf.xml") -> None:
    store.events.append([(ts, "tftp", "file.not_found", None, {"ip": "10.0.0.9", "file": file, "proto": "tftp"})
                         for _ in range(n)])


def _transfers(store: Store, start: int, n: int, started: float, file: str = "missing.bin") -> None:
    store.transfers.write([{"key": f"k{i}", "proto": "http", "client_ip": "10.0.0.9", "file": file,
                            "result": "not found", "started": started, "updated": started}
                           for i in range(start, start + n)])


def test_count_bound_keeps_the_newest_and_cursors_stay_valid(tmp_path):
    store = Store(tmp_path / "s.db")
    now = time.time()
    _events(store, 1000, now)
    first_new = store.events.last_id()
    cursor = first_new - 10
    deleted = store.events.prune(now, keep=300, batch=128)
    assert deleted == 700 and store.events.count() == 300
    kept = store.events.after(0, limit=1000)
    assert kept[0]["id"] == first_new - 299 and kept[-1]["id"] == first_new
    assert [e["id"] for e in store.events.after(cursor)] == list(range(cursor + 1, first_new + 1))
    _events(store, 5, now)                                       # ids keep growing after a prune
    assert store.events.last_id() == first_new + 5
    assert store.events.prune(now, keep=300) == 5 and store.events.count() == 300


def test_age_bound_deletes_only_what_is_older(tmp_path):
    store = Store(tmp_path / "a.db")
    now = time.time()
    _events(store, 50, now - 40 * 86400)
    _events(store, 20, now - 10)
    _transfers(store, 0, 30, now - 31 * 86400)
    _transfers(store, 30, 7, now - 5)
    assert store.events.prune(now, max_age=30 * 86400, batch=16) == 50
    assert store.transfers.prune(now, max_age=30 * 86400, batch=16) == 30
    assert store.events.count() == 20 and store.transfers.count() == 7
    assert store.events.prune(now) == 0 and store.transfers.prune(now) == 0


def test_prune_is_cut_in_batches_and_a_call_does_at_most_max_batches(tmp_path):
    store = Store(tmp_path / "b.db")
    now = time.time()
    _transfers(store, 0, 1000, now)
    statements: list[str] = []
    store._db._conn().set_trace_callback(statements.append)
    assert store.transfers.prune(now, keep=100, batch=200, pause=0, max_batches=3) == 600
    deletes = [s for s in statements if s.startswith("DELETE")]
    assert len(deletes) == 3 and store.transfers.count() == 400
    assert store.transfers.prune(now, keep=100, batch=200, pause=0) == 300 and store.transfers.count() == 100


def test_a_pruned_running_transfer_comes_back_with_its_next_update(tmp_path):
    store = Store(tmp_path / "r.db")
    now = time.time()
    store.transfers.write([{"key": "fw", "proto": "tftp", "client_ip": "10.0.0.5", "file": "a.sbn", "total": 900,
                            "started": now, "updated": now, "bytes": 100}])
    _transfers(store, 0, 50, now)
    store.transfers.prune(now, keep=10)
    assert all(t["file"] != "a.sbn" for t in store.transfers.recent(limit=100))
    store.transfers.write([{"key": "fw", "proto": "tftp", "client_ip": "10.0.0.5", "file": "a.sbn", "total": 900,
                            "started": now, "updated": now + 1, "bytes": 500}])
    row = store.transfers.recent(limit=1)[0]
    assert (row["file"], row["bytes"], row["result"]) == ("a.sbn", 500, "running")


def test_client_strings_are_cut_when_stored(tmp_path):
    store = Store(tmp_path / "c.db")
    huge = "A" * 70_000                                  # an HTTP request line may be 64 KiB
    store.events.add("http", "file.not_found", None, file=huge, many=list(range(10_000)),
                     deep={"a": {"b": {"c": {"d": {"e": 1}}}}})
    (e,) = store.events.after(0)
    assert len(e["data"]["file"]) == events_table.MAX_TEXT and e["data"]["file"].endswith("...")
    bidi = "\u202e" * 1000                              # six bytes each as JSON: cut harder to fit MAX_DATA
    store.events.add("http", "file.not_found", None, file=bidi, reason=bidi)
    store.events.add("http", "file.not_found", None, **{f"k{i}": bidi for i in range(40)})
    second, third = store.events.after(e["id"])
    assert len(second["data"]["file"]) == events_table.SHORT_TEXT and third["data"] == {"truncated": True}
    assert all(len(r["data"]) <= events_table.MAX_DATA for r in store._db.rows("SELECT data FROM events"))
    assert len(e["data"]["many"]) == events_table.MAX_ITEMS
    assert e["data"]["deep"] == {"a": {"b": {"c": {}}}}
    _transfers(store, 0, 1, time.time(), file=huge)
    store.transfers.write([{"key": "k0", "file": huge, "bytes": 3}])
    (t,) = store.transfers.recent()
    assert len(t["file"]) == transfers_table.MAX_NAME and t["bytes"] == 3


def test_bounds_are_pruned_by_the_owner_and_one_service_prunes_events():
    assert set(BOUNDS) == {"events", "transfers"}
    for table, bound in BOUNDS.items():
        assert bound.rows > 0 and bound.age_s > 0 and bound.why
        if table in OWNERS:                              # a table with an owner is pruned by its owner
            assert OWNERS[table][0] == f"appliance/{bound.pruner}", table
    assert BOUNDS["events"].pruner == "tftp"             # always running: it has no [x] enabled = false


def test_service_heartbeat_prunes_what_it_owns_and_nothing_else(tmp_path, station_config, monkeypatch):
    from appliance import service
    store = Store(tmp_path / "h.db")
    now = time.time()
    _events(store, 30, now)
    _transfers(store, 0, 30, now)
    monkeypatch.setitem(BOUNDS, "events", BOUNDS["events"].__class__(10, 86400, "tftp", "test"))
    monkeypatch.setitem(BOUNDS, "transfers", BOUNDS["transfers"].__class__(5, 86400, "tftp", "test"))
    dhcp = service.ServiceContext("dhcp", station_config, store)
    dhcp.prune()
    assert store.events.count() == 30 and store.transfers.count() == 30 and dhcp.pruned == {}
    tftp = service.ServiceContext("tftp", station_config, store)
    tftp.prune()
    assert store.events.count() == 10 and store.transfers.count() == 5
    assert tftp.pruned == {"events": 20, "transfers": 25}
    tftp.beat()
    (row,) = [r for r in store.services.all() if r["name"] == "tftp"]
    assert row["info"]["pruned"] == {"events": 20, "transfers": 25}


def test_other_writers_get_the_lock_while_a_backlog_is_pruned(tmp_path):
    """A writer that wants the lock once pruning began gets it between two prune transactions, not at the end."""
    path = tmp_path / "w.db"
    store = Store(path)
    now = time.time()
    _events(store, 40_000, now)
    deletes: list[str] = []
    seen_by_writer: list[int] = []
    pruning = threading.Event()

    def writer() -> None:
        other = Store(path)
        pruning.wait(30)
        other.events.add("dhcp", "dhcp.ack", None)
        seen_by_writer.append(len(deletes))          # prune transactions done when the writer's committed

    t = threading.Thread(target=writer)
    t.start()
    store._db._conn().set_trace_callback(
        lambda sql: sql.startswith("DELETE") and (deletes.append(sql), pruning.set()))
    deleted = store.events.prune(now, keep=0, batch=1000, pause=0.02)
    t.join(30)
    assert deleted >= 40_000 and len(deletes) >= 40
    assert seen_by_writer and seen_by_writer[0] < len(deletes), (seen_by_writer, len(deletes))


def test_full_tables_of_the_largest_rows_stay_under_the_stated_size(tmp_path):
    store = Store(tmp_path / "f.db")
    now = time.time()
    big = "\u202eA" * (events_table.MAX_TEXT * 4)        # six bytes a character as JSON, three in a column
    for _ in range(0, BOUNDS["events"].rows + 5000, 5000):      # a beat's overshoot above the bound
        store.events.append([(now, "http", "file.not_found", "001b2c3d4e5f",
                              {"ip": "10.0.0.9", "file": big, "reason": big, "proto": "http"})] * 5000)
    for start in range(0, BOUNDS["transfers"].rows + 2000, 2000):
        _transfers(store, start, 2000, now, file=big)
    store.prune("tftp", now)
    assert store.events.count() <= BOUNDS["events"].rows and store.transfers.count() <= BOUNDS["transfers"].rows
    store._db._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = store.size()
    print(f"\nfull tables of worst-case rows: {size / 2**20:.1f} MiB")
    assert size < STATED_MIB * 2**20, size


@pytest.mark.parametrize("table", ["phones", "leases; DROP TABLE events"])
def test_only_the_bounded_tables_can_be_pruned(tmp_path, table):
    store = Store(tmp_path / "p.db")
    with pytest.raises(ValueError):
        store._db.prune_oldest(table, 1, "ts", 0.0, 10, 0, 1)
    assert sqlite3.sqlite_version
