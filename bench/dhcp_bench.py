"""DHCP benchmark: the station's server side by side with dnsmasq, in namespaces this script makes.

1. Sustained rate: Kea's `perfdhcp` (package kea-admin) runs full DORA exchanges at offered
   rates of 500/2000/4000 per second for a bounded period against each server.
2. Cold burst: 50 brand-new clients DISCOVER at once (bench/dhcp_burst.py); time to each first OFFER.

dnsmasq runs with its default settings (it pings an address before offering it); a
`dnsmasq --no-ping` row is added for reference.  Every server starts fresh (empty
lease file) for every run.  Prints a table with ratios and writes bench/results/dhcp.json
with median/min/max over the runs.  Needs root; touches only its own namespaces.

    .venv/bin/python bench/dhcp_bench.py            # full: 3 runs, a few minutes
    .venv/bin/python bench/dhcp_bench.py --quick    # CI smoke: 1 run, one rate, short
    .venv/bin/python bench/dhcp_bench.py --rates 4000 --servers station,kea --no-burst --runs 1
                                                    # iterate on one figure (kea: bench/dhcp_suite.py's KeaServer)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dhcp_lab import PYTHON, REPO, Lab, start_station, wait_serving  # noqa: E402

STATION = "10.77.0.1"
CLIENT = "10.77.0.250"
POOL = ("10.77.1.0", "10.77.255.250")
RESULTS = REPO / "bench" / "results" / "dhcp.json"
BURST = REPO / "bench" / "dhcp_burst.py"


class Server:
    """Start/stop one DHCP server in the lab's `srv` namespace with a fresh state each time."""

    def __init__(self, lab: Lab, kind: str, workdir: Path):
        self.lab, self.kind, self.workdir = lab, kind, workdir
        self.proc: subprocess.Popen | None = None
        self.n = 0

    def start(self) -> None:
        self.n += 1
        run_dir = self.workdir / f"{self.kind}-{self.n}"
        run_dir.mkdir(parents=True)
        if self.kind == "station":
            self.proc = start_station(self.lab, "srv", run_dir / "state", run_dir / "dhcp.log", DHCP_GUARD="off",
                                      DHCP_POOL_START=POOL[0], DHCP_POOL_END=POOL[1])
            wait_serving(run_dir / "state", self.proc)
            return
        extra = ["--no-ping"] if self.kind == "dnsmasq-noping" else []
        self.proc = self.lab.popen(
            "srv", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=lan0",
            "--bind-interfaces", "--user=root", f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0",
            "--dhcp-lease-max=200000", "--dhcp-option=150,10.77.0.1", f"--dhcp-leasefile={run_dir / 'leases'}",
            f"--pid-file={run_dir / 'pid'}", *extra, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError("dnsmasq did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.kill(self.proc)
            self.proc = None


def _server(lab: Lab, kind: str, workdir: Path):
    if kind == "kea":
        from bench.dhcp_suite import KeaServer  # here: dhcp_suite imports this module
        return KeaServer(lab, workdir)
    if kind not in ("station", "dnsmasq", "dnsmasq-noping"):
        raise SystemExit(f"dhcp_bench: unknown server {kind!r}")
    return Server(lab, kind, workdir)


def perfdhcp(lab: Lab, rate: int, period: int) -> dict:
    result = lab.run("cli", "perfdhcp", "-4", "-B", "-l", "lan0", "-r", str(rate), "-p", str(period),
                     "-R", "1000000", timeout=period + 60)
    text = result.stdout
    rate_match = re.search(r"Rate: ([\d.]+) 4-way exchanges/second", text)
    sent = [int(x) for x in re.findall(r"sent packets: (\d+)", text)]
    received = [int(x) for x in re.findall(r"received packets: (\d+)", text)]
    if not rate_match or len(sent) < 2:
        return {"leases_per_s": 0.0, "drop_pct": 100.0, "error": (result.stderr or text)[-300:]}
    discovers, acks = sent[0], received[1]
    return {"leases_per_s": float(rate_match.group(1)),
            "drop_pct": round(100.0 * (1 - acks / discovers), 3) if discovers else 100.0,
            "discovers": discovers, "acks": acks}


def burst(lab: Lab, count: int, timeout: float) -> dict:
    result = lab.run("cli", PYTHON, str(BURST), "--count", str(count), "--timeout", str(timeout),
                     timeout=timeout + 30)
    doc = json.loads(result.stdout)
    times = [t for t in doc["times"] if t is not None]
    return {"answered": doc["answered"], "count": count,
            "mean_s": statistics.mean(times) if times else None,
            "max_s": max(times) if len(times) == count else None,   # None: someone never got an offer
            "last_answered_s": max(times) if times else None}


def summary(values: list[float | None]) -> dict:
    nums = [v for v in values if v is not None]
    if not nums:
        return {"median": None, "min": None, "max": None, "runs": len(values)}
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums), "runs": len(values),
            "missing": len(values) - len(nums)}


