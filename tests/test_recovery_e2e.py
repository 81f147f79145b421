"""End to end with the independent phones: the real station in a namespace, tools.phonesim phones in others.

Two throw-away segments (bench/dhcp_lab.py's Lab), each with the real `appliance
serve dhcp` + `appliance serve tftp`: one with the shipped `strategy =
"stepwise"`, one with `APPLIANCE_UPGRADE_STRATEGY=direct`.  Every phone is a
`python -m tools.phonesim` process in its own namespace (never the product's
appliance/recovery/simulator.py), all started together when the first test asks
for them, so the file takes as long as its slowest phone (the trust-list one,
which the station judges after TRUST_WAIT_S).  Firmware is byte-faithful
synthetic firmware (appliance.firmware.synth.write_zip, term files included).

Each test reads one phone's outcome twice: the phone model's own summary (what
it truly runs, what it refused and why) and `appliance report --format json`
run against the station's state; the two must agree, and the report must carry
load IDs only (never a component such as jar45sccp....sbn).  A phone that cannot
be recovered must end "failed" with a diagnosis a tech can act on.

Reference: /work/shared/reference/cisco-phones.md §0.0 (items 3, 5, 7, 9 above all).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip")]

OLD = "SCCP45.8-3-2S"                     # what 7965s shipped with when the signing key changed (§5.1)
STONE, STONE2 = "SCCP45.8-5-2S", "SCCP45.8-4-4S"    # both in 8.3(3)-8.5(2), both know old and new key
TARGET = "SCCP45.9-4-2SR4-3S"
LATE = "SCCP45.9-0-3S"                    # a late-production 7965's own load (new key only)
P_OLD, P_STONE, P_TARGET = "P00308000500", "P00308010100", "P0030801SR02"   # 8.0(5), 8.1(1), 8.1(2)SR2

STEPWISE_LIBRARY = (STONE, STONE2, TARGET, P_STONE, P_TARGET)
DIRECT_LIBRARY = (STONE, TARGET)

PHONE_DEADLINE_S = 100       # each phone process gives up after this
SETUP_S = 30                 # station up: DHCP guard serving, file service beating
REPORT_WAIT_S = 110          # from the phones' start until the station's rows are final
LOAD_ID = re.compile(r"^(SCCP|SIP)\d\d\.\d+-\d+-\d+\S*S$|^P00[0-9A-Z]{9}$")

# phone name -> (station, mac, phonesim arguments)
PHONES = {
    "web_on": ("stepwise", "001e7a650101", ["--model", "CP-7965G", "--load", OLD]),
    # web access off and kept off (a page the station never gets to read): TFTP facts only
    "web_off": ("stepwise", "001e7a650201", ["--model", "CP-7965G", "--load", OLD, "--no-web",
                                             "--ignore-web-access"]),
    # factory reset: no application, its boot code still holds 8.3(2)'s key (§0.0 item 7)
    "reset": ("stepwise", "001e7a650301", ["--model", "CP-7965G", "--load", OLD, "--factory-reset"]),
    "itl": ("stepwise", "001e7a650401", ["--model", "CP-7965G", "--load", OLD, "--itl",
                                         "--max-attempts", "14"]),
    "p7940": ("stepwise", "001e7a400501", ["--model", "CP-7940G", "--load", P_OLD]),
    # a late-production unit: hardware refuses anything older than 9.0(3) ("Load rejected HC", §5.1, §8.1),
    # web off so the station cannot know it runs 9.0(3) and sends it to the stones first
    "floor": ("stepwise", "001e7a650601", ["--model", "CP-7965G", "--load", LATE, "--hardware-floor", LATE,
                                           "--no-web", "--ignore-web-access"]),
    # direct: the target first; 8.3(2) cannot verify it (Auth Fail), keeps its lease and asks its config again
    "direct": ("direct", "001e7a650701", ["--model", "CP-7965G", "--load", OLD, "--no-web",
                                          "--ignore-web-access"]),
}
STATIONS = {"stepwise": ("e2s", "10.81", STEPWISE_LIBRARY, {}),
            "direct": ("e2d", "10.82", DIRECT_LIBRARY, {"UPGRADE_STRATEGY": "direct"})}


@dataclass
class Station:
    lab: Lab
    state: Path
    env: dict
    procs: dict


@dataclass
class Phone:
    name: str
    mac: str
    station: Station
    proc: subprocess.Popen
    out: Path
    started: float

    def summary(self) -> dict:
        """The phone model's own account once its process ends (bounded by its --deadline)."""
        try:
            self.proc.wait(max(1.0, self.started + PHONE_DEADLINE_S + 20 - time.time()))
        except subprocess.TimeoutExpired:
            self.station.lab.kill(self.proc)
            pytest.fail(f"phone {self.name} did not end within its deadline")
        lines = [line for line in self.out.read_text().splitlines() if line.startswith("{")]
        assert self.proc.returncode == 0 and len(lines) == 1, (self.proc.returncode, self.out.read_text()[-2000:])
        return json.loads(lines[0])


