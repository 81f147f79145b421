"""`make bench`: the station against dnsmasq, tftpd-hpa and Kea in one run, on one machine, in namespaces it builds.

    python -m bench.run [--quick] [--runs N] [--only tftp,dhcp,fleet,footprint] [--out DIR] [--budget S]

Installs missing Debian peers when root (with services kept from starting on
the host), runs each section bounded by the overall time budget, and writes
benchmarks.md and benchmarks.json (docs/ for full runs; build/bench-quick/ for
--quick so a smoke run never replaces the committed figures).  A section whose
station part has not landed, or that fails, is reported "not available" with
the reason; no figure is ever filled in.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import dhcp_suite, fleet, report, tftp_bench  # noqa: E402
from bench.common import Deadline, machine, unavailable  # noqa: E402

SECTIONS = ["tftp", "dhcp", "fleet", "footprint"]
# command -> Debian package providing it
PEER_DEBS = {"dnsmasq": "dnsmasq-base", "in.tftpd": "tftpd-hpa", "perfdhcp": "kea-admin",
             "kea-dhcp4": "kea-dhcp4-server", "curl": "curl", "atftp": "atftp", "ip": "iproute2"}
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def install_peers(log=print) -> list[str]:
    """apt-get the missing peers; policy-rc.d 101 keeps tftpd-hpa and Kea from starting on the host's network."""
    missing = sorted({deb for cmd, deb in PEER_DEBS.items() if shutil.which(cmd) is None})
    if not missing or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return missing
    log(f"installing peers: {' '.join(missing)}")
    made_policy = not POLICY_RC.exists()
    if made_policy:
        POLICY_RC.write_text("#!/bin/sh\n# written by bench/run.py while installing peers; removed after\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
                       capture_output=True, timeout=900)
    finally:
        if made_policy:
            POLICY_RC.unlink(missing_ok=True)
    return sorted({deb for cmd, deb in PEER_DEBS.items() if shutil.which(cmd) is None})


def guarded(section: str, func, *args, **kw) -> list[dict]:
    try:
        return func(*args, **kw)
    except Exception as exc:  # a broken part must not hide the other sections' figures
        traceback.print_exc()
        return [unavailable(section, f"{section} section", f"bench error: {type(exc).__name__}: {exc}")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test (CI)")
    ap.add_argument("--runs", type=int, help="runs per figure (default 3; 1 with --quick)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    ap.add_argument("--out", type=Path, help="directory for benchmarks.md/json (default docs/, or build/bench-quick/)")
    ap.add_argument("--budget", type=float, help="seconds for the whole run (default 1380; 200 with --quick)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    runs = args.runs or (1 if args.quick else 3)
    out_dir = args.out or (REPO / "build" / "bench-quick" if args.quick else REPO / "docs")
    # --quick: room for both fleet shelves after TFTP and DHCP (each fleet side needs ~30 s even tiny)
    deadline = Deadline(args.budget or (200 if args.quick else 1380))
    started = time.time()
    command = "python -m bench.run" + ("" if argv is None and len(sys.argv) <= 1 else " " + shlex.join(
        sys.argv[1:] if argv is None else argv))

    def log(line: str) -> None:
        print(line, flush=True)

    scenarios: list[dict] = []
    if os.geteuid() != 0:
        reason = "needs root (network namespaces); run `sudo make bench`"
        scenarios = [unavailable(s, f"{s} section", reason) for s in only]
        log(f"bench: {reason}")
    else:
        still_missing = install_peers(log)
        if still_missing:
            log(f"bench: peers still missing: {' '.join(still_missing)} (their columns will be absent)")
        with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
            work = Path(tmp)
            work.chmod(0o755)
            if "dhcp" in only:
                scenarios += guarded("dhcp", dhcp_suite.run, work / "dhcp", runs, args.quick, deadline, log)
            if "tftp" in only:
                scenarios += guarded("tftp", tftp_bench.run, work / "tftp", runs, args.quick, deadline, log)
            if "fleet" in only or "footprint" in only:
                scenarios += [sc for sc in guarded("fleet", fleet.run, work / "fleet", runs, args.quick, deadline, log)
                              if sc["section"] in only]
    doc = {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick,
           "runs": runs, "sections": only, "duration_s": round(time.time() - started, 1), "machine": machine(),
           "scenarios": scenarios}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "benchmarks.md").write_text(report.render(doc))
    log(f"bench: wrote {out_dir / 'benchmarks.md'} and benchmarks.json in {doc['duration_s']:.0f} s")
    return 0 if os.geteuid() == 0 else 2


if __name__ == "__main__":
    raise SystemExit(main())
