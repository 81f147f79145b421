"""Write docs/reliability.md from a fresh run of the reliability tests and the fuzzers.

Why: the figures must be measured, never typed.  The tests write one JSON per
measurement (tests/reliability_figures.py) into a fresh directory this script
names; a test that did not run (skipped: not root, tool missing) shows as not
measured instead of as a stale number.

Usage: python scripts/reliability_report.py [SECONDS_PER_FUZZ_TARGET]
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz import run as fuzz_run  # noqa: E402

# Every reliability test file, so a new attack's test is run and its figures shown without editing this list.
TESTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_reliability_*.py"))
# Figures rendered by their own sections below; any other figure file is shown whole under "Fair shares".
KNOWN = {"dhcp_hostile", "dns_hostile", "tftp_hostile", "traversal", "writes", "api_auth", "disk_full",
         "state_read_only", "state_read_only_dhcp", "restarts", "restarts_file_service", "loss"}
RESTART_ROWS = [("restarts", "of api, dns and dhcp"), ("restarts_file_service", "of the file service (tftp)")]
# The attacks of issue 24, each with a genuine phone recovering (tests/reliability_figures.record_attack): a row each,
# "not measured" when its test did not run.  Figures of kind "attack" not listed here get a row too.
ATTACKS = [("tftp_shares", "tests/test_reliability_tftp_shares.py"),
           ("tftp_shares_evict", "tests/test_reliability_tftp_shares.py"),
           ("http_shares", "tests/test_reliability_http_shares.py"),
           ("dhcp_shares", "tests/test_reliability_dhcp_shares.py"),
           ("cdp_malformed", "tests/test_reliability_cdp.py"),
           ("webpoll_dripping", "tests/test_reliability_webpoll.py"),
           ("missing_files", "tests/test_reliability_missing_files.py")]
ATTACK_FIELDS = ("test", "at", "kind", "attack", "load", "phone_s", "store")
SERVICE_ROWS = [("dhcp_hostile", "DHCP (netns)"), ("dns_hostile", "DNS (loopback)"), ("tftp_hostile", "TFTP (loopback)")]


def run_tests(figures: pathlib.Path) -> tuple[int, str]:
    """Every reliability test, once, as root; (pytest's exit status, its summary line).  The time limit is for a
    hung run only: the seven attack tests alone took three minutes on the shared 2-CPU machine."""
    if figures.exists():
        shutil.rmtree(figures)
    env = dict(os.environ, RELIABILITY_FIGURES=str(figures))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsx", "-p", "no:cacheprovider", *TESTS],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    return out.returncode, out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]


def load(figures: pathlib.Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(figures.glob("*.json"))}


def render(command: str, seconds: float, fuzz: list[dict], figs: dict[str, dict], summary: str) -> list[str]:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    missing = "not measured (test skipped or failed)"
    lines = ["# Reliability figures", "",
             f"Produced by `{command}` at {stamp}; regenerate rather than edit.", "",
             f"Test run: `pytest {' '.join(TESTS)}` -> {summary}", "",
             f"## Fuzzing (mutation of fuzz/corpus seeds, RLIMIT_AS 1 GiB, 2 s per input, {seconds:g} s per target)", "",
             "| target | inputs tried | failures |", "|---|---|---|"]
    for r in fuzz:
        lines.append(f"| {r['target']} | {r['inputs']} | {0 if not r['failure'] else 1} |")
    for r in fuzz:
        if r["failure"]:
            lines += ["", f"### {r['target']} failure", "", "```", r["failure"].strip(), "```"]
    lines += ["", "## Hostile packets against running services", "",
              "After each kind the same process served a real client (udhcpc / dig / curl tftp://).", "",
              "| service | packets sent | kinds | good client | crashes |", "|---|---|---|---|---|"]
    packets = 0
    for key, label in SERVICE_ROWS:
        f = figs.get(key)
        if f:
            packets += f["packets"]
            kinds = ", ".join(f"{k} {v}" for k, v in f["by_kind"].items())
            lines.append(f"| {label} | {f['packets']} | {kinds} | {f['good_client']} | {f['crashes']} |")
        else:
            lines.append(f"| {label} | {missing} | | | |")
    lines += ["", "## Path traversal, writes, API", ""]
    t, w, a = figs.get("traversal"), figs.get("writes"), figs.get("api_auth")
    lines.append(f"- Traversal: {t['requests']} requests ({t['names']} names over TFTP and HTTP), "
                 f"bytes served from outside the root: {t['bytes_outside_root']}." if t else f"- Traversal: {missing}.")
    lines.append(f"- Write requests (TFTP WRQ, HTTP PUT): {w['write_requests']}, files written: {w['files_written']}."
                 if w else f"- Write requests: {missing}.")
    lines.append(f"- API writes with missing/wrong tokens: {a['refused_writes']} refused, store changes: "
                 f"{a['state_changed']}." if a else f"- API token checks: {missing}.")
    lines += ["", "## Faults injected", ""]
    faults = 0
    for key, label in (("disk_full", "state dir on a full 4 MiB tmpfs"), ("state_read_only", "read-only state dir")):
        f = figs.get(key)
        if f:
            faults += f["faults"]
            served = f.get("files_served_while_full", f.get("files_served_while_read_only"))
            lines.append(f"- {label}: files served while faulted {served}, service alive: {f['service_alive']}.")
        else:
            lines.append(f"- {label}: {missing}.")
    ro_dhcp = figs.get("state_read_only_dhcp")
    if ro_dhcp:
        faults += ro_dhcp["faults"]
        lines.append(f"- read-only state dir, DHCP: {ro_dhcp['clients_tried_while_read_only']} udhcpc client(s) tried, "
                     f"leases handed out that could not be stored: {ro_dhcp['leases_while_read_only']}, service alive: "
                     f"{ro_dhcp['service_alive']}; leases after the dir became writable again: {ro_dhcp['leases_after_rw']}.")
    else:
        lines.append(f"- read-only state dir, DHCP: {missing}.")
    restarts = [figs.get(key) for key, _ in RESTART_ROWS]
    for (_key, label), r in zip(RESTART_ROWS, restarts, strict=False):
        if not r:
            lines.append(f"- kill -9 {label} under supervisord: {missing}.")
            continue
        faults += r["kills_injected"]
        per = ", ".join(f"{k['service']} after {k['transfers_complete']} files sent (restarted in {k['restart_s']} s, "
                        f"{k['phones_not_done']} phones not done)" for k in r["kills"])
        lines.append(f"- kill -9 {label} under supervisord during a {r['phones']}-phone recovery: "
                     f"{r['kills_injected']} kills ({per}); {r['phones_finished']}/{r['phones']} phones finished, "
                     f"{r['duplicate_leases']} duplicated leases, {r['progress_lost']} phones with lost progress.")
    loss = figs.get("loss")
    if loss:
        faults += loss["packets_dropped"]
        lines.append(f"- {loss['loss']:.0%} random UDP loss (iptables statistic, own namespace): {loss['packets_dropped']} "
                     f"packets dropped; {loss['phones_finished']}/{loss['phones']} phones finished with "
                     f"{loss['files_identical']} byte-identical files, {loss['client_restarts']} client restarts.")
    else:
        lines.append(f"- packet loss: {missing}.")
    parts = [t and t["bytes_outside_root"], w and w["files_written"], a and a["state_changed"],
             loss and loss["phones"] - loss["phones_finished"],
             ro_dhcp and ro_dhcp["leases_while_read_only"],
             *(r and r["duplicate_leases"] + r["progress_lost"] + r["phones"] - r["phones_finished"] for r in restarts)]
    lost = missing if any(x is None for x in parts) else sum(parts)
    lines += fair_shares(figs)
    finished = f"{loss['phones_finished']}/{loss['phones']}" if loss else missing
    killed = "; ".join(f"{label}: " + (f"{r['phones_finished']}/{r['phones']}" if r else missing)
                       for (_, label), r in zip(RESTART_ROWS, restarts, strict=False))
    total_fuzz = sum(r["inputs"] or 0 for r in fuzz)
    lines += ["", "## Totals", "",
              f"- Inputs fuzzed: {total_fuzz}; hostile packets sent to running services: {packets}.",
              f"- Faults injected: {faults} (state-dir faults, kill -9 of services, dropped packets).",
              f"- Phones finished under loss: {finished}; after kill -9 {killed}.",
              f"- Data lost or leaked: {lost} (bytes served from outside the root + files written by write requests "
              "+ store changes by refused API writes + phones that did not finish under loss or restarts "
              "+ duplicated leases + phones whose progress was lost + leases handed out unstored).", ""]
    return lines


def fair_shares(figs: dict[str, dict]) -> list[str]:
    """The attacks section: one table row per attack (the load held, the genuine phone's time to its target without
    and with the attack, the store before and after), then each attack's other figures as its test recorded them."""
    missing = "not measured (test skipped or failed)"
    keys = [k for k, _ in ATTACKS] + [k for k, f in figs.items() if f.get("kind") == "attack" and
                                      k not in dict(ATTACKS)]
    others = {k: v for k, v in figs.items() if k not in KNOWN and k not in keys}
    lines = ["", "## Fair shares: attacks while a genuine phone recovers", "",
             "Each attack runs against the real services in network namespaces while a genuine model phone "
             "(tools/phonesim) recovers to its target; the same phone, on the same station, first recovers without "
             "the attack (the baseline).  Store: bytes on disk (database and WAL) and rows of the tables that grow "
             "with traffic, when the attack began and after it (bounds: appliance/store/README.md).", "",
             "| attack | load held | phone to target without / with the attack | store before -> after |",
             "|---|---|---|---|"]
    for key in keys:
        f = figs.get(key)
        if not f or f.get("kind") != "attack":
            test = dict(ATTACKS).get(key, key)
            lines.append(f"| {key} ({test}) | {missing} | | |")
            continue
        phone = f["phone_s"]
        lines.append(f"| {_cell(f['attack'])} | {_cell(f['load'])} | {phone['without_attack']:g} s / "
                     f"{phone['with_attack']:g} s | {_store(f['store']['before'])} -> {_store(f['store']['after'])} |")
    details = [(k, figs[k]) for k in keys if k in figs] + list(others.items())
    if details:
        lines += ["", "What else each attack's test measured:", ""]
    for key, fig in details:
        lines.append(f"- **{key}**: " + "; ".join(f"{k} {_flat(v)}" for k, v in fig.items() if k not in ATTACK_FIELDS))
    return lines


def _store(size: dict) -> str:
    """'1.2 MiB, 340 events, 20 transfers' from a store size (tests/reliability_station.store_size)."""
    rows = ", ".join(f"{size[t]} {t}" for t in ("events", "transfers") if t in size)
    return f"{size['bytes'] / (1 << 20):.1f} MiB" + (f", {rows}" if rows else "")


def _cell(text: str) -> str:
    """A table cell: no line breaks, no column bars."""
    return " ".join(str(text).split()).replace("|", "/")


def _flat(value) -> str:
    """A figure's value on one line (nested tables as k=v lists)."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {_flat(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 10.0
    figures = ROOT / "build" / "reliability-report"
    code, summary = run_tests(figures)
    fuzz = [fuzz_run.run(t, seconds) for t in fuzz_run.TARGETS]
    command = f"python scripts/reliability_report.py {argv[0] if argv else ''}".rstrip()
    lines = render(command, seconds, fuzz, load(figures), summary)
    out = ROOT / "docs" / "reliability.md"
    out.write_text("\n".join(lines))
    print(out.read_text())
    return 1 if code or any(r["failure"] for r in fuzz) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