def _services(state: Path) -> dict:
    try:
        conn = sqlite3.connect(state / "station.db", timeout=5)
    except sqlite3.Error:
        return {}
    try:
        return {n: hb for n, hb in conn.execute("SELECT name, heartbeat FROM services")}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def _start_station(tmp: Path, key: str) -> Station:
    from appliance.firmware import synth
    tag, net, library, extra = STATIONS[key]
    lab = Lab(tag, subnet=f"{net}.0")
    try:
        lab.add("srv", f"{net}.0.1")
        state = tmp / key
        fw = state / "firmware"
        for load in library:
            synth.write_zip(fw, load, size_bytes=24_000, components=5 if load.startswith("SCCP") else 2, term=True)
        env = station_env(state, DHCP_POOL_START=f"{net}.1.1", DHCP_POOL_END=f"{net}.1.250", **extra)
        procs = {}
        for svc in ("dhcp", "tftp"):
            log = open(tmp / f"{key}-{svc}.log", "a")
            procs[svc] = lab.popen("srv", PYTHON, "-m", "appliance", "serve", svc, env=env, stdout=log,
                                   cwd=str(REPO))
            log.close()
        wait_serving(state, procs["dhcp"], timeout=SETUP_S)
        deadline = time.time() + SETUP_S
        while "tftp" not in _services(state):
            assert procs["tftp"].poll() is None, (tmp / f"{key}-tftp.log").read_text()[-3000:]
            assert time.time() < deadline, "file service never beat"
            time.sleep(0.2)
        return Station(lab, state, env, procs)
    except BaseException:
        lab.close()
        raise


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Both stations and every phone, started together; torn down (processes by PID, namespaces) at the end."""
    tmp = tmp_path_factory.mktemp("e2e")
    stations: dict[str, Station] = {}
    try:
        for key in STATIONS:
            stations[key] = _start_station(tmp, key)
        phones = {}
        for name, (key, mac, args) in PHONES.items():
            st = stations[key]
            st.lab.add(name)
            out = tmp / f"phone-{name}.jsonl"
            with open(out, "w") as fh:
                proc = st.lab.popen(name, PYTHON, "-m", "tools.phonesim", "--interface", "lan0",
                                    "--first-mac", f"{int(mac, 16) - 1:012x}", "--deadline", str(PHONE_DEADLINE_S),
                                    *args, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=fh,
                                    stderr=subprocess.STDOUT, cwd=str(REPO))
            phones[name] = Phone(name, mac, st, proc, out, time.time())
        yield phones, tmp
    finally:
        for st in stations.values():
            st.lab.close()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not [n for n in left.split() if n.endswith(tuple(f"{t}{os.getpid()}" for t, *_ in STATIONS.values()))], left


def row(station: Station, mac: str) -> dict:
    conn = sqlite3.connect(station.state / "station.db", timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        r = conn.execute("SELECT * FROM phones WHERE mac = ?", (mac,)).fetchone()
        return dict(r) if r else {}
    finally:
        conn.close()


def final_row(phone: Phone, until: float) -> dict:
    """The station's row once it is done or stuck (or the deadline passes)."""
    r: dict = {}
    while time.time() < until:
        r = row(phone.station, phone.mac)
        if r.get("state") in ("done", "stuck"):
            return r
        time.sleep(0.5)
    return r


