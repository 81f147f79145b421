"""Only a phone speaks for itself (issue 23): other clients on the bench read everything and change nothing.

One station (`appliance serve dhcp` + `appliance serve tftp`) in a namespace, three independent phones
(tools.phonesim: a 7965 on 8.3(2) with its web page, one without, a 7940 on 8.0(5)) recovering in theirs, and
two other clients on the same segment:
- a tech's laptop with a static address (no lease), and
- a stranger that leased an address of its own from the station,
both reading every phone's config over TFTP and HTTP :6970 (GET and HEAD), files named after the phones'
MACs that do not exist (SEP<MAC>.<anything>.sbn, CTLSEP<MAC>.tlv), the term file and the manifests --
before the phones boot, all through their recovery, and after it.  The phones must recover exactly as
they would alone, each row keeping its own address, loads, result and empty diagnosis, and the reads
must be counted apart ("other reads").  Curl is the real client on both protocols.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool
from tests.conftest import phone_rows as rows

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip"), needs_tool("curl")]

OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
P_OLD, P_STONE, P_TARGET = "P00308000500", "P00308010100", "P0030801SR02"
NET, SERVER, LAPTOP = "10.83", "10.83.0.1", "10.83.0.200"
STRANGER_MAC = "02aabbccdd01"
PHONE_DEADLINE_S = 100
PHONES = {   # name -> (mac, phonesim arguments, target, path)
    "web": ("001e7a650a01", ["--model", "CP-7965G", "--load", OLD], TARGET, [STONE, TARGET]),
    "noweb": ("001e7a650b01", ["--model", "CP-7965G", "--load", OLD, "--no-web", "--ignore-web-access"],
              TARGET, [STONE, TARGET]),
    "p7940": ("001e7a400c01", ["--model", "CP-7940G", "--load", P_OLD], P_TARGET, [P_STONE, P_TARGET]),
}
KEPT = ("state", "ip", "current_load", "load_before", "target_load", "plan", "step", "diagnosis", "model")


def names_about(mac: str) -> list[str]:
    up = mac.upper()
    return [f"SEP{up}.cnf.xml", f"/sep{mac}.CNF.XML", f"SEP{up}.recovered.sbn", f"CTLSEP{up}.tlv",
            f"SEP{up}.cnf.xml.sgn", "OS79XX.TXT", "term65.default.loads", f"{STONE}.loads", f"{TARGET}.loads",
            "XMLDefault.cnf.xml"]


class Reader:
    """Another client on the bench: curl over TFTP, HTTP GET and HTTP HEAD, from its own namespace."""

    def __init__(self, lab: Lab, name: str):
        self.lab, self.name, self.reads = lab, name, 0

    def read(self, names: list[str]) -> None:
        for n in names:
            path = n.lstrip("/")
            for cmd in (["curl", "-s", "-o", "/dev/null", "--max-time", "4", f"tftp://{SERVER}/{path}"],
                        ["curl", "-s", "-o", "/dev/null", "--max-time", "4", f"http://{SERVER}:6970/{path}"],
                        ["curl", "-s", "-o", "/dev/null", "-I", "--max-time", "4", f"http://{SERVER}:6970/{path}"]):
                self.lab.run(self.name, *cmd, timeout=10)
                self.reads += 1


def tracker_info(state: Path) -> dict:
    conn = sqlite3.connect(state / "station.db", timeout=10)
    try:
        r = conn.execute("SELECT info FROM services WHERE name = 'tftp'").fetchone()
        return (json.loads(r[0]) if r and r[0] else {}).get("tracker") or {}
    finally:
        conn.close()


def report(lab: Lab, env: dict) -> dict[str, dict]:
    cmd = ["ip", "netns", "exec", lab.members["srv"], PYTHON, "-m", "appliance", "report", "--format", "json"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    return {p["mac"]: p for p in json.loads(r.stdout)["phones"]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from appliance.firmware import synth
    tmp = tmp_path_factory.mktemp("identity")
    lab = Lab("idn", subnet=f"{NET}.0")
    try:
        lab.add("srv", SERVER)
        lab.add("laptop", LAPTOP)
        lab.add("stranger")
        state = tmp / "state"
        for load in (STONE, TARGET, P_STONE, P_TARGET):
            synth.write_zip(state / "firmware", load, size_bytes=24_000, components=5 if load[0] == "S" else 2)
        env = station_env(state, DHCP_POOL_START=f"{NET}.1.1", DHCP_POOL_END=f"{NET}.1.250")
        procs = {}
        for svc in ("dhcp", "tftp"):
            with open(tmp / f"{svc}.log", "a") as log:
                procs[svc] = lab.popen("srv", PYTHON, "-m", "appliance", "serve", svc, env=env, stdout=log,
                                       cwd=str(REPO))
        wait_serving(state, procs["dhcp"], timeout=30)
        deadline = time.time() + 30
        while not tracker_info(state):
            assert procs["tftp"].poll() is None and time.time() < deadline, (tmp / "tftp.log").read_text()[-3000:]
            time.sleep(0.2)
        got = lab.run("stranger", PYTHON, "-m", "tests.lldp_frames", "lease", "lan0", STRANGER_MAC, "CP-7965G",
                      timeout=30)
        stranger_ip = json.loads(got.stdout.strip().splitlines()[-1])["ip"]
        lab.run("stranger", "ip", "addr", "replace", f"{stranger_ip}/16", "dev", "lan0", check=True)
        yield lab, state, env, tmp, stranger_ip
    finally:
        lab.close()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"idn{os.getpid()}" not in left, left


@pytest.mark.timeout(300)
def test_other_clients_reading_every_phones_files_change_no_phone(bench):
    lab, state, env, tmp, stranger_ip = bench
    readers = [Reader(lab, "laptop"), Reader(lab, "stranger")]
    everything = [n for mac, *_ in PHONES.values() for n in names_about(mac)]

    # Before: the phones have not booted.  Reads create no phone, whoever names which MAC.
    for r in readers:
        r.read(everything)
    assert set(rows(state)) <= {STRANGER_MAC}, rows(state)

    # During: the phones recover while both keep reading.
    procs = {}
    for name, (mac, args, _, _) in PHONES.items():
        lab.add(name)
        out = tmp / f"phone-{name}.jsonl"
        with open(out, "w") as fh:
            procs[name] = (lab.popen(name, PYTHON, "-m", "tools.phonesim", "--interface", "lan0",
                                     "--first-mac", f"{int(mac, 16) - 1:012x}", "--deadline", str(PHONE_DEADLINE_S),
                                     *args, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=fh,
                                     stderr=subprocess.STDOUT, cwd=str(REPO)), out)
    stop = threading.Event()

    def keep_reading(reader: Reader) -> None:
        end = time.time() + PHONE_DEADLINE_S + 20
        while not stop.is_set() and time.time() < end:
            reader.read(everything)

    threads = [threading.Thread(target=keep_reading, args=(r,), daemon=True) for r in readers]
    for t in threads:
        t.start()
    summaries = {}
    for name, (proc, out) in procs.items():
        proc.wait(PHONE_DEADLINE_S + 30)
        lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and len(lines) == 1, out.read_text()[-2000:]
        summaries[name] = json.loads(lines[0])
    stop.set()
    for t in threads:
        t.join(60)

    deadline = time.time() + 30
    while time.time() < deadline and not all(rows(state).get(mac, {}).get("state") == "done"
                                             for mac, *_ in PHONES.values()):
        time.sleep(0.5)
    before = rows(state)
    rep = report(lab, env)
    for name, (mac, _, target, path) in PHONES.items():
        s, row = summaries[name], before.get(mac, {})
        why = json.dumps({"phone": {k: s.get(k) for k in ("load", "installed", "refused", "ip", "log")}, "row": row},
                         indent=1)[:5000]
        assert s["load"] == target and s["installed"] == path and not s["refused"], why
        assert row["state"] == "done" and row["ip"] == s["ip"] and row["current_load"] == target, why
        assert rep[mac]["result"] == "recovered" and not rep[mac]["diagnosis"], (rep[mac], why)
        assert rep[mac]["load_before"] in (None, OLD, P_OLD), (rep[mac], why)    # its own page's word, or none
        assert row["ip"] not in (LAPTOP, stranger_ip), why

    # After: everything again, then nothing about any phone has moved.
    for r in readers:
        r.read(everything)
    time.sleep(2)                                                  # the writer's batch, had anything changed
    after = rows(state)
    for mac, *_ in PHONES.values():
        assert {k: after[mac][k] for k in KEPT} == {k: before[mac][k] for k in KEPT}, (before[mac], after[mac])
    info = tracker_info(state)
    assert info.get("other_reads", 0) > 0, info
    assert sum(r.reads for r in readers) > 0
