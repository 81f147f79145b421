"""Whole-load progress (appliance/api/progress.py): the sum of a load's files, the current pass, the rate, the time left."""
from __future__ import annotations

from appliance.api.progress import attach, load_files, whole_load
from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.store import Store

FILES = [("SCCP45.9-4-2SR4-3S.loads", 1000), ("a.sbn", 10_000), ("b.sbn", 20_000), ("c.sbn", 9_000)]


def t(file, result, bytes_=0, total=None, started=100.0, updated=None, duration=None, id_=0):
    return {"id": id_, "file": file, "result": result, "bytes": bytes_, "total": total, "started": started,
            "updated": updated if updated is not None else started, "duration": duration}


def test_sums_the_loads_files_and_takes_the_rate_of_the_running_transfer():
    rows = [t("/SCCP45.9-4-2SR4-3S.LOADS", "complete", 1000, 1000, 100, 100.1, 0.1),   # leading / and capitals
            t("a.sbn", "complete", 10_000, 10_000, 101, 106, 5),
            t("B.sbn", "running", 5_000, 20_000, 107, 109),                               # 2500 B/s
            t("SEP001B2C3D4E5F.cnf.xml", "complete", 900, 900, 99)]                       # not the load's
    p = whole_load("SCCP45.9-4-2SR4-3S", FILES, rows)
    assert p == {"load": "SCCP45.9-4-2SR4-3S", "files": 4, "files_done": 2, "bytes": 16_000, "total": 40_000,
                 "rate": 2500.0, "eta": 9.6}


def test_between_files_the_last_finished_files_rate_stands_in():
    rows = [t("SCCP45.9-4-2SR4-3S.loads", "complete", 1000, 1000, 100, 100.5, 0.5),
            t("a.sbn", "complete", 10_000, 10_000, 101, 105, 4)]
    p = whole_load("SCCP45.9-4-2SR4-3S", FILES, rows)
    assert p["bytes"] == 11_000 and p["rate"] == 2500.0 and p["eta"] == round(29_000 / 2500, 1)


def test_a_new_pass_starts_at_the_latest_manifest_request():
    """After a refusal or a retry the phone fetches the whole load again: the first pass's files are not done."""
    rows = [t("SCCP45.9-4-2SR4-3S.loads", "complete", 1000, 1000, 100, 100, 0.1),
            t("a.sbn", "complete", 10_000, 10_000, 101, 105, 4),
            t("b.sbn", "timeout", 3_000, 20_000, 106, 130),
            t("SCCP45.9-4-2SR4-3S.loads", "complete", 1000, 1000, 200, 200.1, 0.1)]
    p = whole_load("SCCP45.9-4-2SR4-3S", FILES, rows)
    assert p["bytes"] == 1000 and p["files_done"] == 1


def test_nothing_measured_gives_no_rate_and_no_time_left_and_all_done_gives_zero():
    p = whole_load("X", FILES, [])
    assert p["bytes"] == 0 and p["rate"] is None and p["eta"] is None
    rows = [t(name, "complete", size, size, 100 + i, 100 + i, 0) for i, (name, size) in enumerate(FILES)]
    p = whole_load("X", FILES, rows)
    assert p["bytes"] == p["total"] == 40_000 and p["eta"] == 0.0 and p["files_done"] == 4


def test_attach_reads_sizes_from_the_catalog_and_leaves_other_phones_alone(tmp_path):
    synth.write_load(tmp_path / "fw", "SCCP45.8-5-2S", size_bytes=300_000, components=3)
    cat = Catalog(tmp_path / "fw", tmp_path / "cache")
    cat.scan()
    files = load_files(cat, "SCCP45.8-5-2S")
    assert files is not None and files[0][0].lower() == "sccp45.8-5-2s.loads" and len(files) == 4
    total = sum(size for _, size in files)
    assert total == sum(p.stat().st_size for p in (tmp_path / "fw").iterdir())
    store = Store(tmp_path / "station.db")
    store.transfers.write([{"key": "m", "mac": "001b2c3d4e5f", "client_ip": "10.0.0.11", "file": files[0][0],
                            "bytes": files[0][1], "total": files[0][1], "result": "complete", "started": 10.0,
                            "updated": 10.1, "duration": 0.1},
                           {"key": "c", "mac": "001b2c3d4e5f", "client_ip": "10.0.0.11", "file": files[1][0],
                            "bytes": 1000, "total": files[1][1], "result": "running", "started": 11.0,
                            "updated": 12.0}])
    docs = [{"mac": "001b2c3d4e5f", "state": "downloading", "plan": ["SCCP45.8-5-2S"], "step": 0},
            {"mac": "00aabbccddee", "state": "done", "plan": ["SCCP45.8-5-2S"], "step": 1},
            {"mac": "001122334455", "state": "downloading", "plan": ["NOT-IN-LIBRARY"], "step": 0}]
    attach(docs, store, cat)
    assert docs[0]["progress"]["bytes"] == files[0][1] + 1000 and docs[0]["progress"]["total"] == total
    assert docs[0]["progress"]["rate"] == 1000.0
    assert docs[1]["progress"] is None and docs[2]["progress"] is None
    attach(docs, store, None)
    assert docs[0]["progress"] is None


def test_a_7800_phone_waits_only_for_its_own_platforms_files(tmp_path):
    """A 7800 load lists two platforms and a phone fetches one of them (phone-families.md §1.2): its bar
    counts the manifest and that platform's files, never the other platform's."""
    load = "sip78xx.12-8-1-0001-455"
    synth.write_load(tmp_path / "fw", load, size_bytes=300_000)
    cat = Catalog(tmp_path / "fw", tmp_path / "cache")
    cat.scan()
    files = load_files(cat, load)
    groups = [p["files"] for p in cat.load(load).platforms]
    assert files is not None and len(groups) == 2 and all(groups)
    second = [(n, s) for n, s in files if n in groups[1]]
    assert len(second) == len(groups[1])
    store = Store(tmp_path / "station.db")
    store.transfers.write([{"key": "m", "mac": "001e7a784100", "client_ip": "10.0.0.11", "file": files[0][0],
                            "bytes": files[0][1], "total": files[0][1], "result": "complete", "started": 10.0,
                            "updated": 10.1, "duration": 0.1},
                           {"key": "c", "mac": "001e7a784100", "client_ip": "10.0.0.11", "file": second[0][0],
                            "bytes": second[0][1], "total": second[0][1], "result": "complete", "started": 11.0,
                            "updated": 12.0, "duration": 1.0}])
    docs = [{"mac": "001e7a784100", "state": "downloading", "plan": [load], "step": 0}]
    attach(docs, store, cat)
    progress = docs[0]["progress"]
    assert progress["files"] == 1 + len(groups[1]) and progress["files_done"] == 2
    assert progress["total"] == files[0][1] + sum(s for _, s in second)
    assert progress["bytes"] == files[0][1] + second[0][1]