def report(station: Station) -> dict[str, dict]:
    """`appliance report --format json`, run as a tech would, against this station's state dir."""
    cmd = ["ip", "netns", "exec", station.lab.members["srv"], PYTHON, "-m", "appliance", "report", "--format", "json"]
    r = subprocess.run(cmd, env=station.env, capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    return {p["mac"]: p for p in json.loads(r.stdout)["phones"]}


def timeline(r: dict) -> list[tuple[str, str]]:
    return [(s, d) for _, s, d in json.loads(r.get("hints") or "{}").get("timeline", [])]


def learned(station: Station, mac: str) -> list[dict]:
    conn = sqlite3.connect(station.state / "station.db", timeout=10)
    try:
        return [json.loads(d) for (d,) in conn.execute(
            "SELECT data FROM events WHERE mac = ? AND kind = 'phone.load' ORDER BY id", (mac,))]
    finally:
        conn.close()


def outcome(bench, name: str) -> tuple[dict, dict, dict, Phone]:
    """(phone summary, station row, report row) of one phone."""
    phones, tmp = bench
    phone = phones[name]
    summary = phone.summary()
    r = final_row(phone, phone.started + REPORT_WAIT_S)
    rep = report(phone.station).get(phone.mac)
    assert rep is not None, f"{phone.mac} not in the report"
    return summary, r, rep, phone


def assert_recovered(summary: dict, rep: dict, r: dict, target: str, path: list[str]) -> None:
    why = json.dumps({"phone": {k: summary.get(k) for k in ("load", "installed", "refused", "end", "log")},
                      "report": rep, "timeline": timeline(r)}, indent=1)[:6000]
    assert summary["load"] == target and summary["end"] == "settled", why
    assert summary["installed"] == path, why
    assert rep["result"] == "recovered", why
    assert rep["load_after"] == target and rep["target_load"] == target, why
    for field in ("load_before", "load_after", "target_load"):
        value = rep[field]
        assert value is None or (LOAD_ID.match(value) and not value.lower().endswith((".sbn", ".sb2", ".bin"))), \
            (field, value)
    assert not rep["diagnosis"], why


# ---- the scenarios -----------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_7965_on_832_with_web_access_on_goes_via_the_stone_and_the_report_names_loads(bench):
    summary, r, rep, phone = outcome(bench, "web_on")
    assert_recovered(summary, rep, r, TARGET, [STONE, TARGET])
    # its page names the jar on 79x1/2/5 (§0.0 item 3): whatever the station read, it reports load IDs
    assert all(LOAD_ID.match(x["load"]) for x in learned(phone.station, phone.mac)), learned(phone.station, phone.mac)
    assert rep["load_before"] == OLD, rep                  # read off its page (*SCCP45.8-3-2S*) before its config
    assert {"load": OLD, "how": "web"} in learned(phone.station, phone.mac)


@pytest.mark.timeout(180)
def test_7965_on_832_with_web_access_off_is_recovered_from_tftp_facts_alone(bench):
    summary, r, rep, phone = outcome(bench, "web_off")
    assert_recovered(summary, rep, r, TARGET, [STONE, TARGET])
    assert not [x for x in learned(phone.station, phone.mac) if x["how"] == "web"]
    assert not summary["refused"], summary["refused"]      # stepwise: the stone first, nothing refused


@pytest.mark.timeout(180)
def test_factory_reset_7965_takes_the_stone_term_file_then_its_config_names_the_target(bench):
    summary, r, rep, phone = outcome(bench, "reset")
    assert_recovered(summary, rep, r, TARGET, [STONE, TARGET])
    asked = [f["name"].lower() for f in summary["fetched"]]
    assert "term65.default.loads" in asked and f"{TARGET.lower()}.loads" in asked, asked
    # no power cycle: after the stone boots, its next config names the target (§0.0 item 7)
    assert asked.index("term65.default.loads") < asked.index(f"{TARGET.lower()}.loads")


@pytest.mark.timeout(180)
def test_7965_holding_another_clusters_itl_fails_with_trust_list_and_reset_keys(bench):
    summary, r, rep, phone = outcome(bench, "itl")
    assert summary["load"] == OLD and not summary["installed"], summary
    assert any(f["name"].lower().endswith(".cnf.xml.sgn") for f in summary["fetched"]), summary["log"]
    assert rep["result"] == "failed", (rep, timeline(r))
    diag = rep["diagnosis"] or ""
    assert "trust list" in diag.lower() and "**#" in diag and "123456789*0#" in diag, diag
    assert rep["load_after"] in (OLD, None) and rep["load_after"] != rep["target_load"], rep


@pytest.mark.timeout(180)
def test_7940_on_805_goes_811_then_812sr2_installed_only_after_the_sb2(bench):
    summary, r, rep, phone = outcome(bench, "p7940")
    assert_recovered(summary, rep, r, P_TARGET, [P_STONE, P_TARGET])
    asked = [f["name"] for f in summary["fetched"]]
    for load in (P_STONE, P_TARGET):
        assert asked.index(f"{load}.sbn") < asked.index(f"{load}.sb2"), asked
    # the station counts a load as installed after its .sb2, never after the loader (§0.0 item 9)
    steps = [x["load"] for x in learned(phone.station, phone.mac) if x["how"] == "step"]
    assert steps == [P_STONE, P_TARGET], learned(phone.station, phone.mac)


@pytest.mark.timeout(180)
def test_stones_the_hardware_refuses_give_way_to_the_next_stone_then_the_target(bench):
    summary, r, rep, phone = outcome(bench, "floor")
    assert_recovered(summary, rep, r, TARGET, [TARGET])
    refused = [(x["load"], x["screen"]) for x in summary["refused"]]
    assert refused == [(STONE, "Load rejected HC"), (STONE2, "Load rejected HC")], summary["refused"]
    details = " | ".join(d for _, d in timeline(r))
    assert f"rejected {STONE}" in details and f"rejected {STONE2}" in details, details
    # a stone is what old loads can verify (§0.0 item 6): its refusal is not put down to the signing key
    stone_steps = [d for _, d in timeline(r) if d.startswith("rejected ")]
    assert stone_steps and all("Load rejected HC" in d and "predates" not in d for d in stone_steps), stone_steps
    # a refused stone is never offered again
    manifests = [f["name"] for f in summary["fetched"] if f["name"].endswith(".loads")]
    assert manifests.count(f"{STONE}.loads") == 1 and manifests.count(f"{STONE2}.loads") == 1, manifests


@pytest.mark.timeout(180)
def test_direct_strategy_auth_fail_without_a_reboot_falls_back_to_the_stone(bench):
    summary, r, rep, phone = outcome(bench, "direct")
    assert_recovered(summary, rep, r, TARGET, [STONE, TARGET])
    assert summary["refused"] and summary["refused"][0]["load"] == TARGET, summary["refused"]
    assert summary["refused"][0]["screen"] == "Auth Fail", summary["refused"]
    names = [f["name"] for f in summary["fetched"]]
    first = names.index(f"{TARGET}.loads")
    # the refusal: the target's manifest, no component of it, the config again on the same boot (§0.0 item 5)
    assert names[first + 1] == f"SEP{phone.mac.upper()}.cnf.xml", names
    assert summary["boots"] == 3, summary            # power-on, after the stone, after the target: no reboot for Auth Fail
    details = " | ".join(d for _, d in timeline(r))
    assert f"rejected {TARGET}" in details and "signing key" in details, details