def print_report(report: dict) -> None:
    kinds = list(report["rates"])
    rates = list(next(iter(report["rates"].values())))
    peers = [k for k in kinds if k != "station"] if "station" in kinds else []
    runs, period = report["runs"], report["period_s"]
    print()
    print(f"DHCP sustained rate (perfdhcp, {period} s per run, median of {runs}; ratio = station / peer)")
    print(f"{'offered/s':>9} | " + " | ".join(f"{k + ' leases/s (drop%)':>32}" for k in kinds) + " | "
          + " | ".join(f"{'vs ' + p:>18}" for p in peers))
    for rate in rates:
        cells, values = [], {}
        for kind in kinds:
            stats = report["rates"][kind][rate]
            values[kind] = stats["leases_per_s"]["median"] or 0.0
            cells.append(f"{values[kind]:>21.1f} ({stats['drop_pct']['median']:6.2f}%)")
        ratios = [f"{values['station'] / values[p]:.2f}x" if values[p] else "peer completed 0" for p in peers]
        print(f"{rate:>9} | " + " | ".join(f"{c:>32}" for c in cells) + " | "
              + " | ".join(f"{r:>18}" for r in ratios))
    if not report["burst"]:
        return
    print()
    print(f"Cold burst of 50 new clients: seconds to first OFFER (median of {runs})")
    for kind, stats in report["burst"].items():
        mean, worst = stats["mean_s"]["median"], stats["max_s"]["median"]
        print(f"  {kind:15s} answered {stats['answered']['median']}/50, mean {mean:.4f} s, "
              f"all within {worst:.4f} s" if mean is not None and worst is not None else
              f"  {kind:15s} answered {stats['answered']['median']}/50")
    st, dm = report["burst"].get("station", {}), report["burst"].get("dnsmasq", {})
    if st.get("mean_s", {}).get("median") and dm.get("mean_s", {}).get("median"):
        print(f"  mean time to first OFFER: dnsmasq / station = "
              f"{dm['mean_s']['median'] / st['mean_s']['median']:.0f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one run, one rate, short period (CI smoke)")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--period", type=int, default=None, help="perfdhcp seconds per run")
    ap.add_argument("--rates", help="comma-separated offered rates (default 500,2000,4000; 500 with --quick)")
    ap.add_argument("--servers", help="comma-separated, from station,dnsmasq,dnsmasq-noping,kea "
                                      "(default station,dnsmasq,dnsmasq-noping; station,dnsmasq with --quick)")
    ap.add_argument("--no-burst", action="store_true", help="skip the cold-burst runs")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--show", type=Path, metavar="JSON", help="print the table of an earlier results file and exit")
    args = ap.parse_args()
    if args.show:
        print_report(json.loads(args.show.read_text()))
        return 0
    if os.geteuid() != 0:
        print("dhcp_bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.quick else 3)
    period = args.period or (2 if args.quick else 4)
    rates = [int(r) for r in args.rates.split(",")] if args.rates else [500] if args.quick else [500, 2000, 4000]
    kinds = (args.servers.split(",") if args.servers else
             ["station", "dnsmasq"] if args.quick else ["station", "dnsmasq", "dnsmasq-noping"])
    tools = {"perfdhcp", "ip"} | ({"dnsmasq"} if any(k.startswith("dnsmasq") for k in kinds) else set())
    tools |= {"kea-dhcp4"} if "kea" in kinds else set()
    for tool in sorted(tools):
        if shutil.which(tool) is None:
            print(f"dhcp_bench: missing {tool} (make test installs it; kea-dhcp4: Debian kea-dhcp4-server)",
                  file=sys.stderr)
            return 2
    burst_timeout = 30.0 if args.quick else 45.0
    raw: dict = {"rates": {}, "burst": {}}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="dhcp-bench-") as tmp, Lab("db") as lab:
        lab.add("srv", STATION)
        lab.add("cli", CLIENT)
        servers = {kind: _server(lab, kind, Path(tmp)) for kind in kinds}
        for run in range(runs):
            for kind, server in servers.items():
                for rate in rates:
                    server.start()
                    try:
                        res = perfdhcp(lab, rate, period)
                    finally:
                        server.stop()
                    raw["rates"].setdefault(kind, {}).setdefault(str(rate), []).append(res)
                    print(f"run {run + 1}/{runs} {kind:15s} offered {rate:5d}/s: {res['leases_per_s']:8.1f} leases/s, "
                          f"{res['drop_pct']:.2f}% dropped", flush=True)
                if kind == "dnsmasq-noping" or args.no_burst:
                    continue
                server.start()
                try:
                    res = burst(lab, 50, burst_timeout)
                finally:
                    server.stop()
                raw["burst"].setdefault(kind, []).append(res)
                print(f"run {run + 1}/{runs} {kind:15s} burst of 50: {res['answered']}/50 offered, mean "
                      f"{res['mean_s']}, all within {res['max_s']} s", flush=True)

    report: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick, "runs": runs,
                    "period_s": period, "cpu_count": os.cpu_count(), "duration_s": round(time.time() - started, 1),
                    "rates": {}, "burst": {}, "raw": raw}
    for kind, by_rate in raw["rates"].items():
        report["rates"][kind] = {rate: {"leases_per_s": summary([r["leases_per_s"] for r in rs]),
                                        "drop_pct": summary([r["drop_pct"] for r in rs])}
                                 for rate, rs in by_rate.items()}
    for kind, rs in raw["burst"].items():
        report["burst"][kind] = {"answered": summary([r["answered"] for r in rs]),
                                 "mean_s": summary([r["mean_s"] for r in rs]),
                                 "max_s": summary([r["max_s"] for r in rs]),
                                 "last_answered_s": summary([r["last_answered_s"] for r in rs])}

    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
