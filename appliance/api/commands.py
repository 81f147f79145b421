"""`appliance leases`, `retry MAC`, `forget MAC` and `logs [-f]`: the station's own shell, as pihole's or Kea's.

They read the shared store directly, like `appliance status`.  `retry` and `forget` write nothing the CLI does not
own: they append the same command events the API's retry and forget-lease endpoints append (PHONE_RETRY, executed
by the file service; LEASE_FORGET, executed by DHCP), after the same MAC check, so the one writer of each table
stays its owner.  No token is asked: whoever runs this shell on the station already holds its state dir; a state
dir this user cannot write is refused, naming why.

`logs` shows the station's event log, the `events` table every service appends to (leases, file requests and
transfers, each phone's state changes, commands).  It is the only log the station keeps on disk: the services
themselves write to supervisord's stdout (`docker logs` or the terminal running `appliance run`), which no other
process can read back.

Every string a phone or client controls (hostnames, vendor classes, file names, event data, a mistyped MAC) goes
through appliance/text.py before it is printed.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
from typing import Any, Callable, TextIO

from .. import events as ev
from ..dhcp.leases import is_phone
from ..firmware.models import model_from_vendor_class
from ..mac import normalize_mac
from ..store import Store
from ..text import clean, cleaned, shown
from . import views
from .app import MAC_FORMS

SHELL = "station shell"      # who asked, as the phone's note says it ("plan restarted on request (station shell)")
EXIT_UNKNOWN = 1
EXIT_BAD_INPUT = 2
FOLLOW_POLL_S = 0.5          # how often `logs -f` looks for new events (the services' own commands poll each second)
MAX_LINES = 50_000           # the events table keeps at most this many rows (store/events.py MAX_ROWS)
MAC_SPELLINGS = "001b2c3d4e5f, 00:1b:2c:3d:4e:5f, 00-1b-2c-3d-4e-5f or 001b.2c3d.4e5f"


class BadInput(Exception):
    """What the tech typed cannot be used; the message says what would work."""


def parse_mac(text: str) -> str:
    """The MAC the API would accept for the same text (its OpenAPI spellings, then appliance/mac.py).

    Raises:
        BadInput: naming the text, cleaned, and the spellings that work.
    """
    try:
        if not MAC_FORMS.fullmatch(text):
            raise ValueError(text)
        return normalize_mac(text)
    except ValueError:
        raise BadInput(f"not a MAC address: {clean(repr(text), 80)}; write it as {MAC_SPELLINGS}") from None


def register_leases(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leases", help="DHCP leases, phones first: MAC, address, state, expiry, model, hostname")
    p.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    p.set_defaults(func=cmd_leases, needs_config=True)


def register_retry(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retry", help="start a phone's plan again (as the API's retry)")
    p.add_argument("mac", metavar="MAC", help=f"the phone's MAC, e.g. {MAC_SPELLINGS}")
    p.set_defaults(func=cmd_retry, needs_config=True)


def register_forget(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forget", help="free a device's DHCP lease (as the API's forget-lease)")
    p.add_argument("mac", metavar="MAC", help=f"the device's MAC, e.g. {MAC_SPELLINGS}")
    p.set_defaults(func=cmd_forget, needs_config=True)


def register_logs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="the station's event log (leases, transfers, phone states); -f follows it")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("-n", "--lines", type=int, default=20, metavar="N",
                   help=f"how many of the latest events to print first (0-{MAX_LINES}, default 20)")
    p.add_argument("--mac", help="only this phone's events")
    p.set_defaults(func=cmd_logs, needs_config=True)


# ---- leases ---------------------------------------------------------------------------------------------

LEASE_COLUMNS = ("MAC", "ADDRESS", "STATE", "EXPIRES", "MODEL / VENDOR CLASS", "HOSTNAME")


def lease_rows(store: Store, now: float) -> list[dict[str, Any]]:
    """Every lease as `appliance leases` shows it: phones first, then by address; strings cleaned.

    Args:
        store: the station's store (read only).
        now: the time expiry is counted from.
    Returns:
        dicts with mac, ip, state, expires (epoch), expires_in (seconds, negative once past), phone (bool: the
        client says it is a Cisco phone, as DHCP decides it, or the tracker learned its model), model (the
        tracker's, else option 60's), vendor_class, hostname.
    """
    phones = {p["mac"]: p for p in store.phones.all()}
    out = []
    for row in store.leases.all():
        known = phones.get(row["mac"])
        model = (known or {}).get("model") or model_from_vendor_class(row["vendor_class"])
        phone = is_phone(row["mac"], row["vendor_class"], row["hostname"], model)
        doc = views.lease(row)
        out.append({"mac": doc["mac"], "ip": doc["ip"], "state": doc["state"], "expires": row["expires"],
                    "expires_in": round(row["expires"] - now, 1), "phone": phone, "model": shown(model),
                    "vendor_class": doc["vendor_class"], "hostname": doc["hostname"]})
    out.sort(key=lambda r: (not r["phone"], _ip_key(r["ip"]), r["mac"]))
    return out


def _ip_key(ip: Any) -> tuple[int, str]:
    try:
        return int(ipaddress.ip_address(ip)), ""
    except ValueError:
        return 1 << 32, str(ip)


def _age(seconds: float) -> str:
    """A duration as a tech reads it: 45s, 12m, 3h05m, 2d4h."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def expiry_words(expires_in: float) -> str:
    return f"in {_age(expires_in)}" if expires_in >= 0 else f"{_age(expires_in)} ago"


