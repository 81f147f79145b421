"""End to end in namespaces the test builds: the station (`serve dhcp` + `serve tftp`, HTTP :6970 included)
and the independent phone models of the 6921 and the 8945 (tools/phonesim), which share the 79xx TLV header.

Each phone does DHCP from its own namespace with its own option 60, then its family's boot: the 6921 over
TFTP, the 8945 HTTP :6970 first and TFTP per file (cisco-phones.md §2.1, [35]); each checks every file's
header and signed name with the model's own reader and installs only what its own truth table accepts.
The library is the product's synthetic firmware (appliance.firmware.synth) for 69xx and 894x loads.
The 7800/8800 end-to-end tests need the product's 5th-generation container (issue 26 items 1-4).
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_rows

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip")]

STATION = "10.79.0.1"
SIX9_OLD, SIX9_TARGET = "SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR3"
EIGHT94_OLD, EIGHT94_TARGET = "SCCP894x.9-4-2SR1-2", "SCCP894x.9-4-2SR3-1"
MAC_6921, MAC_8945 = "001e7a692101", "001e7a894501"


@pytest.fixture
def station(tmp_path):
    from appliance.firmware import synth
    with Lab("pf", subnet="10.79.0") as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        state = tmp_path / "state"
        fw = state / "firmware"
        for load in (SIX9_OLD, SIX9_TARGET, EIGHT94_OLD, EIGHT94_TARGET):
            synth.write_load(fw, load, size_bytes=30000, components=3)
        env = station_env(state, DHCP_POOL_START="10.79.1.1", DHCP_POOL_END="10.79.1.250")
        logs = {n: open(tmp_path / f"{n}.log", "a") for n in ("dhcp", "tftp")}
        dhcp = lab.popen("srv", PYTHON, "-m", "appliance", "serve", "dhcp", env=env, stdout=logs["dhcp"], cwd=str(REPO))
        lab.popen("srv", PYTHON, "-m", "appliance", "serve", "tftp", env=env, stdout=logs["tftp"], cwd=str(REPO))
        wait_serving(state, dhcp)
        yield lab, state
        for f in logs.values():
            f.close()


def simulate(lab, *args: str, timeout: float = 150) -> list[dict]:
    r = lab.run("ph", PYTHON, "-m", "tools.phonesim", "--interface", "lan0", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def test_6921_and_8945_reach_their_targets(station):
    lab, state = station
    runs = {"6921": ("--model", "CP-6921", "--load", SIX9_OLD, "--first-mac", "001e7a692100", "--no-web"),
            "8945": ("--model", "CP-8945", "--load", EIGHT94_OLD, "--first-mac", "001e7a894500", "--no-web")}
    out: dict[str, list] = {}
    threads = [threading.Thread(target=lambda k=k, a=a: out.__setitem__(k, simulate(lab, *a, "--deadline", "90")))
               for k, a in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(160)
    (p6921,) = out["6921"]
    assert p6921["load"] == SIX9_TARGET and p6921["end"] == "settled", json.dumps(p6921)
    assert p6921["installed"] == [SIX9_TARGET] and p6921["boots"] == 2 and not p6921["refused"], p6921
    assert {f["via"] for f in p6921["fetched"]} == {"tftp"}, p6921["fetched"]
    comps = [f for f in p6921["fetched"] if f["role"] == "component"]
    assert comps and all(f["ok"] for f in comps), comps
    (p8945,) = out["8945"]
    assert p8945["load"] == EIGHT94_TARGET and p8945["end"] == "settled", json.dumps(p8945)
    assert p8945["installed"] == [EIGHT94_TARGET] and p8945["boots"] == 2 and not p8945["refused"], p8945
    got = [f for f in p8945["fetched"] if f["ok"]]
    # The station serves the same root on HTTP :6970: the 8945's manifest and components came over HTTP.
    assert {f["via"] for f in got if f["role"] in ("manifest", "component")} == {"http"}, got
    assert f"{EIGHT94_TARGET}.loads:ok" in p8945["log"], p8945["log"]
    rows = wait_rows(state, [MAC_6921, MAC_8945], until=time.time() + 45)
    for mac, target in ((MAC_6921, SIX9_TARGET), (MAC_8945, EIGHT94_TARGET)):
        row = rows.get(mac)
        assert row and row["state"] == "done" and row["current_load"] == target, row
