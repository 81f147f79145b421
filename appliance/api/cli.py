"""`appliance status` and `appliance report`: the same views as the API, read from the store directly.

Phones, clients and frames control much of what is printed here (file names, hostnames, diagnoses that quote
them): the views clean phone fields, and everything else printed goes through appliance/text.py here, so no
control or bidi character reaches the terminal and no CSV cell is a formula.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time

from ..store import Store
from ..text import csv_cell, shown
from . import views

EXIT_RED = 1          # the station cannot do its job (a red problem); also what a failing healthcheck returns
STATUS_EXITS = f"""exit status:
  0  the station can do its job (amber problems, if any, are printed: it works, but worse)
  {EXIT_RED}  it cannot: at least one red problem (no firmware, no load for a model it has seen, DHCP not
     serving, link down, a service down, ...); each is printed with what to do
  2  the configuration is bad (the key is named)"""


def register_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="can the station do its job; services, guard and phones at a glance",
                       description="What is wrong and what to do (the same problems as /api/v1/health and the "
                                   "dashboard), then services, the DHCP guard and every phone; reads the store.",
                       epilog=STATUS_EXITS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="the health document and the phones, for scripts")
    p.set_defaults(func=cmd_status, needs_config=True)


def register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="every phone: MAC, model, first/last seen, load before/after, result")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--output", "-o", help="file to write (default stdout)")
    p.set_defaults(func=cmd_report, needs_config=True)


def cmd_status(args: argparse.Namespace) -> int:
    """Print the problems (red first, each with what to do), services, guard and phones; exit EXIT_RED when a
    red problem exists (see STATUS_EXITS)."""
    cfg = args.cfg
    store = Store(cfg.db_path)
    health = views.health(cfg, store)
    phones = views.phones(store)
    code = 0 if health["ok"] else EXIT_RED
    if args.json:
        print(json.dumps({"health": health, "phones": phones}, indent=2, default=str))
        return code
    found = health["problems"]
    reds = sum(1 for p in found if p["severity"] == "red")
    if reds:
        print(f"station CANNOT DO ITS JOB: {reds} problem(s) to fix")
    else:
        print("station OK" + (f", {len(found)} warning(s)" if found else ""))
    for p in found:
        label = "PROBLEM" if p["severity"] == "red" else "warning"
        print(f"  {label}: {shown(p['what'], 2048)}")
        print(f"      do: {shown(p['do'], 2048)}")
    servers = [shown(str(s)) for s in health["guard"]["servers"]]
    print(f"guard: {shown(health['guard']['status'])}" + (f", other servers: {', '.join(servers)}" if servers else ""))
    for s in health["services"]:
        age = "never" if s["heartbeat_age"] is None else f"{s['heartbeat_age']:.1f}s ago"
        err = f"  last error: {shown(str(s['last_error']), 1024)}" if s["last_error"] else ""
        print(f"  {shown(s['name']):<5} {s['status']:<6} heartbeat {age}{err}")
        nb = (s.get("info") or {}).get("neighbours")
        if isinstance(nb, dict) and nb.get("status"):
            print(f"        neighbours: {shown(str(nb['status']))}")
    print(f"{len(phones)} phone(s)")
    for p in phones:
        step = f"step {min(p['step'] + 1, p['steps'])}/{p['steps']}" if p["steps"] else "no plan"
        runs = f"  runs {p['current_load']} ({p['load_source'] or '?'})" if p.get("current_load") else ""
        print(f"  {p['mac']}  {p['model'] or '?':<10} {p['ip'] or '-':<15} {step:<10} {p['state_words']}"
              + (f" — {p['diagnosis']}" if p["diagnosis"] else "") + runs)
    return code


def cmd_report(args: argparse.Namespace) -> int:
    rows = views.report(Store(args.cfg.db_path))
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        if args.format == "json":
            json.dump({"generated": time.time(), "phones": rows}, out, indent=2)
            out.write("\n")
        else:
            w = csv.DictWriter(out, fieldnames=views.REPORT_FIELDS, lineterminator="\n")
            w.writeheader()
            w.writerows({k: csv_cell(v, 1024) for k, v in row.items()} for row in rows)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
