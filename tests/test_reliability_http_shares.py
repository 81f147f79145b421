"""Fifty open event streams and fifty dripping clients on 8080, fifty dripping and fifty slow-reading clients on
HTTP :6970, while a genuine model phone recovers over HTTP and a tech's laptop polls `/api/v1/health`.

Why (issue 24 item 2): two dozen open dashboards or unfinished requests used to leave health unanswered, and a
few hundred unfinished requests filled :6970.  The station is the real `appliance serve dhcp`, `serve tftp` and
`serve api` in a namespace; the phone is the independent model (tools.phonesim --http-first) in another; the
attackers come from 25 addresses of a third (two of each kind per address, so every per-address share holds and
the totals are what is tested); the health poller is a fourth.  The phone recovers twice, once without the attack
(the baseline) and once under it; both times it must end on its target with a report that says so.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_for
from tests.reliability_figures import record_attack
from tests.reliability_station import POLL, assert_store_within_bounds, store_size

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip")]

NET = "10.87"
STATION = f"{NET}.0.1"
OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
ATTACKERS = 25                 # addresses; each opens two of every kind: 50 of each
PHONE_DEADLINE_S = 100
CLIENT_TIMEOUT_S = 10.0        # the health poller's patience: "answered" means before this

# The attackers, run in their own namespace until `stop` exists (or `limit` seconds): 8080 event streams that
# read what they get (open dashboards; a refused one tries again after its Retry-After), 8080 and 6970 requests
# dripped a byte every 0.5 s (reopened when the station ends them), 6970 downloads read 64 bytes every 0.5 s.
ATTACK = r'''
import json, os, socket, sys, time
station, base, n, stop, limit, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6]
KINDS = {"stream": (8080, b"GET /api/v1/events?duration=60 HTTP/1.1\r\nHost: s\r\n\r\n"),
         "drip8080": (8080, b"GET /api/v1/phones HTTP/1.1\r\nHost: s\r\nX-Slow: "),
         "drip6970": (6970, ("GET /%s HTTP/1.1\r\nHost: s\r\nX-Slow: " % name).encode()),
         "slow6970": (6970, ("GET /%s HTTP/1.1\r\nHost: s\r\n\r\n" % name).encode())}
stats = {k: {"opened": 0, "ended_by_station": 0, "refused_503": 0, "answered_200": 0, "connect_failed": 0} for k in KINDS}
held = {k: 0 for k in KINDS}
def open_one(kind, src):
    port, first = KINDS[kind]
    s = socket.socket()
    if kind == "slow6970":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((src, 0)); s.settimeout(3)
    try:
        s.connect((station, port)); s.sendall(first)
    except OSError:
        stats[kind]["connect_failed"] += 1; s.close(); return None
    s.setblocking(False); stats[kind]["opened"] += 1
    return {"s": s, "kind": kind, "src": src, "seen": b"", "again": 0.0}
conns = [open_one(k, "%s.%d" % (base, 1 + i // 2)) for k in KINDS for i in range(n)]
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    now = time.monotonic()
    held = {k: 0 for k in KINDS}
    for i, c in enumerate(conns):
        kind = KINDS and (c["kind"] if c else list(KINDS)[i // n])
        if c is None or c.get("dead"):
            src = "%s.%d" % (base, 1 + (i % n) // 2)
            if c is None or now >= c["again"]:
                conns[i] = open_one(kind, src)
            continue
        s = c["s"]
        try:
            if kind.startswith("drip"):
                s.send(b"a")
            data = s.recv(64 if kind == "slow6970" else 65536)
            if not data:
                raise ConnectionResetError
            if len(c["seen"]) < 12:
                c["seen"] += data
                if c["seen"].startswith(b"HTTP/1.1 503"):
                    stats[kind]["refused_503"] += 1; c["dead"] = True; c["again"] = now + 30; s.close(); continue
                if c["seen"].startswith(b"HTTP/1.1 200"):
                    stats[kind]["answered_200"] += 1
        except BlockingIOError:
            pass
        except OSError:
            stats[kind]["ended_by_station"] += 1; c["dead"] = True; c["again"] = now; s.close(); continue
        held[kind] += 1
    time.sleep(0.5)
print(json.dumps({"stats": stats, "held_at_end": held}), flush=True)
'''


def _services(state: Path) -> dict:
    try:
        conn = sqlite3.connect(state / "station.db", timeout=5)
        try:
            return {n: json.loads(i or "{}") for n, i in conn.execute("SELECT name, info FROM services")}
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


@pytest.fixture
def station(tmp_path):
    from appliance.firmware import synth
    with Lab("hsh", subnet=f"{NET}.0") as lab:
        lab.add("srv", STATION)
        state = tmp_path / "state"
        for load in (STONE, TARGET):
            synth.write_zip(state / "firmware", load, size_bytes=400_000, components=5, term=True)
        env = station_env(state, DHCP_POOL_START=f"{NET}.1.1", DHCP_POOL_END=f"{NET}.1.250",
                          API_HOST="0.0.0.0", API_PORT="8080")
        procs = {}
        for svc in ("dhcp", "tftp", "api"):
            with open(tmp_path / f"{svc}.log", "a") as log:
                procs[svc] = lab.popen("srv", PYTHON, "-m", "appliance", "serve", svc, env=env, stdout=log,
                                       cwd=str(REPO))
        wait_serving(state, procs["dhcp"], timeout=30)
        wait_for(lambda: {"tftp", "api"} <= set(_services(state)), 30, "the file service and the API to beat")
        lab.add("tech", f"{NET}.0.2")
        attackers = lab.add("atk", f"{NET}.2.1")
        for i in range(2, ATTACKERS + 1):
            subprocess.run(["ip", "netns", "exec", attackers, "ip", "addr", "add", f"{NET}.2.{i}/16", "dev", "lan0"],
                           check=True, capture_output=True)
        yield lab, state, env, tmp_path, procs


def _phone(lab: Lab, tmp: Path, ns: str, mac: int) -> tuple[dict, float]:
    """One model 7965 on 8.3(2), HTTP first: (its own summary, seconds from power-on to the end of its run)."""
    lab.add(ns)
    out = tmp / f"{ns}.jsonl"
    t0 = time.monotonic()
    with open(out, "w") as fh:
        proc = lab.popen(ns, PYTHON, "-m", "tools.phonesim", "--interface", "lan0", "--model", "CP-7965G",
                         "--load", OLD, "--http-first", "--no-web", "--ignore-web-access", "--first-mac",
                         f"{mac - 1:012x}", "--deadline", str(PHONE_DEADLINE_S),
                         env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=fh, cwd=str(REPO))
    try:
        proc.wait(PHONE_DEADLINE_S + 30)
    finally:
        lab.kill(proc)
    took = time.monotonic() - t0
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(lines) == 1, out.read_text()[-2000:]
    return json.loads(lines[0]), took


def _report(lab: Lab, env: dict) -> dict[str, dict]:
    r = subprocess.run(["ip", "netns", "exec", lab.members["srv"], PYTHON, "-m", "appliance", "report", "--format",
                        "json"], env=env, capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    return {p["mac"]: p for p in json.loads(r.stdout)["phones"]}


def _on_target(summary: dict, lab: Lab, env: dict) -> dict:
    """The phone says it runs the target, took its firmware over HTTP, and the station's report agrees."""
    assert summary["load"] == TARGET, summary
    over_http = [f for f in summary["fetched"] if f["via"] == "http" and f["ok"] and f["role"] == "component"]
    assert over_http, [(f["name"], f["via"], f["ok"], f["error"]) for f in summary["fetched"]]
    rep = wait_for(lambda: (lambda r: r if r.get("result") == "recovered" else None)(
        _report(lab, env).get(summary["mac"].lower(), {})), 60, "the report to say recovered", every=1.0)
    assert rep.get("load_after") == TARGET, rep
    return rep


