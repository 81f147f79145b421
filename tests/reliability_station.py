"""The pieces the attack tests share: a station in a namespace lab, the tech's health poller, a genuine model
phone's run, the station's report and the store's size.

Why one module: each attack test (tests/test_reliability_*.py) runs the same station, the same phone twice (without
and with its attack) and measures the same things, so the figures in docs/reliability.md compare like with like.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"

# The tech's laptop: GET /api/v1/health every 0.5 s until `stop` exists (or `limit` s); each latency and status.
POLL = r'''
import json, os, sys, time, urllib.request, urllib.error
url, stop, limit, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
polls, end = [], time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    t0 = time.monotonic()
    try:
        code = urllib.request.urlopen(url, timeout=timeout).status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError as e:
        code = repr(e)
    polls.append([round(time.monotonic() - t0, 4), code])
    time.sleep(0.5)
print(json.dumps(polls), flush=True)
'''


def services(state: Path) -> dict[str, dict]:
    """Each service's last heartbeat info, {} while there is no database."""
    try:
        conn = sqlite3.connect(state / "station.db", timeout=5)
        try:
            return {n: json.loads(i or "{}") for n, i in conn.execute("SELECT name, info FROM services")}
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def store_size(state: Path) -> dict[str, int]:
    """The store as docs/reliability.md states it: bytes on disk (database and WAL) and the rows of the tables
    that grow with traffic (appliance/store/README.md, Bounds)."""
    out = {"bytes": sum(p.stat().st_size for p in state.glob("station.db*") if p.is_file())}
    conn = sqlite3.connect(state / "station.db", timeout=10)
    try:
        for table in ("events", "transfers", "phones"):
            out[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()
    return out


def assert_store_within_bounds(size: dict[str, int]) -> None:
    """The bounds appliance/store/README.md states: the tables' row caps, the database under 64 MiB."""
    from appliance.store import BOUNDS
    assert size["bytes"] < 64 << 20, size
    for table, bound in BOUNDS.items():
        assert size[table] <= bound.rows, (table, size)


class Station:
    """`appliance serve` for each of `services` in namespace `srv` of a lab on NET.0.0/16 (the pool NET.1.1-250),
    with the stone and the target of a 7965 in its firmware library.  The API listens on every address."""

    def __init__(self, lab: Lab, tmp: Path, net: str, services_run: tuple[str, ...] = ("dhcp", "tftp", "api"),
                 firmware_bytes: int = 24_000, **overrides: str):
        from appliance.firmware import synth
        self.lab, self.tmp, self.net = lab, tmp, net
        self.ip = f"{net}.0.1"
        lab.add("srv", self.ip)
        self.state = tmp / "state"
        for load in (STONE, TARGET):
            synth.write_zip(self.state / "firmware", load, size_bytes=firmware_bytes, components=5, term=True)
        self.env = station_env(self.state, DHCP_POOL_START=f"{net}.1.1", DHCP_POOL_END=f"{net}.1.250",
                               API_HOST="0.0.0.0", API_PORT="8080", **overrides)
        self.procs: dict[str, subprocess.Popen] = {}
        for svc in services_run:
            self.start(svc)
        wait_serving(self.state, self.procs["dhcp"], timeout=30)
        wait_for(lambda: set(services_run) - {"lldpd"} <= set(services(self.state)), 30, "every service to beat")

    def start(self, svc: str) -> subprocess.Popen:
        argv = ("-m", "appliance.recovery.lldp") if svc == "lldpd" else ("-m", "appliance", "serve", svc)
        with open(self.tmp / f"{svc}.log", "a") as log:
            self.procs[svc] = self.lab.popen("srv", PYTHON, *argv, env=self.env, stdout=log, cwd=str(REPO))
        return self.procs[svc]

    def log(self, svc: str) -> str:
        return (self.tmp / f"{svc}.log").read_text(errors="replace")

    def alive(self) -> dict[str, int | None]:
        """Each service's exit status (None: still running)."""
        return {name: proc.poll() for name, proc in self.procs.items()}

    def report(self) -> dict[str, dict]:
        """`appliance report --format json`, by MAC."""
        r = subprocess.run(["ip", "netns", "exec", self.lab.members["srv"], PYTHON, "-m", "appliance", "report",
                            "--format", "json"], env=self.env, capture_output=True, text=True, timeout=30,
                           cwd=str(REPO))
        assert r.returncode == 0, r.stderr[-2000:]
        return {p["mac"]: p for p in json.loads(r.stdout)["phones"]}

    def events(self, sql_where: str = "1", args: tuple = ()) -> list[dict]:
        conn = sqlite3.connect(self.state / "station.db", timeout=10)
        try:
            rows = conn.execute(f"SELECT ts, source, kind, mac, data FROM events WHERE {sql_where} ORDER BY id",
                                args).fetchall()
        finally:
            conn.close()
        return [{"ts": ts, "source": s, "kind": k, "mac": m, "data": json.loads(d or "null")} for ts, s, k, m, d in rows]


class HealthPoller:
    """The tech's laptop in namespace `tech` (NET.0.2), polling /api/v1/health from start to stop()."""

    def __init__(self, station: Station, name: str, limit_s: float = 400, timeout_s: float = 10.0):
        lab = station.lab
        if "tech" not in lab.members:
            lab.add("tech", f"{station.net}.0.2")
        self.lab, self.stop_file, self.out = lab, station.tmp / f"stop-{name}", station.tmp / f"polls-{name}.json"
        with open(self.out, "w") as fh:
            self.proc = lab.popen("tech", PYTHON, "-c", POLL, f"http://{station.ip}:8080/api/v1/health",
                                  str(self.stop_file), str(limit_s), str(timeout_s), stdout=fh,
                                  stderr=subprocess.STDOUT)

    def stop(self) -> dict:
        """{polls, unanswered, worst_s}: unanswered counts polls that got no HTTP answer at all."""
        self.stop_file.write_text("stop")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.lab.kill(self.proc)
        polls = json.loads(self.out.read_text().splitlines()[-1])
        unanswered = [p for p in polls if not isinstance(p[1], int)]
        return {"polls": len(polls), "unanswered": len(unanswered), "worst_s": max((p[0] for p in polls), default=0),
                "first_unanswered": unanswered[:3]}


def run_phone(station: Station, ns: str, mac: int, load: str = OLD, *args: str, deadline_s: float = 100,
              during=None) -> tuple[dict, float]:
    """One tools.phonesim 7965 on `load` in its own namespace, to its end: (its JSON summary, seconds from
    power-on to its end as the phone itself timed them).  `during()` runs about every half second meanwhile."""
    lab = station.lab
    lab.add(ns)
    out = station.tmp / f"phone-{ns}.jsonl"
    t0 = time.monotonic()
    with open(out, "w") as fh:
        proc = lab.popen(ns, PYTHON, "-m", "tools.phonesim", "--interface", "lan0", "--model", "CP-7965G",
                         "--load", load, "--first-mac", f"{mac - 1:012x}", "--deadline", str(deadline_s), *args,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=fh, stderr=subprocess.STDOUT,
                         cwd=str(REPO))
    end = t0 + deadline_s + 30
    while proc.poll() is None and time.monotonic() < end:
        if during is not None:
            during()
        time.sleep(0.5)
    if proc.poll() is None:
        lab.kill(proc)
        pytest.fail(f"phone {mac:012x} did not end within its deadline")
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(lines) == 1, out.read_text()[-2000:]
    summary = json.loads(lines[0])
    return summary, summary["elapsed_s"]


def assert_on_target(station: Station, summary: dict, installed: list[str], may_refuse: tuple[str, ...] = ()) -> dict:
    """The phone runs the target, installed exactly `installed`, refused nothing but `may_refuse`, and the report
    says recovered with no diagnosis."""
    mac = summary["mac"].lower()
    rep = wait_for(lambda: (lambda r: r if r.get("result") == "recovered" else None)(station.report().get(mac, {})),
                   30, f"the report to say {mac} recovered", every=1.0)
    why = json.dumps({"phone": {k: summary.get(k) for k in ("load", "installed", "refused", "end", "log")},
                      "report": rep}, indent=1)[:4000]
    assert summary["load"] == TARGET and summary["end"] == "settled", why
    assert summary["installed"] == installed, why
    assert {r["load"] for r in summary["refused"]} <= set(may_refuse), why
    assert rep["load_after"] == TARGET and not rep.get("diagnosis"), why
    return rep
