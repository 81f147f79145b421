"""`appliance demo` and `appliance simulate`: the station with model phones from tools.phonesim, no hardware.

The phones are the independent model outside the product (tools/phonesim,
issue 17 item 5): its own truth table of which load verifies which, the real
DeviceInformationX page, Auth Fail without a new lease, the 7940/60 two-stage
flash.  `appliance simulate` is `python -m tools.phonesim` (same flags); it is
imported only when one of these verbs runs.

`appliance demo` builds its own namespaces (station + phones, joined by a veth
pair), writes synthetic firmware into a temp state dir, runs the real `serve
dhcp` and `serve tftp` there, walks phones of different models and states
through their stones, prints progress, and removes everything it made.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..store import Store, StoreError

STATION, SUBNET = "10.79.0.1", "10.79"
LOADS = ("SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S", "P00308010100", "P00308010200")
PHONES = (("CP-7965G", "SCCP45.8-3-2S", 2), ("CP-7940G", "P00307020300", 1), ("CP-7965G", "SCCP45.9-4-2SR3-3S", 1))


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=20)


def _states(db: Path) -> dict[str, tuple]:
    try:
        store = Store(db)
        try:
            return {p["mac"]: (p.get("state"), p.get("current_load"), p.get("diagnosis")) for p in store.phones.all()}
        finally:
            store.close()
    except StoreError:
        return {}


def run(deadline: float) -> int:
    from appliance.firmware import synth
    tag = str(os.getpid())
    srv, ph = f"demo-st-{tag}", f"demo-ph-{tag}"
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="appliance-demo-") as tmp:
        state = Path(tmp) / "state"
        for load in LOADS:
            synth.write_load(state / "firmware", load, size_bytes=40000, components=2)
        try:
            _ip("netns", "add", srv)
            _ip("netns", "add", ph)
            _ip("link", "add", f"dm{tag}a", "type", "veth", "peer", "name", f"dm{tag}b")
            for ns, dev in ((srv, f"dm{tag}a"), (ph, f"dm{tag}b")):
                _ip("link", "set", dev, "netns", ns)
                _ip("-n", ns, "link", "set", dev, "name", "lan0")
                _ip("-n", ns, "link", "set", "lan0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", srv, "addr", "add", f"{STATION}/16", "dev", "lan0")
            env = {**os.environ, "APPLIANCE_NETWORK_INTERFACE": "lan0", "APPLIANCE_STATE_DIR": str(state),
                   "APPLIANCE_TFTP_ROOT": str(state / "firmware"), "APPLIANCE_DHCP_POOL_START": f"{SUBNET}.1.1",
                   "APPLIANCE_DHCP_POOL_END": f"{SUBNET}.1.200"}
            log = open(Path(tmp) / "services.log", "w")
            for svc in ("dhcp", "tftp"):
                procs.append(subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, "-m", "appliance", "serve", svc],
                                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            print(f"station {STATION} in namespace {srv}; state {state}", flush=True)
            time.sleep(3)
            first = 0x001E7A0D0000
            for model, load, count in PHONES:
                procs.append(subprocess.Popen(["ip", "netns", "exec", ph, sys.executable, "-m", "tools.phonesim",
                                               "--interface", "lan0", "--model", model, "--load", load, "--count", str(count),
                                               "--first-mac", f"{first:012x}", "--deadline", str(deadline)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
                first += 0x100
            want = sum(c for _, _, c in PHONES)
            end, last = time.monotonic() + deadline + 30, None
            while time.monotonic() < end:
                rows = _states(state / "station.db")
                view = {m: r for m, r in rows.items()}
                if view != last:
                    for mac, (st, cur, diag) in sorted(view.items()):
                        print(f"  {mac} {st:12} {cur or '?':22} {diag or ''}", flush=True)
                    print("", flush=True)
                    last = view
                if len(rows) >= want and all(s in ("done", "stuck") for s, _, _ in rows.values()):
                    ok = all(s == "done" for s, _, _ in rows.values())
                    print("all phones done" if ok else "finished with stuck phones", flush=True)
                    return 0 if ok else 1
                time.sleep(1)
            print("demo timed out", flush=True)
            return 1
        finally:
            for p in procs:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGTERM)
                        p.wait(5)
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        os.killpg(p.pid, signal.SIGKILL)
            for ns in (srv, ph):
                _ip("netns", "del", ns, check=False)


def register_simulate(sub: argparse._SubParsersAction) -> None:
    """`appliance simulate`: tools.phonesim's own flags (imported now, only for this verb or for help)."""
    from tools.phonesim.__main__ import parser
    p = sub.add_parser("simulate", parents=[parser(add_help=False)],
                       help="model Cisco phones (tools.phonesim: DHCP, TFTP/HTTP boot, web page; real sockets)",
                       description="Cisco phones modelled outside the product (tools/phonesim); "
                                   "the same as `python -m tools.phonesim`.")
    p.set_defaults(func=_simulate, needs_config=False)


def _simulate(args: argparse.Namespace) -> int:
    from tools.phonesim.__main__ import run as run_phones
    return run_phones(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the station and simulated phones in temporary namespaces (needs root)")
    p.add_argument("--deadline", type=float, default=90.0, help="seconds the phones get")
    p.set_defaults(func=lambda a: run(a.deadline), needs_config=False)
