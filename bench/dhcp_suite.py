"""DHCP scenarios for `make bench`: bench/dhcp_bench.py's perfdhcp and cold-burst runs, with Kea as a second peer.

The station and dnsmasq servers, the perfdhcp driver and the burst client are
reused from dhcp_bench.py as they are; this module adds `KeaServer` (kea-dhcp4,
memfile lease database in a temp dir, Debian's default INFO logging) and turns
the raw runs into scenario records with ratios.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import Deadline, finish, scenario, summary
from bench.dhcp_bench import CLIENT, POOL, STATION, Server, burst, perfdhcp
from bench.dhcp_lab import Lab

PEERS = ["dnsmasq", "kea", "dnsmasq-noping"]
RATE_TARGET = 2000
BURST_TARGET_S = 0.1


class KeaServer:
    """kea-dhcp4 as a peer, fresh lease file per start (like the other servers)."""

    def __init__(self, lab: Lab, workdir: Path):
        self.lab, self.workdir = lab, workdir
        self.proc: subprocess.Popen | None = None
        self.n = 0

    def start(self) -> None:
        self.n += 1
        run_dir = self.workdir / f"kea-{self.n}"
        run_dir.mkdir(parents=True)
        conf = {"Dhcp4": {
            "interfaces-config": {"interfaces": ["lan0"], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": True, "name": str(run_dir / "leases.csv"),
                               "lfc-interval": 0},
            "valid-lifetime": 3600,
            "subnet4": [{"subnet": "10.77.0.0/16", "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                         "option-data": [{"code": 150, "csv-format": False, "data": "0A4D0001"}]}],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
        }}
        (run_dir / "kea-dhcp4.conf").write_text(json.dumps(conf, indent=1))
        env = dict(os.environ, KEA_PIDFILE_DIR=str(run_dir), KEA_LOCKFILE_DIR=str(run_dir))
        log = run_dir / "kea.log"
        self.proc = self.lab.popen("srv", "kea-dhcp4", "-c", str(run_dir / "kea-dhcp4.conf"), env=env,
                                   stdout=open(log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kea-dhcp4 exited {self.proc.returncode}: {log.read_text()[-300:]}")
            if "DHCP4_STARTED" in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise TimeoutError("kea-dhcp4 did not log DHCP4_STARTED within 15 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.kill(self.proc)
            self.proc = None


def run(work: Path, runs: int, quick: bool, deadline: Deadline, log=print) -> list[dict]:
    rates = [500] if quick else [500, 2000, 4000]
    period = 2 if quick else 4
    burst_count, burst_timeout = (10, 8.0) if quick else (50, 45.0)
    kinds = ["station", "dnsmasq"]
    notes = []
    if shutil.which("kea-dhcp4"):
        kinds.append("kea")
    else:
        notes.append("kea: kea-dhcp4 not installed (Debian kea-dhcp4-server)")
    if not quick:
        kinds.append("dnsmasq-noping")
    if shutil.which("perfdhcp") is None:
        return [{"section": "dhcp", "name": f"perfdhcp offered {r}/s", "status": "not available",
                 "reason": "perfdhcp not installed (Debian kea-admin)", "results": {}, "ratios": {}} for r in rates]
    raw_rates: dict[int, dict[str, list]] = {r: {} for r in rates}
    raw_burst: dict[str, list] = {}
    work.mkdir(parents=True, exist_ok=True)
    with Lab("bd") as lab:
        lab.add("srv", STATION)
        lab.add("cli", CLIENT)
        servers = {k: (KeaServer(lab, work) if k == "kea" else Server(lab, k, work)) for k in kinds}
        for run_no in range(runs):
            if not deadline.allows(30 if quick else 120):
                notes.append(f"time budget reached after {run_no} run(s)")
                break
            for kind, server in servers.items():
                for rate in rates:
                    try:
                        server.start()
                    except (RuntimeError, TimeoutError) as exc:
                        notes.append(f"{kind} did not start: {exc}")
                        continue
                    try:
                        res = perfdhcp(lab, rate, period)
                    finally:
                        server.stop()
                    raw_rates[rate].setdefault(kind, []).append(res)
                    log(f"dhcp run {run_no + 1}/{runs} {kind:14s} offered {rate:5d}/s: {res['leases_per_s']:8.1f} "
                        f"leases/s, {res['drop_pct']:.2f}% dropped")
                if kind == "dnsmasq-noping":
                    continue
                try:
                    server.start()
                except (RuntimeError, TimeoutError) as exc:
                    notes.append(f"{kind} did not start: {exc}")
                    continue
                try:
                    res = burst(lab, burst_count, burst_timeout)
                finally:
                    server.stop()
                raw_burst.setdefault(kind, []).append(res)
                log(f"dhcp run {run_no + 1}/{runs} {kind:14s} burst of {burst_count}: {res['answered']} offered, "
                    f"all within {res['max_s']} s")
    out = []
    for rate in rates:
        sc = scenario("dhcp", f"perfdhcp offered {rate}/s", "completed leases", "leases/s", True, period_s=period,
                      drop_pct={}, notes=notes)
        for kind, results in raw_rates[rate].items():
            sc["results"][kind] = summary([r["leases_per_s"] for r in results])
            sc["drop_pct"][kind] = summary([r["drop_pct"] for r in results])
        if rate == RATE_TARGET and "station" in sc["results"]:
            got, drops = sc["results"]["station"]["median"], sc["drop_pct"]["station"]["median"]
            sc["target"] = {"text": f"at least {RATE_TARGET} completed leases/s with no more than 1% drops "
                                    f"(offered {RATE_TARGET}/s, so >= 99% of offered)",
                            "met": bool(got is not None and got >= 0.99 * RATE_TARGET and drops <= 1.0)}
        out.append(finish(sc, PEERS))
    sc = scenario("dhcp", f"cold burst of {burst_count} new clients: time until every one has an OFFER",
                  "time to last first-OFFER", "s", False, clients=burst_count, answered={}, mean_s={}, notes=notes)
    for kind, results in raw_burst.items():
        sc["results"][kind] = summary([r["max_s"] for r in results])
        sc["answered"][kind] = summary([r["answered"] for r in results])
        sc["mean_s"][kind] = summary([r["mean_s"] for r in results])
    if "station" in sc["results"]:
        worst = sc["results"]["station"]["median"]
        sc["target"] = {"text": f"every one of {burst_count} simultaneous new clients offered within "
                                f"{BURST_TARGET_S} s", "met": bool(worst is not None and worst <= BURST_TARGET_S)}
    out.append(finish(sc, PEERS))
    return out
