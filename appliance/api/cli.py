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


def register_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="services, guard and phones at a glance (reads the store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status, needs_config=True)


def register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="every phone: MAC, model, first/last seen, load before/after, result")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--output", "-o", help="file to write (default stdout)")
    p.set_defaults(func=cmd_report, needs_config=True)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = args.cfg
    store = Store(cfg.db_path)
    health = views.health(cfg, store)
    phones = views.phones(store)
    if args.json:
        print(json.dumps({"health": health, "phones": phones}, indent=2, default=str))
        return 0 if health["ok"] else 1
    servers = [shown(str(s)) for s in health["guard"]["servers"]]
    print(f"station {'OK' if health['ok'] else 'DEGRADED'}  (guard: {shown(health['guard']['status'])}"
          + (f", other servers: {', '.join(servers)}" if servers else "") + ")")
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
    return 0 if health["ok"] else 1


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
