"""`make bench --quick` runs end to end and writes a well-formed document; the bench's own measuring tools are right.

Speed is never asserted here (that is what docs/benchmarks.md is for); these
tests check that the bench runs, measures what it says, and that the committed
document is exactly what the script renders from its JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench import report  # noqa: E402
from bench.common import CpuGroup, appliance_name, speed_ratio, summary, tree_cpu  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable


@pytest.mark.netns
@pytest.mark.timeout(480)
@needs_root()
@needs_tool("ip", "dnsmasq", "perfdhcp", "curl")
def test_quick_bench_runs_end_to_end_and_writes_md_and_json(tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([PYTHON, "-m", "bench.run", "--quick", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert time.monotonic() - started < 360
    doc = json.loads((out / "benchmarks.json").read_text())
    md = (out / "benchmarks.md").read_text()
    assert doc["quick"] is True and doc["machine"]["cpus"] and doc["command"].startswith("python -m bench.run")
    assert {sc["section"] for sc in doc["scenarios"]} == {"tftp", "dhcp", "fleet", "footprint"}
    assert md == report.render(doc)
    ran = [sc for sc in doc["scenarios"] if sc["status"] == "ok"]
    assert any(sc["section"] == "dhcp" for sc in ran), "DHCP has every part it needs and must have run"
    for sc in doc["scenarios"]:
        assert sc["name"] in md
        if sc["status"] == "not available":
            assert sc["reason"] and f"not available: {sc['reason']}" in md
            continue
        if sc["status"] == "failed":   # the station ran and never completed: said so, with the reason
            assert sc["results"]["station"]["median"] is None and f"failed: {sc['reason']}" in md
            continue
        assert sc["status"] == "ok"
        station = sc["results"]["station"]
        assert station["runs"] >= 1 and station["median"] is not None, sc
        assert station["min"] <= station["median"] <= station["max"]
        ratios = [r for r in sc["ratios"].values() if r is not None]
        assert ratios, f"no ratio for {sc['name']}: {sc['results']}"
        row = next(line for line in md.splitlines() if line.startswith(f"| {sc['name']} |"))
        assert report.fmt(station["median"]) in row and "×" in row
    tftp = [sc for sc in ran if sc["section"] == "tftp"]
    for sc in tftp:
        assert sum(sc["failures"].values()) == 0, sc["failures"]
    check_mixed_shelf(doc, md)


def check_mixed_shelf(doc: dict, md: str) -> None:
    """The quick mixed shelf ran on both sides: every phone of every model on its own target, a per-model row
    with a ratio, and the 7841s and the 8945 took HTTP :6970 from the station and TFTP from dnsmasq."""
    (mixed,) = [sc for sc in doc["scenarios"] if sc["name"].startswith("mixed shelf:")]
    assert mixed["status"] == "ok", mixed.get("reason")
    assert mixed["models"] == {"7965": 2, "7841": 2, "6921": 1, "8945": 1}
    for side in ("station", "dnsmasq by hand"):
        assert mixed["on_target"][side]["median"] == 6, (side, mixed["errors"])
        for model in mixed["models"]:
            assert mixed["per_model"][side][model]["median"] is not None, (side, model)
    last = max(mixed["per_model"]["station"][m]["median"] for m in mixed["models"])
    assert last == pytest.approx(mixed["results"]["station"]["median"])      # the shelf is its slowest model
    ways = mixed["transports"]
    for model in ("7841", "8945"):
        assert ways["station"][model]["http"] > 0, ways
        assert ways["dnsmasq by hand"][model]["http"] == 0 and ways["dnsmasq by hand"][model]["tftp"] > 0, ways
        assert ways["dnsmasq by hand"][model]["http_refused"] > 0, ways
    assert ways["station"]["6921"]["http"] == 0 and ways["station"]["7965"]["http"] == 0, ways
    assert f"Time until the last phone of each model runs its target ({mixed['name']})" in md
    for model, target in mixed["targets"].items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {model} | {mixed['models'][model]} | "))
        assert target in row and "×" in row, row
    assert f"fleet: {mixed['name']}: at least 1.0× dnsmasq by hand" in md


@needs_root()
def test_cpu_group_counts_children_reaped_with_sigchld_ignored():
    """tftpd-hpa's children vanish from /proc/<pid>/stat accounting; the cgroup must still count them."""
    burn = ("import os, signal, time\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "if os.fork() == 0:\n"
            "    end = time.process_time() + 0.4\n"
            "    while time.process_time() < end: pass\n"
            "    os._exit(0)\n"
            "time.sleep(3)\n")
    group = CpuGroup("test")
    if group.path is None:
        pytest.skip("no writable cgroup v2 hierarchy on this machine")
    proc = subprocess.Popen(group.wrap([sys.executable, "-c", burn]))
    try:
        time.sleep(1.5)
        assert proc.poll() is None
        assert group.seconds(proc.pid) >= 0.35
        assert tree_cpu(proc.pid) < 0.2
    finally:
        proc.kill()
        proc.wait()
        group.close()
    assert not group.path.exists()