def test_streams_and_slow_clients_on_8080_and_6970_do_not_stop_a_phone_or_health(station):
    lab, state, env, tmp, procs = station
    baseline, _ = _phone(lab, tmp, "ph1", 0x001E7A870001)
    _on_target(baseline, lab, env)

    stop = tmp / "stop"
    store_before = store_size(state)
    with open(tmp / "attack.json", "w") as fh:
        attack = lab.popen("atk", PYTHON, "-c", ATTACK, STATION, f"{NET}.2", "50", str(stop), "200",
                           f"{STONE}.loads", stdout=fh, stderr=subprocess.STDOUT)
    with open(tmp / "polls.json", "w") as fh:
        poller = lab.popen("tech", PYTHON, "-c", POLL, f"http://{STATION}:8080/api/v1/health", str(stop), "200",
                           str(CLIENT_TIMEOUT_S), stdout=fh, stderr=subprocess.STDOUT)
    try:
        # The phone powers on into the attack's steady state: past the API's and :6970's header deadline (10 s), so
        # the drippers have been cut once and are back.
        time.sleep(12)
        attacked, _ = _phone(lab, tmp, "ph2", 0x001E7A870101)
        shares = _services(state)
    finally:
        stop.write_text("stop")
        for proc in (attack, poller):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                lab.kill(proc, signal.SIGKILL)
    report_row = _on_target(attacked, lab, env)
    attack_doc = json.loads([x for x in (tmp / "attack.json").read_text().splitlines() if x.startswith("{")][-1])
    polls = json.loads((tmp / "polls.json").read_text().splitlines()[-1])
    store_after = store_size(state)
    unanswered = [p for p in polls if not isinstance(p[1], int)]
    worst = max(p[0] for p in polls)
    stats = attack_doc["stats"]
    api_shares = shares.get("api", {}).get("shares", {})
    held = attack_doc["held_at_end"]
    record_attack("http_shares", attack="event streams and slow HTTP clients on 8080 and :6970",
                  load=f"50 event streams and 50 dripping requests on 8080, 50 dripping requests and 50 slow readers "
                       f"on :6970, from {ATTACKERS} addresses (held at the end: " +
                       ", ".join(f"{k} {v}" for k, v in held.items()) + ")",
                  phone_s_without=baseline["elapsed_s"], phone_s_with=attacked["elapsed_s"],
                  store_before=store_before, store_after=store_after,
                  attack_seen=stats, held_at_end=held, api_shares=api_shares,
                  health={"polls": len(polls), "unanswered": len(unanswered), "worst_s": round(worst, 3)},
                  report_load=report_row.get("load_after"))

    assert attack.returncode == 0 and poller.returncode == 0
    assert len(polls) >= 10 and not unanswered, unanswered[:5]
    # The attack was real: every kind connected, streams were served up to their bound and refused past it.
    assert all(stats[k]["opened"] >= 50 for k in stats), stats
    assert stats["stream"]["answered_200"] >= 1 and stats["stream"]["refused_503"] >= 1, stats
    assert stats["drip8080"]["ended_by_station"] >= 1 and stats["drip6970"]["ended_by_station"] >= 1, stats
    assert procs["api"].poll() is None and procs["tftp"].poll() is None
    assert_store_within_bounds(store_after)