def cmd_leases(args: argparse.Namespace) -> int:
    store = Store(args.cfg.db_path)
    rows = lease_rows(store, time.time())
    if args.json:
        print(json.dumps({"leases": rows}, indent=2))
        return 0
    table = [LEASE_COLUMNS] + [
        (r["mac"], r["ip"] or "-", r["state"], expiry_words(r["expires_in"]),
         (r["model"] or r["vendor_class"] or "-") if r["phone"] else (r["vendor_class"] or "-"),
         r["hostname"] or "-")
        for r in rows]
    widths = [min(40, max(len(str(line[i])) for line in table)) for i in range(len(LEASE_COLUMNS) - 1)]
    for line in table:
        print("  ".join(f"{clean(str(cell), w):<{w}}" for cell, w in zip(line[:-1], widths, strict=True))
              + "  " + str(line[-1]))
    phones = sum(1 for r in rows if r["phone"])
    print(f"{len(rows)} lease(s): {phones} phone(s), {len(rows) - phones} other device(s)")
    return 0


# ---- retry / forget -------------------------------------------------------------------------------------

def _writable_store(args: argparse.Namespace) -> Store | None:
    """The store, or None (having said why) when this user cannot append to it."""
    store = Store(args.cfg.db_path)
    if store.read_only:
        print(f"appliance: cannot queue the command: the state dir {args.cfg.state_dir} is not writable "
              f"({clean(store.read_only, 512)}). Run this as the user the station runs as (e.g. with sudo), "
              "or use the API with its token from another machine.", file=sys.stderr)
        return None
    return store


def _owner_note(args: argparse.Namespace, store: Store, service: str) -> str:
    """A warning when the service that executes the command is not running (a command is read only while it is)."""
    for s in views.health(args.cfg, store)["services"]:
        if s["name"] == service and s["status"] != "up":
            return (f"\nnote: the {service} service is {s['status']} (no recent heartbeat): the command waits for "
                    f"nobody, since a service starting later does not act on commands queued before it started.")
    return ""


def _command(args: argparse.Namespace, kind: str, service: str,
             exists: Callable[[Store, str], Any], missing: str, queued: Callable[[str, Any], str]) -> int:
    try:
        mac = parse_mac(args.mac)
    except BadInput as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = _writable_store(args)
    if store is None:
        return EXIT_BAD_INPUT
    row = exists(store, mac)
    if row is None:
        print(f"appliance: {missing.format(mac=mac)}", file=sys.stderr)
        return EXIT_UNKNOWN
    store.events.add("cli", kind, mac, by=SHELL)
    print(queued(mac, row) + _owner_note(args, store, service))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Append PHONE_RETRY for a phone the station knows (exit 0); unknown phone exit 1; bad MAC or state dir exit 2."""
    return _command(
        args, ev.PHONE_RETRY, "tftp", lambda store, mac: store.phones.get(mac),
        "no phone {mac}: the station has not seen it (`appliance status` lists the phones it has)",
        lambda mac, row: (f"queued: retry {mac}. The file service restarts its plan within a second (loads it "
                          "refused are offered again); reboot the phone so it asks for its config."))


def cmd_forget(args: argparse.Namespace) -> int:
    """Append LEASE_FORGET for a MAC that holds a lease (exit 0); no lease exit 1; bad MAC or state dir exit 2."""
    return _command(
        args, ev.LEASE_FORGET, "dhcp", lambda store, mac: store.leases.of(mac),
        "no lease for {mac} (`appliance leases` lists them)",
        lambda mac, row: (f"queued: forget the lease of {mac} ({shown(row['ip'])}). DHCP frees the address "
                          "within a second; the device gets a new lease when it next asks (reboot or replug it)."))


# ---- logs -----------------------------------------------------------------------------------------------

def event_line(row: dict) -> str:
    """One event as one terminal line: local time, source, kind, MAC, then its data as key=value, all cleaned."""
    doc = views.event(row)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(doc["ts"])))
    parts = [stamp, f"{doc['source']:<7}", f"{doc['kind']:<18}", doc["mac"] or "-"]
    for key, value in doc["data"].items():
        parts.append(f"{key}={_value(value)}")
    return clean(" ".join(parts), 4096)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if (not value or any(c in value for c in " =\"")) else value
    return json.dumps(cleaned(value), ensure_ascii=False)


def _print_lines(rows: list, out: TextIO) -> None:
    for row in rows:
        out.write(event_line(row) + "\n")
    out.flush()


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the latest N events, then (with -f) every new one until Ctrl-C; exit 2 for a bad -n or --mac."""
    if not 0 <= args.lines <= MAX_LINES:
        print(f"appliance: -n must be between 0 and {MAX_LINES}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        mac = parse_mac(args.mac) if args.mac is not None else None
    except BadInput as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = Store(args.cfg.db_path)
    out = sys.stdout
    try:
        cursor = store.events.last_id()
        if mac is not None:
            latest = store.events.timeline(mac, args.lines) if args.lines else []
        else:
            # ids only grow and pruning removes the oldest, so the newest N rows are the N ids before the last
            latest = store.events.after(max(0, cursor - args.lines), limit=args.lines) if args.lines else []
        latest = [r for r in latest if r["id"] <= cursor]
        _print_lines(latest, out)
        if not args.follow:
            if not latest:
                print("no events yet" + (f" for {mac}" if mac else ""), file=sys.stderr)
            return 0
        while True:
            rows = store.events.after(cursor, limit=1000, mac=mac)
            if rows:
                cursor = rows[-1]["id"]
                _print_lines(rows, out)
            else:
                time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:        # `appliance logs -f | head`: the reader left; so do we, quietly
        try:
            sys.stdout = open("/dev/null", "w")      # nothing left to flush into the closed pipe at exit
        except OSError:
            pass
        return 0
