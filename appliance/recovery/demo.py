"""`appliance demo` and `appliance simulate`: the station with model phones from tools.phonesim, no hardware.

The phones are the independent model outside the product (tools/phonesim,
issue 17 item 5): its own truth table of which load verifies which, the real
DeviceInformationX page, Auth Fail without a new lease, the 7940/60 two-stage
flash.  `appliance simulate` is `python -m tools.phonesim` (same flags); it is
imported only when one of these verbs runs.

`appliance demo` builds its own namespaces (station + phones, joined by a veth
pair), writes synthetic firmware into a temp state dir, runs the real `serve
dhcp`, `serve tftp` and `serve dns` there and the status API and dashboard on
the host (`serve api` reading the same store, so a browser on this machine can
watch), walks phones of different models and states through their stones with
a live table, prints the report, and removes everything it made.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ..api import views
from ..firmware import synth
from ..store import Store, StoreError
from .board import Board

STATION, SUBNET = "10.79.0.1", "10.79"
LOADS = ("SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S", "P00308010100", "P00308010200")
PHONES = (("CP-7965G", "SCCP45.8-3-2S", 2), ("CP-7940G", "P00307020300", 1), ("CP-7965G", "SCCP45.9-4-2SR3-3S", 1))


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=20)


def _phones(db: Path) -> list[dict]:
    try:
        store = Store(db)
        try:
            return views.phones(store)
        finally:
            store.close()
    except StoreError:
        return []


def _wait_http(url: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop_on_term(*_: object) -> None:
    raise KeyboardInterrupt


def run(deadline: float, port: int = 8080, keep_open: bool = False, out=sys.stdout) -> int:
    """Run the demo; 0 when every phone reached its target, 1 otherwise (stuck, timed out), 130 on Ctrl-C."""
    signal.signal(signal.SIGTERM, _stop_on_term)
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
            shared = {**os.environ, "APPLIANCE_STATE_DIR": str(state), "APPLIANCE_TFTP_ROOT": str(state / "firmware")}
            env = {**shared, "APPLIANCE_NETWORK_INTERFACE": "lan0", "APPLIANCE_DHCP_POOL_START": f"{SUBNET}.1.1",
                   "APPLIANCE_DHCP_POOL_END": f"{SUBNET}.1.200"}
            # The API runs on the host so a browser here reaches it; it only reads the store (and its
            # config must be valid on the host: loopback, a pool inside it that it never serves).
            api_env = {**shared, "APPLIANCE_NETWORK_INTERFACE": "lo", "APPLIANCE_NETWORK_ADDRESS": "127.0.0.1",
                       "APPLIANCE_DHCP_POOL_START": "127.0.0.2", "APPLIANCE_DHCP_POOL_END": "127.0.0.3",
                       "APPLIANCE_API_HOST": "127.0.0.1", "APPLIANCE_API_PORT": str(port)}
            log = open(Path(tmp) / "services.log", "w")
            for svc in ("dhcp", "tftp", "dns"):
                procs.append(subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, "-m", "appliance", "serve", svc],
                                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            procs.append(subprocess.Popen([sys.executable, "-m", "appliance", "serve", "api"], env=api_env,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            url = f"http://127.0.0.1:{port}/"
            if not _wait_http(url + "api/v1/health", 20):
                print(f"demo: the dashboard did not come up on {url} (port taken? --port); log: {log.name}",
                      file=sys.stderr, flush=True)
                return 1
            print(f"dashboard: {url}", file=out, flush=True)
            print(f"station {STATION} in namespace {srv}, phones in {ph}; state {state}", file=out, flush=True)
            first = 0x001E7A0D0000
            for model, load, count in PHONES:
                procs.append(subprocess.Popen(["ip", "netns", "exec", ph, sys.executable, "-m", "tools.phonesim",
                                               "--interface", "lan0", "--model", model, "--load", load, "--count", str(count),
                                               "--first-mac", f"{first:012x}", "--deadline", str(deadline)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
                first += 0x100
            want = sum(c for _, _, c in PHONES)
            board = Board(out.write, out.isatty())
            end, result = time.monotonic() + deadline + 30, 1
            while time.monotonic() < end:
                phones = _phones(state / "station.db")
                board.update(phones, time.time())
                out.flush()
                if len(phones) >= want and all(p["state"] in ("done", "stuck") for p in phones):
                    result = 0 if all(p["state"] == "done" for p in phones) else 1
                    break
                time.sleep(1)
            else:
                print("demo timed out", file=out, flush=True)
            _report(state / "station.db", out)
            print("all phones on their targets" if result == 0 else "finished with phones not on their targets",
                  file=out, flush=True)
            if keep_open:
                print(f"dashboard stays up on {url}; Ctrl-C to end", file=out, flush=True)
                while True:
                    time.sleep(3600)
            return result
        except KeyboardInterrupt:
            return 130
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


def _report(db: Path, out) -> None:
    """The same rows `appliance report` writes, as a table."""
    store = Store(db)
    try:
        rows = views.report(store)
    finally:
        store.close()
    print("\nreport:", file=out)
    for r in rows:
        print(f"  {r['mac']}  {r['model'] or '?':9}  {r['load_before'] or '?':20} -> {r['load_after'] or '?':20}  "
              f"{r['result']}{'  (' + r['diagnosis'] + ')' if r['diagnosis'] and r['result'] != 'recovered' else ''}",
              file=out)
    out.flush()


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
    p = sub.add_parser("demo", help="run the station, its dashboard and simulated phones in temporary namespaces "
                                    "(needs root)")
    p.add_argument("--deadline", type=float, default=90.0, help="seconds the phones get")
    p.add_argument("--port", type=int, default=8080, help="dashboard port on 127.0.0.1 (default 8080)")
    p.add_argument("--keep-open", action="store_true", help="keep the dashboard up after the phones finish")
    p.set_defaults(func=lambda a: run(a.deadline, a.port, a.keep_open), needs_config=False)
