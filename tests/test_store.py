import multiprocessing
import sqlite3

from appliance.store import MIGRATIONS, Store

WRITES_PER_PROCESS = 400


def _writer(path: str, name: str, count: int) -> None:
    store = Store(path)
    for i in range(count):
        if i % 2:
            store.events.add(name, "test.write", mac=None, n=i)
        else:
            store.phones.upsert(f"{name}{i:08x}"[-12:], state="seen", model="7965")
        if i % 50 == 0:
            store.transfers.write([{"key": f"{name}-{i}", "proto": "tftp", "client_ip": "127.0.0.1", "file": "x",
                                    "started": 1.0, "updated": 1.0, "bytes": i}])
    store.close()


def test_fresh_store_is_wal_and_migrated(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.schema_version() == len(MIGRATIONS)
    assert store.journal_mode() == "wal"
    Store(tmp_path / "s.db")  # reopening migrates nothing and fails nothing
    assert store.schema_version() == len(MIGRATIONS)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, name, WRITES_PER_PROCESS)) for name in ("aa", "bb")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = Store(path)
    sources = [row["source"] for row in store.events.after(0, limit=10 * WRITES_PER_PROCESS)]
    assert {s: sources.count(s) for s in set(sources)} == {"aa": WRITES_PER_PROCESS // 2, "bb": WRITES_PER_PROCESS // 2}
    assert len(store.phones.all()) == WRITES_PER_PROCESS
    assert len(store.transfers.recent(limit=10_000)) == 2 * (WRITES_PER_PROCESS // 50)


def test_transfer_upsert_keeps_earlier_fields(tmp_path):
    store = Store(tmp_path / "t.db")
    store.transfers.write([{"key": "k1", "proto": "tftp", "client_ip": "10.0.0.5", "file": "a.loads",
                            "total": 100, "started": 5.0, "updated": 5.0}])
    store.transfers.write([{"key": "k1", "bytes": 100, "updated": 6.0, "result": "complete", "duration": 1.0}])
    (row,) = store.transfers.recent()
    assert (row["file"], row["total"], row["bytes"], row["result"]) == ("a.loads", 100, 100, "complete")


def test_phone_json_fields_round_trip(tmp_path):
    store = Store(tmp_path / "p.db")
    store.phones.upsert("001b2c3d4e5f", plan=["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"], hints={"sgn": 2}, step=1)
    phone = store.phones.get("001b2c3d4e5f")
    assert phone["plan"] == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"]
    assert phone["hints"] == {"sgn": 2}
    assert phone["state"] == "seen"


def test_failed_write_rolls_back(tmp_path):
    store = Store(tmp_path / "r.db")
    try:
        with store._db.transaction() as conn:
            conn.execute("INSERT INTO kv(key, value, updated) VALUES ('a', '1', 0)")
            conn.execute("INSERT INTO kv(key, value, updated) VALUES ('a', '2', 0)")
    except sqlite3.IntegrityError:
        pass
    assert store.kv.get("a") is None
    store.kv.put("a", {"x": 1})
    assert store.kv.get("a") == {"x": 1}


def test_events_after_cursor(tmp_path):
    store = Store(tmp_path / "e.db")
    store.events.add("dhcp", "dhcp.ack", mac="001b2c3d4e5f", ip="10.0.0.9")
    store.events.add("tftp", "file.request", mac="001b2c3d4e5f", file="SEP001B2C3D4E5F.cnf.xml")
    first = store.events.after(0)
    assert [e["kind"] for e in first] == ["dhcp.ack", "file.request"]
    assert store.events.after(first[0]["id"])[0]["data"]["file"] == "SEP001B2C3D4E5F.cnf.xml"