def test_ratios_say_how_many_times_better_the_station_is():
    assert speed_ratio(200.0, 100.0, higher_is_better=True) == 2.0
    assert speed_ratio(1.0, 4.0, higher_is_better=False) == 4.0
    assert speed_ratio(None, 4.0, True) is None and speed_ratio(3.0, 0.0, True) is None
    s = summary([3.0, None, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["runs"], s["missing"]) == (2.0, 1.0, 3.0, 4, 1)


def test_render_reports_missed_targets_by_how_much_and_why():
    stats = lambda v: summary([v, v, v])  # noqa: E731
    doc = {"command": "python -m bench.run", "date": "d", "quick": False, "runs": 3, "duration_s": 1.0,
           "machine": {"cpu": "x", "cpus": 2, "memory_mib": 1, "os": "o", "kernel": "k", "python": "3",
                       "peers": {"dnsmasq": "Dnsmasq version 2.90  Copyright"}},
           "scenarios": [
               {"section": "tftp", "name": "single", "metric": "throughput", "unit": "MiB/s", "higher_is_better": True,
                "status": "ok", "results": {"station": stats(8.0), "dnsmasq": stats(16.0)},
                "ratios": {"dnsmasq": 0.5}, "cpu_us_per_block": {"station": stats(40.0), "dnsmasq": stats(16.0)},
                "user_us_per_block": {"station": stats(30.0), "dnsmasq": stats(2.0)}},
               {"section": "fleet", "name": "fleet", "status": "not available", "reason": "synth not landed",
                "results": {}, "ratios": {}}]}
    md = report.render(doc)
    assert "| single | MiB/s ↑ | 8.00 (8.00–8.00) | 16.0 (16.0–16.0) | **0.50×** |" in md
    assert "**missed** (**0.50×**, 50% slower); the station spends 40.0 µs" in md
    assert "(2.5×): 30.0 µs in user space (the Python interpreter) against 2.00, 10.0 µs in the kernel against 14.0" in md
    assert "Of which in user space (outside the kernel), µs per block" in md
    assert "fleet: not available: synth not landed" in md and "dnsmasq 2.90" in md


def test_committed_document_is_rendered_from_its_json():
    md, js = REPO / "docs" / "benchmarks.md", REPO / "docs" / "benchmarks.json"
    if not js.exists():
        pytest.skip("no committed benchmark run yet")
    assert md.read_text() == report.render(json.loads(js.read_text()))


def test_fleet_breakdown_splits_a_phones_timeline_into_where_its_seconds_went():
    """From a synthetic timeline (bench/fleet_phones.py --timeline) to the parts; every figure is derived."""
    from bench import fleet

    def fetch(name, role, t0, first, t1, ok=True):
        return {"kind": "fetch", "name": name, "via": "tftp", "role": role, "t0": t0, "first": first, "t1": t1,
                "ok": ok, "bytes": 1}

    station = {"mac": "001e7a420001", "power_on_s": 0.5, "done_s": 40.0, "end": "settled", "spans": [
        {"kind": "dhcp", "t0": 0.5, "t1": 1.0, "ok": False},            # no answer, then a pause: still DHCP
        {"kind": "sleep", "why": "retry DHCP", "t0": 1.0, "t1": 3.0},
        {"kind": "dhcp", "t0": 3.0, "t1": 4.0, "ok": True},
        {"kind": "address", "t0": 4.0, "t1": 4.5},
        fetch("CTLSEP001E7A420001.tlv", "trust list", 4.5, 4.6, 4.6, ok=False),
        fetch("SEP001E7A420001.cnf.xml", "config", 5.0, 8.0, 8.5),      # 3 s deciding, 0.5 s sending
        fetch("SCCP45.8-5-2S.loads", "manifest", 8.5, 9.0, 10.0),       # all transfer (first byte 0.5 s)
        fetch("comp.sbn", "component", 10.0, 10.1, 20.0),
        {"kind": "sleep", "why": "reboot", "t0": 20.0, "t1": 25.0},
        {"kind": "dhcp", "t0": 25.0, "t1": 26.0, "ok": True},
        fetch("SEP001E7A420001.cnf.xml", "config", 27.0, None, 35.0, ok=False),   # never answered: all waiting
        {"kind": "sleep", "why": "ask for the config again", "t0": 35.0, "t1": 38.0},
        fetch("XMLDefault.cnf.xml", "default config", 38.0, 39.0, 39.5),
        {"kind": "end", "t0": 39.9, "how": "settled"}]}
    b = fleet.breakdown([station])
    assert b["total_s"] == 40.0 and b["finished"]
    assert b["dhcp_s"] == 4.5                               # 0.5 + 2 + 1 + 1
    assert b["decision_s"] == 12.0                          # 3 + 8 + 1
    assert b["transfer_s"] == pytest.approx(0.1 + 0.5 + 1.5 + 10.0 + 0.5)
    assert b["first_byte_s"] == pytest.approx(0.1 + 0.5 + 0.1)
    assert b["phone_s"] == 8.0 and b["pauses"] == {"ask for the config again": 3.0, "reboot": 5.0}
    assert b["fleet_wait_s"] == 0.0 and b["address_s"] == 0.5
    assert b["other_s"] == pytest.approx(40.0 - 4.5 - 12.0 - 12.6 - 8.0)    # power-on offset, gaps, address
    assert (b["leases"], b["fetches"], b["configs"]) == (2, 6, 3)

    # by hand: two rounds; between them the phone waits on the stone for the fleet (wall 50 s) and the swap (1 s)
    stone = {**station, "mac": "a", "done_s": 20.0,
             "spans": [{"kind": "dhcp", "t0": 0.0, "t1": 2.0, "ok": True}, fetch("c", "config", 2.0, 3.0, 3.0),
                       {"kind": "end", "t0": 20.0, "how": "settled"}]}
    target = {**station, "mac": "a", "done_s": 10.0,
              "spans": [{"kind": "dhcp", "t0": 0.0, "t1": 1.0, "ok": True},
                        {"kind": "sleep", "why": "reboot", "t0": 4.0, "t1": 9.0}]}
    late = {**stone, "mac": "b", "done_s": 50.0}                         # the last on the stone: waits for none
    split = fleet.by_hand_breakdown({"a": stone, "b": late}, {"a": {**target, "done_s": 12.0}, "b": target},
                                    50.0, 1.0)
    assert split["phones"] == 2 and [p["mac"] for p in split["slowest"]] == ["a", "b"]
    a, b = split["slowest"]
    assert a["total_s"] == 20.0 + 30.0 + 1.0 + 12.0 and a["fleet_wait_s"] == 31.0   # = the rounds' walls + swap
    assert (a["dhcp_s"], a["decision_s"], a["phone_s"]) == (3.0, 1.0, 5.0)
    assert a["other_s"] == pytest.approx(63.0 - 3.0 - 1.0 - 5.0 - 31.0)
    assert b["total_s"] == 50.0 + 1.0 + 10.0 and b["fleet_wait_s"] == 1.0
    assert split["mean"]["total_s"] == (63.0 + 61.0) / 2

    # unfinished: total runs to where the phone stopped; the report says so and renders every column
    stuck = {"mac": "c", "done_s": None, "spans": [{"kind": "dhcp", "t0": 0.0, "t1": 15.0, "ok": False},
                                                   {"kind": "end", "t0": 16.0, "how": "deadline"}]}
    lone = fleet.station_breakdown({"c": stuck})
    assert lone["slowest"][0]["total_s"] == 16.0 and not lone["slowest"][0]["finished"]
    table = report.breakdown_table({"station": lone, "dnsmasq by hand": split})
    assert table[0].startswith("| side | phone | total | DHCP | transfers | config answer | reboots, pauses | "
                               "fleet, tech | other |")
    assert "| station | c (not done) | 16.0 | 15.0 |" in table[2]
    assert any(line.startswith("| dnsmasq by hand | mean of 2 | 62.0 |") for line in table)


def test_fleet_timelines_are_read_from_json_lines(tmp_path):
    from bench import fleet

    path = tmp_path / "timeline.jsonl"
    path.write_text(json.dumps({"mac": "a", "done_s": 1.0, "spans": []}) + "\n{torn\n"
                    + json.dumps({"mac": "b", "done_s": None, "spans": []}) + "\n")
    assert sorted(fleet.read_timelines(path)) == ["a", "b"]
    assert fleet.read_timelines(tmp_path / "missing.jsonl") == {}


def test_fleet_phones_are_spread_over_processes_each_once():
    """One process per phone by default: fifty phones as threads of one process share one GIL, and the load
    generator, not the server, then sets the pace (bench/fleet_phones.py)."""
    from bench.fleet_phones import spread
    assert spread(5, 0) == [[0], [1], [2], [3], [4]]
    assert spread(5, 2) == [[0, 2, 4], [1, 3]]
    assert spread(3, 10) == [[0], [1], [2]]
    assert sorted(i for g in spread(50, 7) for i in g) == list(range(50))


def test_shelves_lay_out_macs_per_model_and_fleet_phones_reads_them_back():
    """bench/fleet.py writes the hand-made configs and bench/fleet_phones.py boots the phones: both must see
    the same MAC for the same model."""
    import argparse

    from bench import shelf
    from bench.fleet_phones import mac_of, shelf_of

    fleet = shelf.layout(shelf.FLEET, quick=False)
    assert len(fleet) == 50 and {p.group.model for p in fleet} == {"CP-7965G"}
    assert [p.mac for p in fleet[:2]] == ["001e7a420000", "001e7a420001"]     # the MACs of the committed figures
    mixed = shelf.layout(shelf.MIXED, quick=False)
    assert shelf.label_counts(mixed) == {"7965": 40, "7841": 8, "6921": 1, "8945": 1}
    assert sorted({p.group.platform for p in mixed if p.group.label == "7841"}) == [1, 2]
    assert [p.group.stone for p in mixed if p.group.stone] == [shelf.STONE] * 40
    quick = shelf.layout(shelf.MIXED, quick=True)
    assert shelf.label_counts(quick) == {"7965": 2, "7841": 2, "6921": 1, "8945": 1}
    assert shelf.library(shelf.MIXED) == [shelf.STONE, shelf.TARGET, shelf.TARGET_78, shelf.TARGET_69,
                                          shelf.TARGET_894]

    args = argparse.Namespace(shelf=json.dumps(shelf.groups_arg(quick)), count=0, current="")
    booted = shelf_of(args)
    assert [(mac_of(0x42, b["index"]), b["model"], b["platform"]) for b in booted] == \
        [(p.mac, p.group.model, p.group.platform) for p in quick]
    # round two by hand: only the 7965s, on the stone, with the MACs they had
    stoned = [p for p in quick if p.group.stone]
    again = shelf_of(argparse.Namespace(shelf=json.dumps(shelf.groups_arg(stoned, {stoned[0].group: shelf.STONE})),
                                        count=0, current=""))
    assert [(b["index"], b["current"]) for b in again] == [(0, shelf.STONE), (1, shelf.STONE)]
    # without --shelf: --count 7965s on --current, as before
    plain = shelf_of(argparse.Namespace(shelf=None, count=3, current=shelf.START_LOAD))
    assert [(b["index"], b["model"], b["current"]) for b in plain] == [(i, "CP-7965G", shelf.START_LOAD)
                                                                       for i in range(3)]
    with pytest.raises(ValueError, match="two groups"):
        shelf_of(argparse.Namespace(shelf=json.dumps([{"model": "CP-6921", "count": 2, "current": shelf.OLD_69},
                                                      {"model": "CP-8945", "count": 1, "current": shelf.OLD_894,
                                                       "first": 1}]), count=0, current=""))


def test_mixed_shelf_outcome_per_model_and_transports_come_from_each_phones_own_target():
    from bench import fleet, shelf

    plan = shelf.layout(shelf.MIXED, quick=True)       # 7965 x2, 7841 p1, 7841 p2, 6921, 8945
    done = {p.mac: 10.0 + p.index for p in plan}

    def result(p, final=None, error=None):
        r = {"mac": p.mac, "final": final or p.group.target, "done_s": done[p.mac], "error": error}
        r["target_s"] = fleet.on_target(r, p.group.target, 100.0 if p.group.stone else 0.0)
        return r

    doc = {"wall_s": 120.0, "phase1_s": 90.0, "phones": [result(p) for p in plan]}
    assert fleet.outcome(doc, plan) == (120.0, 6, [])
    times = shelf.model_times(doc["phones"], plan)
    assert times == {"7965": 111.0, "7841": 13.0, "6921": 14.0, "8945": 15.0}
    # a 6921 left on the load it ran: the shelf is not done, its model has no time, the error names its target
    stuck = {**doc, "phones": [result(p, final=shelf.OLD_69 if p.group.label == "6921" else None) for p in plan]}
    wall, on, errors = fleet.outcome(stuck, plan)
    assert (wall, on) == (None, 5) and shelf.TARGET_69 in errors[0] and shelf.OLD_69 in errors[0]
    assert shelf.model_times(stuck["phones"], plan)["6921"] is None
    # the station's own clock: the last phone done (no phase1_s)
    assert fleet.outcome({"wall_s": 99.0, "phones": doc["phones"]}, plan)[0] == 111.0

    seven = next(p for p in plan if p.group.label == "7841")

    def fetch(via, ok):
        return {"kind": "fetch", "via": via, "ok": ok, "t0": 0.0, "t1": 0.1}
    one = {seven.mac: {"spans": [fetch("http", False), fetch("tftp", True), fetch("tftp", True),
                                 {"kind": "dhcp", "t0": 0.0, "t1": 1.0}]}, "stranger": {"spans": [fetch("http", True)]}}
    two = {seven.mac: {"spans": [fetch("http", True)]}}
    assert shelf.transports([one, two], plan) == {"7841": {"http": 1, "tftp": 2, "http_refused": 1}}


def test_render_gives_the_mixed_shelf_its_per_model_rows_and_its_target():
    stats = lambda v: summary([v])  # noqa: E731
    mixed = {"section": "fleet", "name": "mixed shelf: 2 7965s", "metric": "t", "unit": "s",
             "higher_is_better": False, "status": "ok",
             "results": {"station": stats(20.0), "dnsmasq by hand": stats(10.0)}, "ratios": {"dnsmasq by hand": 0.5},
             "models": {"7965": 2, "7841": 1}, "targets": {"7965": "SCCP45.9-4-2SR4-3S", "7841": "sip78xx.12-5-1SR3-74"},
             "per_model": {"station": {"7965": stats(20.0), "7841": stats(4.0)},
                           "dnsmasq by hand": {"7965": stats(10.0), "7841": stats(8.0)}},
             "per_model_ratios": {"dnsmasq by hand": {"7965": 0.5, "7841": 2.0}},
             "transports": {"station": {"7965": {"http": 0, "tftp": 9, "http_refused": 0},
                                        "7841": {"http": 4, "tftp": 0, "http_refused": 2}},
                            "dnsmasq by hand": {"7841": {"http": 0, "tftp": 4, "http_refused": 6}}},
             "target": {"text": "at least 1.0× dnsmasq by hand, ratio 0.50×", "met": False},
             "breakdown": {"station": {"slowest": [], "mean": {"total_s": 20.0, "dhcp_s": 1.0, "transfer_s": 15.0,
                                                                "decision_s": 2.0, "phone_s": 2.0}},
                           "dnsmasq by hand": {"slowest": [], "mean": {"total_s": 10.0, "dhcp_s": 3.0,
                                                                        "transfer_s": 5.0, "decision_s": 0.5,
                                                                        "phone_s": 2.0}}}}
    doc = {"command": "python -m bench.run", "date": "d", "quick": False, "runs": 1, "duration_s": 1.0,
           "machine": {"cpu": "x", "cpus": 2, "memory_mib": 1, "os": "o", "kernel": "k", "python": "3",
                       "peers": {}}, "scenarios": [mixed]}
    md = report.render(doc)
    assert "| 7965 | 2 | SCCP45.9-4-2SR4-3S | 20.0 | 10.0 | **0.50×** |" in md
    assert "| 7841 | 1 | sip78xx.12-5-1SR3-74 | 4.00 | 8.00 | **2.00×** |" in md
    assert "| 7841 | 4, 0, 2 | 0, 4, 6 |" in md and "| 7965 | 0, 9, 0 | — |" in md
    assert "dnsmasq serves no HTTP :6970" in md
    assert ("- fleet: mixed shelf: 2 7965s: at least 1.0× dnsmasq by hand, ratio 0.50× — **missed** (station 20.0 s); "
            "the mean phone spends more with the station in transfers (15.0 s against 5.00 with dnsmasq by hand), "
            "config answer (2.00 s against 0.5 with dnsmasq by hand)") in md


def test_a_mixed_fleets_breakdown_has_the_mean_phone_of_each_model():
    from bench import fleet

    def rec(mac, dhcp, took):
        return {"mac": mac, "done_s": dhcp + took, "spans": [{"kind": "dhcp", "t0": 0.0, "t1": dhcp, "ok": True},
                                                            {"kind": "fetch", "via": "http", "role": "component",
                                                             "t0": dhcp, "first": dhcp, "t1": dhcp + took}]}
    timelines = {"a": rec("a", 1.0, 9.0), "b": rec("b", 3.0, 7.0), "c": rec("c", 0.5, 1.5)}
    one = fleet.station_breakdown(timelines, {"a": "7965", "b": "7965", "c": "7841"})
    assert one["models"]["7965"]["phones"] == 2 and one["models"]["7965"]["dhcp_s"] == 2.0
    assert one["models"]["7841"] == {**one["models"]["7841"], "phones": 1, "total_s": 2.0, "transfer_s": 1.5}
    assert "models" not in fleet.station_breakdown(timelines, {"a": "7965", "b": "7965", "c": "7965"})
    table = report.breakdown_table({"station": one})
    assert any(line.startswith("| station | mean of 2 7965 | 10.0 | 2.00 | 8.00 |") for line in table), table
    assert any(line.startswith("| station | mean of 1 7841 | 2.00 | 0.5 | 1.50 |") for line in table), table


def test_memory_tables_name_each_station_service_past_the_global_options():
    """supervisord starts `python -m appliance --log-format text --log-level INFO serve api`: the memory table
    must say `appliance serve api`, not lump every service under `appliance --log-format text`."""
    py = "/opt/venv/bin/python"
    assert appliance_name([py, "-m", "appliance", "--log-format", "text", "--log-level", "INFO", "serve", "api"]) \
        == "appliance serve api"
    assert appliance_name([py, "-m", "appliance", "serve", "tftp"]) == "appliance serve tftp"
    assert appliance_name([py, "-m", "appliance", "run"]) == "appliance run"
    assert appliance_name([py, "-m", "appliance", "check-config", "--json"]) == "appliance check-config --json"
    assert appliance_name(["/usr/sbin/dnsmasq", "-k"]) is None
