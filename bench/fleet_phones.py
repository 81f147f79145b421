"""A fleet of phones for the fleet benchmark: the independent phone model (tools.phonesim) on real sockets.

Runs inside the client namespace.  Every phone is a `tools.phonesim.SimPhone`,
the same model the end-to-end tests use, outside the product.  By default the
fleet is `--count` 7965s running `--current`; `--shelf` gives a mixed shelf
instead: groups of any model the phone model knows (7841 with its platform,
6921, 8945, ...), each with its own count, running load and first MAC index,
so bench/fleet.py can write a hand-made config per model for the same MACs.
Each family boots as tools/phonesim models it (a 7841 or 8945 asks HTTP :6970
first and falls back to TFTP per file; a 6921 uses TFTP).

A 7965 does its own DHCP exchange on the interface (option 60 `CP-7965G`,
option 12 SEP<MAC>, broadcast flag), the leased address taken onto the
interface, then the 79x5 boot from
the option-150 server: CTLSEP<MAC>.tlv, ITLSEP<MAC>.tlv, ITLFile.tlv,
SEP<MAC>.cnf.xml (XMLDefault.cnf.xml when that is missing).  When the config
names another load the phone fetches <load>.loads, checks its signed header
and name, and lets the model's own truth table decide whether the load it runs
can verify it: if not, Auth Fail, no component, no new lease, the config asked
again `--retry-s` later; if so, every component (each header checked), install,
a reboot (`--reboot-s`, far shorter than a real phone's minute or two and the
same for every server) and a new DHCP exchange.  A phone is done when its
config names the load it runs.  Web access is off (no DeviceInformationX page):
the station learns nothing from a page, only from DHCP and file requests.
Downloads are plain RRQs (512-byte blocks) as phones send them, unless
`--blksize` asks for an option.

Phones are real, independent devices, so each runs in its own process by default
(`--processes`): as threads of one Python process, fifty phones share one GIL and
the load generator, not the server, sets the pace -- worse the more of them
download at once, which penalised whichever server let every phone start at the
same moment (measured: with one process, 50 phones took 87 s on the station and
its transfers 3.5x longer than dnsmasq's staggered ones, while the CPUs sat half
idle).

Prints one JSON document: {"count", "wall_s", "phones": [{"mac", "model", "final",
"loads", "boots", "bytes", "done_s", "installed_s", "error", "refused", "end"}]}
with times in seconds from the fleet's power-on.  With `--timeline FILE` it also
writes one JSON line per phone, {"mac", "power_on_s", "done_s", "end", "spans"}:
the phone model's own record of each DHCP exchange, download and modelled pause
(tools.phonesim SimPhone.timeline), its times moved onto the fleet's clock, for
bench/fleet.py to say where each phone's seconds went.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.phonesim import SimPhone  # noqa: E402

MODEL = "CP-7965G"


def mac_of(seed: int, n: int) -> str:
    """00:1e:7a:<seed>:<n>: bench/fleet.py writes the hand-made configs for the same MACs."""
    return bytes((0x00, 0x1E, 0x7A, seed, n >> 8 & 0xFF, n & 0xFF)).hex()


def shelf_of(args: argparse.Namespace) -> list[dict]:
    """The shelf's phones in order, each {"index", "model", "current", "platform"}: `--shelf` groups
    ({"model", "count", "current", "platform" (default 1), "first" (MAC index; default: after the previous
    group)}), else `--count` 7965s on `--current`."""
    groups = json.loads(args.shelf) if args.shelf else [{"model": MODEL, "count": args.count,
                                                          "current": args.current}]
    phones: list[dict] = []
    used: set[int] = set()
    nxt = 0
    for g in groups:
        first = int(g.get("first", nxt))
        for n in range(first, first + int(g["count"])):
            if n in used:
                raise ValueError(f"MAC index {n} is in two groups of the shelf")
            used.add(n)
            phones.append({"index": n, "model": g["model"], "current": g["current"],
                           "platform": int(g.get("platform", 1))})
        nxt = first + int(g["count"])
    return phones


class FleetPhone:
    """One model phone and what the bench reads off it: when each load was installed, when it settled."""

    def __init__(self, mac: str, spec: dict, args: argparse.Namespace, start: float):
        self.mac, self.spec, self.args, self.start = mac, spec, args, start
        self.phone = SimPhone(mac, spec["model"], spec["current"], web=False, reboot_s=args.reboot_s,
                              retry_s=args.retry_s, platform=spec["platform"],
                              tftp_options={"blksize": args.blksize} if args.blksize else None)
        self.installed_s: dict[str, float] = {}
        self.summary: dict | None = None
        self.crash: str | None = None
        machine = self.phone.machine
        handle = machine.handle

        def timed(event):                  # the moment the model installs a load, on the fleet's clock
            before = len(machine.installed)
            actions = handle(event)
            for load in machine.installed[before:]:
                self.installed_s.setdefault(load, time.monotonic() - self.start)
            return actions
        machine.handle = timed

    def run(self, deadline: float) -> None:
        began = time.monotonic() - self.start
        try:
            self.summary = self.phone.run(self.args.interface, deadline=max(1.0, deadline - time.monotonic()),
                                          max_attempts=self.args.max_attempts)
        except Exception as exc:  # one phone's failure is reported, never hides the others
            self.crash = f"phone crashed: {type(exc).__name__}: {exc}"
            return
        if self.summary["end"] == "settled":
            self.summary["done_s"] = began + self.summary["elapsed_s"]

    def result(self) -> dict:
        s = self.summary or self.phone.machine.summary()
        refused = s.get("refused", [])
        error = self.crash
        if error is None and s.get("end") != "settled":
            last = refused[-1] if refused else None
            error = (f"{s.get('end', 'still busy')} after {s.get('boots')} boot(s)"
                     + (f"; last refusal: {last['load']} ({last['screen']}: {last['why']})" if last else ""))
        return {"mac": self.mac, "model": self.spec["model"], "platform": s.get("platform"), "final": s.get("load"),
                "loads": s.get("installed", []), "boots": s.get("boots"),
                "bytes": sum(f["bytes"] for f in s.get("fetched", []) if f["ok"]), "done_s": s.get("done_s"),
                "installed_s": self.installed_s, "error": error, "end": s.get("end"),
                "refused": [f"{r['load']}: {r['screen']}" for r in refused][:5]}

    def timeline(self) -> dict:
        """The phone's timeline on the fleet's clock (seconds since the fleet's power-on)."""
        offset = (self.phone.started_at - self.start) if self.phone.started_at is not None else None
        spans = []
        for span in list(self.phone.timeline):
            moved = dict(span)
            for key in ("t0", "t1", "first"):
                if moved.get(key) is not None:
                    moved[key] = round(moved[key] + offset, 4)
            spans.append(moved)
        return {"mac": self.mac, "power_on_s": None if offset is None else round(offset, 4),
                "done_s": (self.summary or {}).get("done_s"), "end": (self.summary or {}).get("end"),
                "spans": spans}


def spread(count: int, processes: int) -> list[list[int]]:
    """The phones' indices dealt over `processes` processes (0: one each), every phone exactly once."""
    n = max(1, min(count, processes or count))
    return [list(range(i, count, n)) for i in range(n)]


def run_group(specs: list[dict], args: argparse.Namespace, start: float, deadline: float) -> tuple[list, list]:
    """Run these phones as threads of this process: (their results, their timelines)."""
    phones = [FleetPhone(mac_of(args.seed, spec["index"]), spec, args, start) for spec in specs]
    threads = [threading.Thread(target=p.run, args=(deadline,), daemon=True) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline + 10 - time.monotonic()))
    results = []
    for phone, thread in zip(phones, threads, strict=True):
        r = phone.result()
        if thread.is_alive():
            r["error"] = f"still busy after {args.timeout:.0f} s (boot {r['boots']})"
        results.append(r)
    return results, [phone.timeline() for phone in phones]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--shelf", help='JSON list of groups [{"model", "count", "current", "platform", "first"}] '
                                    "instead of --count 7965s on --current")
    ap.add_argument("--interface", default="lan0")
    ap.add_argument("--current", default="SCCP45.8-3-1S", help="load every phone runs at power-on")
    ap.add_argument("--seed", type=int, default=0x42, help="4th MAC byte, so fleets can be told apart")
    ap.add_argument("--blksize", type=int, default=0, help="TFTP blksize option to ask for (0: plain RRQ, as phones do)")
    ap.add_argument("--reboot-s", type=float, default=2.0)
    ap.add_argument("--retry-s", type=float, default=5.0, help="config asked again this long after a refusal")
    ap.add_argument("--max-attempts", type=int, default=6, help="config rounds without an install before giving up")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--processes", type=int, default=0,
                    help="processes the phones are spread over (0: one per phone, as real phones are)")
    ap.add_argument("--timeline", type=Path, help="write each phone's timeline here, one JSON line per phone")
    args = ap.parse_args()
    shelf = shelf_of(args)
    start = time.monotonic()
    deadline = start + args.timeout
    groups = spread(len(shelf), args.processes)
    with multiprocessing.get_context("fork").Pool(len(groups)) as pool:
        done = pool.starmap(run_group, [([shelf[i] for i in g], args, start, deadline) for g in groups])
    wall = time.monotonic() - start
    by_index = {}
    for g, (results, timelines) in zip(groups, done, strict=True):
        for i, r, t in zip(g, results, timelines, strict=True):
            by_index[i] = (r, t)
    ordered = [by_index[i] for i in range(len(shelf))]
    if args.timeline:
        with open(args.timeline, "w") as out:
            for _, t in ordered:
                out.write(json.dumps(t) + "\n")
    print(json.dumps({"count": len(shelf), "wall_s": wall, "phones": [r for r, _ in ordered]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
