"""End to end in namespaces the test builds: the real `appliance serve dhcp` + `serve tftp` and model phones.

The phones are `appliance simulate`, i.e. the independent model (tools.phonesim):
DHCP (DISCOVER/REQUEST with option 60/12, broadcast) from their own namespace,
then their family's boot against the station, verifying each load with the
model's own truth table (Auth Fail without a new lease), a 7940/60 flashing
.sbn, rebooting, then .sb2; the tracker inside the file service must walk them
through the stones.  Phones have web access off unless a test gives --web-port.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_rows

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip"),
              pytest.mark.skipif(not (REPO / "appliance/tftp/service.py").exists(), reason="file service not landed")]

STATION = "10.78.0.1"
STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S"


@pytest.fixture
def station(tmp_path):
    from appliance.firmware import synth
    with Lab("rc", subnet="10.78.0") as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        state = tmp_path / "state"
        fw = state / "firmware"
        for load in (STONE, TARGET, "P00308010100", "P00308010200", "SCCP75.9-4-2SR3-3S"):
            synth.write_load(fw, load, size_bytes=30000, components=2)
        env = station_env(state, DHCP_POOL_START="10.78.1.1", DHCP_POOL_END="10.78.1.250")
        logs = {n: open(tmp_path / f"{n}.log", "a") for n in ("dhcp", "tftp")}
        dhcp = lab.popen("srv", PYTHON, "-m", "appliance", "serve", "dhcp", env=env, stdout=logs["dhcp"], cwd=str(REPO))
        lab.popen("srv", PYTHON, "-m", "appliance", "serve", "tftp", env=env, stdout=logs["tftp"], cwd=str(REPO))
        wait_serving(state, dhcp)
        yield lab, state, fw, tmp_path
        for f in logs.values():
            f.close()


def simulate(lab, *args: str, timeout: float = 150) -> list[dict]:
    r = lab.run("ph", PYTHON, "-m", "appliance", "simulate", "--interface", "lan0", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def test_7965_via_stone_and_7940_via_811_and_trust_list(station):
    lab, state, fw, tmp = station
    import threading
    out: dict[str, list] = {}
    runs = {"7965": ("--model", "CP-7965G", "--load", "SCCP45.8-3-2S", "--first-mac", "001e7a650000", "--count", "2",
                     "--no-web"),
            "7940": ("--model", "CP-7940G", "--load", "P00307020300", "--first-mac", "001e7a400000", "--no-web"),
            "trust": ("--model", "CP-7965G", "--trust-list", "--first-mac", "001e7a990000", "--no-web"),
            "missing": ("--model", "CP-7975G", "--load", "SCCP75.8-3-2S", "--first-mac", "001e7a750000", "--no-web"),
            # already on the stone, which only its own DeviceInformationX page tells the station.  It stays up
            # once settled (as a real phone does, page served, config asked again every 30 s): the model asks
            # for its config right after the lease, which can beat the station's first poll of the page.
            "web": ("--model", "CP-7965G", "--load", STONE, "--web-port", "80", "--first-mac", "001e7a770000",
                    "--linger", "35")}
    threads = [threading.Thread(target=lambda k=k, a=a: out.__setitem__(k, simulate(lab, *a, "--deadline", "90")))
               for k, a in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(160)
    for r in out["7965"]:
        assert r["load"] == TARGET and r["end"] == "settled", json.dumps(r)
        assert f"{STONE}.loads:ok" in r["log"] and r["installed"] == [STONE, TARGET] and r["boots"] == 3, r
        assert r["log"].index(f"{STONE}.loads:ok") < r["log"].index(f"{TARGET}.loads:ok")
    (web,) = out["web"]
    assert web["load"] == TARGET and f"{STONE}.loads:ok" not in web["log"] and f"{TARGET}.loads:ok" in web["log"], \
        json.dumps(web)
    assert web["installed"] == [TARGET], web
    (p7940,) = out["7940"]
    assert p7940["load"] == "P00308010200" and "P00308010100.loads:ok" in p7940["log"], p7940
    assert p7940["installed"] == ["P00308010100", "P00308010200"] and p7940["pending_app"] is None, p7940
    macs = ["001e7a650001", "001e7a650002", "001e7a400001", "001e7a770001"]
    rows = wait_rows(state, macs, until=time.time() + 45)
    for m in macs:
        assert rows[m]["state"] == "done", rows.get(m)
        timeline = [s for _, s, _ in json.loads(rows[m]["hints"])["timeline"]]
        steps = 1 if m == "001e7a770001" else 2     # the phone found on the stone goes straight on
        assert timeline[0] == "seen" and timeline.count("configured") >= steps and timeline[-1] == "done", timeline
        entered = [s for i, s in enumerate(timeline) if i == 0 or timeline[i - 1] != s]   # a 7940 reboots per stage
        assert entered.count("rebooting") == steps, timeline
    assert rows["001e7a650001"]["current_load"] == TARGET and rows["001e7a400001"]["current_load"] == "P00308010200"
    assert rows["001e7a770001"]["current_load"] == TARGET
    conn = sqlite3.connect(state / "station.db", timeout=10)
    try:
        learned = [json.loads(d) for (d,) in conn.execute(
            "SELECT data FROM events WHERE mac = '001e7a770001' AND kind = 'phone.load'")]
    finally:
        conn.close()
    assert {"load": STONE, "how": "web"} in learned, learned
    rows = wait_rows(state, ["001e7a990001", "001e7a750001"], until=time.time() + 20)
    trust, missing = rows["001e7a990001"], rows["001e7a750001"]
    assert trust["state"] == "stuck" and "trust list" in trust["diagnosis"] and "123456789*0#" in trust["diagnosis"], trust
    assert missing["state"] == "stuck" and "rejected" in missing["diagnosis"], missing
    assert "8.3(3)" in missing["diagnosis"] and "8.5(2)" in missing["diagnosis"] and "CP-7975G" in missing["diagnosis"], missing
    # The phone refused the 9.x load (Auth Fail: 8.3(2) cannot verify it), fetched none of its files and
    # kept its lease: one boot, no new DHCP.
    (p7975,) = out["missing"]
    assert p7975["load"] == "SCCP75.8-3-2S" and not p7975["installed"] and p7975["boots"] == 1, p7975
    assert {r["screen"] for r in p7975["refused"]} == {"Auth Fail"}, p7975
    assert not [f for f in p7975["fetched"] if f["role"] == "component"], p7975


def test_fifty_phones_at_once_all_done(station):
    lab, state, fw, tmp = station
    results = simulate(lab, "--model", "CP-7965G", "--load", "SCCP45.8-3-2S", "--first-mac", "001e7a500000",
                       "--count", "50", "--deadline", "100", "--no-web", timeout=140)
    assert len(results) == 50
    bad = [r for r in results if r["load"] != TARGET or r["end"] != "settled"]
    assert not bad, json.dumps(bad[:2])
    macs = [r["mac"].lower() for r in results]
    rows = wait_rows(state, macs, until=time.time() + 45)
    not_done = {m: (rows.get(m) or {}).get("state") for m in macs if (rows.get(m) or {}).get("state") != "done"}
    assert not not_done, not_done
    for m in macs:
        timeline = [s for _, s, _ in json.loads(rows[m]["hints"])["timeline"]]
        assert timeline[0] == "seen" and timeline[-1] == "done" and timeline.count("rebooting") == 2, (m, timeline)


def test_demo_runs_the_station_and_phones_to_done_and_cleans_up():
    r = subprocess.run([PYTHON, "-m", "appliance", "demo", "--deadline", "60"], cwd=str(REPO), capture_output=True,
                       text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "all phones on their targets" in r.stdout and "P00308010200" in r.stdout and "SCCP45.9-4-2SR3-3S" in r.stdout
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [line for line in left.splitlines() if line.startswith("demo-")], left
