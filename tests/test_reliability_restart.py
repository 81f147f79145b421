"""`kill -9` each supervised service during a 20-phone recovery: supervisor restarts it and nothing is lost.

Why: a station on a bench runs for hours; a crashed service must cost the phones
a retry, never a duplicated address, a forgotten step or a phone left half-way.
The station is the real `appliance run` (supervisord + dhcp, tftp, dns, api) in a
namespace the test builds; the phones are `appliance simulate` (the independent
model, tools.phonesim, web access off) in another.  Each kill targets the PID
supervisord reports for the program, so only processes this test started are
signalled.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_for
from tests.reliability_figures import record

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip", "curl")]

STATION = "10.74.0.1"
STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S"
PHONES = 20
SERVICES = ("dhcp", "tftp", "dns", "api")
# DHCP last: by then the phones are rebooting into their second lease.
KILLS = [pytest.param(("api", "dns", "dhcp"), "restarts", id="api-dns-dhcp"),
         # the tracker lives in the file service: its successor resumes every phone from the phones table
         pytest.param(("tftp",), "restarts_file_service", id="tftp")]
TRANSFERS_BETWEEN_KILLS = 10
SUPERVISORCTL = str(Path(PYTHON).parent / "supervisorctl")
API_PORT = 8080


def ctl(state: Path, *args: str) -> str:
    return subprocess.run([SUPERVISORCTL, "-s", f"unix://{state}/supervisor.sock", *args], capture_output=True,
                          text=True, timeout=20).stdout


def running_pid(state: Path, name: str) -> int | None:
    """The PID supervisord reports once the program is RUNNING (past startsecs), else None."""
    fields = ctl(state, "status", name).split()
    if len(fields) >= 4 and fields[1] == "RUNNING" and fields[2] == "pid":
        return int(fields[3].rstrip(","))
    return None




def db(state: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(state / "station.db", timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def api(lab: Lab, path: str) -> tuple[int, object]:
    r = lab.run("srv", "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", f"http://127.0.0.1:{API_PORT}{path}",
                timeout=15)
    body, _, code = r.stdout.rpartition("\n")
    try:
        return int(code or 0), json.loads(body)
    except ValueError:
        return int(code or 0), body


def offers_regressed(timeline: list) -> list:
    """Loads offered after a newer one was already offered: progress the station forgot.

    The tracker notes each offer as "step N of M: LOAD"; it may re-offer the same load (a phone
    retrying after a kill), but never an older one once a newer one was reached.
    """
    from appliance.firmware.versions import version_key
    best, back = None, []
    for _, state, detail in timeline:
        if state != "configured" or ": " not in str(detail):
            continue
        key = version_key(str(detail).rsplit(": ", 1)[1].strip())
        if key is None:
            continue
        if best is not None and key < best:
            back.append(detail)
        best = key if best is None else max(best, key)
    return back


@pytest.fixture
def supervised_station(tmp_path):
    from appliance.firmware import synth
    with Lab("rk", subnet="10.74.0") as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        state = tmp_path / "s"
        for load in (STONE, TARGET):
            synth.write_load(state / "firmware", load, size_bytes=200_000, components=3)
        env = station_env(state, DHCP_POOL_START="10.74.1.1", DHCP_POOL_END="10.74.1.250",
                          API_HOST="127.0.0.1", API_PORT=str(API_PORT), DNS_PORT="53")
        log = open(tmp_path / "station.log", "a")
        proc = lab.popen("srv", PYTHON, "-m", "appliance", "run", env=env, stdout=log, cwd=str(REPO))
        seen_pids: set[int] = set()
        try:
            for name in SERVICES:
                seen_pids.add(wait_for(lambda n=name: running_pid(state, n), 60, f"{name} RUNNING under supervisord"))
            wait_for(lambda: (db(state, "SELECT value FROM kv WHERE key = 'dhcp.guard'") or [None])[0] is not None
                     and json.loads(db(state, "SELECT value FROM kv WHERE key = 'dhcp.guard'")[0][0]).get("serving"),
                     60, "DHCP guard to let the station serve")
            yield lab, state, proc, seen_pids, tmp_path
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)   # appliance run forwards it: supervisord stops every program
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    pass
            for pid in seen_pids:                   # only PIDs supervisord reported for this station
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            log.close()


@pytest.mark.parametrize("kill_order,figures", KILLS)
def test_kill_9_during_20_phone_recovery(supervised_station, kill_order, figures):
    lab, state, proc, seen_pids, tmp = supervised_station
    out = open(tmp / "phones.jsonl", "w")
    phones = lab.popen("ph", PYTHON, "-m", "appliance", "simulate", "--interface", "lan0", "--model", "CP-7965G",
                       "--load", "SCCP45.8-3-2S", "--first-mac", "001e7a6b0000", "--count", str(PHONES),
                       "--deadline", "150", "--reboot-seconds", "10", "--no-web", stdout=out, cwd=str(REPO))
    complete = lambda: len(db(state, "SELECT id FROM transfers WHERE result = 'complete'"))  # noqa: E731
    kills = []
    try:
        for name in kill_order:
            # Spread the kills over the recovery: each lands after more files went out.
            floor = complete() + TRANSFERS_BETWEEN_KILLS
            if name == "dhcp":     # while the phones reboot into their second lease (installing the target)
                wait_for(lambda: any(r["step"] >= 1 and r["state"] == "rebooting"
                                     for r in db(state, "SELECT step, state FROM phones")), 90,
                         "a phone installing its second step before killing dhcp")
            else:
                wait_for(lambda f=floor: complete() >= f, 60, f"{TRANSFERS_BETWEEN_KILLS} more transfers before killing {name}")
            old = running_pid(state, name)
            assert old, ctl(state, "status")
            phone_states = [r["state"] for r in db(state, "SELECT state FROM phones")]
            not_done = PHONES - phone_states.count("done")
            running = len(db(state, "SELECT id FROM transfers WHERE result = 'running'"))
            done_files = complete()
            os.kill(old, signal.SIGKILL)
            t0 = time.monotonic()
            new = wait_for(lambda n=name, o=old: (lambda p: p if p not in (None, o) else None)(running_pid(state, n)),
                           60, f"supervisord to restart {name}")
            seen_pids.add(new)
            kills.append({"service": name, "old_pid": old, "new_pid": new, "phones_not_done": not_done,
                          "transfers_running": running, "transfers_complete": done_files,
                          "phone_states": dict(Counter(phone_states)),
                          "restart_s": round(time.monotonic() - t0, 1)})
            assert proc.poll() is None, (tmp / "station.log").read_text()[-3000:]
        phones.wait(200)
    finally:
        lab.kill(phones, signal.SIGTERM)
        out.close()
    results = [json.loads(line) for line in (tmp / "phones.jsonl").read_text().splitlines() if line.startswith("{")]
    macs = [r["mac"].lower() for r in results]
    assert len(results) == PHONES, (tmp / "phones.jsonl").read_text()[-2000:]

    # Every kill landed while the recovery was still under way.
    assert all(k["phones_not_done"] > 0 for k in kills), json.dumps(kills)

    rows = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        rows = {r["mac"]: dict(r) for r in db(state, "SELECT * FROM phones")}
        if all(rows.get(m, {}).get("state") == "done" for m in macs):
            break
        time.sleep(1)
    not_done = {m: (rows.get(m) or {}).get("state") for m in macs if (rows.get(m) or {}).get("state") != "done"}
    on_target = [r for r in results if r["load"] == TARGET]

    leases = [dict(r) for r in db(state, "SELECT mac, ip, state FROM leases")]
    dup_ips = {ip: n for ip, n in Counter(lease["ip"] for lease in leases).items() if n > 1}
    dup_macs = {m: n for m, n in Counter(lease["mac"] for lease in leases).items() if n > 1}
    last_ip = {r["mac"]: r["ip"] for r in results}        # the address each phone held at the end
    shared = {ip: n for ip, n in Counter(ip for ip in last_ip.values() if ip).items() if n > 1}
    code, api_leases = api(lab, "/api/v1/leases")
    api_list = api_leases if isinstance(api_leases, list) else (api_leases or {}).get("leases", [])
    api_dups = {ip: n for ip, n in Counter(lease["ip"] for lease in api_list).items() if n > 1}

    regressed, missing_steps = {}, {}
    for m in macs:
        hints = json.loads((rows.get(m) or {}).get("hints") or "{}")
        timeline = hints.get("timeline", [])
        if offers_regressed(timeline):
            regressed[m] = offers_regressed(timeline)
        states = [s for _, s, _ in timeline]
        if states.count("rebooting") < 2:
            missing_steps[m] = states

    wait_for(lambda: (lambda c: c if c[0] == 200 else None)(api(lab, "/api/v1/health")), 30,
                      "health green after the restarts")
    duplicates = len(dup_ips) + len(dup_macs) + len(shared) + len(api_dups)
    record(figures, services=list(kill_order), kills_injected=len(kills), phones=PHONES,
           phones_finished=PHONES - len(not_done), phones_on_target=len(on_target), duplicate_leases=duplicates,
           progress_lost=len(regressed) + len(missing_steps), leases=len(leases), kills=kills)

    assert len(kills) == len(kill_order)
    assert code == 200 and len(api_list) == len(leases), api_leases
    assert duplicates == 0, (dup_ips, dup_macs, shared, api_dups)
    assert not not_done, not_done
    assert len(on_target) == PHONES, [r for r in results if r["load"] != TARGET][:2]
    assert not regressed and not missing_steps, (regressed, missing_steps)
    assert proc.poll() is None
