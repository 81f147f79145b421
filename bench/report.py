"""docs/benchmarks.md from the results document: every figure and sentence here is derived from the JSON."""
from __future__ import annotations

import re

SECTIONS = [("tftp", "TFTP (file-service issue)"), ("dhcp", "DHCP (DHCP issue)"),
            ("fleet", "Fleet: phones recovering end to end"), ("footprint", "Footprint")]


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.2f}"


def cell(stats: dict | None) -> str:
    if not stats or stats.get("median") is None:
        if stats and stats.get("runs"):
            return f"— (no complete run of {stats['runs']})"
        return "—"
    if stats["runs"] == 1:
        return fmt(stats["median"])
    out = f"{fmt(stats['median'])} ({fmt(stats['min'])}–{fmt(stats['max'])})"
    if stats.get("missing"):
        out += f", {stats['missing']} of {stats['runs']} runs incomplete"
    return out


def ratio(value, sc: dict | None = None, peer: str = "") -> str:
    if value is None:
        peer_median = (sc or {}).get("results", {}).get(peer, {}).get("median")
        station = (sc or {}).get("results", {}).get("station", {}).get("median")
        if peer_median == 0 and station:
            return f"— ({peer} completed none)"
        return "—"
    return f"**{value:,.0f}×**" if value >= 100 else f"**{value:.2f}×**"


def servers(scenarios: list[dict]) -> list[str]:
    seen: list[str] = []
    for sc in scenarios:
        for kind in sc.get("results", {}):
            if kind not in seen:
                seen.append(kind)
    return sorted(seen, key=lambda k: (k != "station", seen.index(k)))


def table(scenarios: list[dict]) -> list[str]:
    kinds = servers(scenarios)
    peers = [k for k in kinds if k != "station"]
    head = ["scenario", "unit"] + kinds + [f"ratio vs {p}" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    gone = [sc for sc in scenarios if sc["status"] != "ok" and not sc.get("results")]
    scenarios = [sc for sc in scenarios if sc not in gone]
    if not scenarios:
        lines = []
    for sc in scenarios:
        row = [sc["name"] + ("" if sc["status"] == "ok" else f" (station: {sc['status']})"),
               sc["unit"] + (" ↑" if sc["higher_is_better"] else " ↓")]
        row += [cell(sc["results"].get(k)) for k in kinds]
        row += [ratio(sc["ratios"].get(p), sc, p) if p in sc["results"] else "" for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    reasons = sorted({(sc["status"], sc.get("reason", "?")) for sc in scenarios if sc["status"] != "ok"})
    lines += [""] + [f"Station {status}: {r}." for status, r in reasons] if reasons else []
    lines += [""] + [f"- {sc['name']}: not available: {sc.get('reason', '?')}" for sc in gone] if gone else []
    return lines[1:] if lines[:1] == [""] else lines


def side_table(scenarios: list[dict], key: str, title: str) -> list[str]:
    rows = [sc for sc in scenarios if sc.get(key)]
    if not rows:
        return []
    kinds = servers(rows)
    lines = ["", f"{title}:", "", "| scenario | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
    for sc in rows:
        vals = sc[key]
        lines.append(f"| {sc['name']} | " + " | ".join(value_cell(vals.get(k)) for k in kinds) + " |")
    return lines


BREAKDOWN_COLUMNS = [("total_s", "total"), ("dhcp_s", "DHCP"), ("transfer_s", "transfers"),
                     ("decision_s", "config answer"), ("phone_s", "reboots, pauses"),
                     ("fleet_wait_s", "fleet, tech"), ("other_s", "other")]
BREAKDOWN_TEXT = ("Per phone, from the timeline the phone model writes (bench/fleet_phones.py --timeline): total = "
                  "power-on until its config named the target (by hand: both rounds and the wait between them); "
                  "DHCP = DISCOVER sent to ACK in, every boot, retries included; transfers = request sent to last "
                  "byte in (of a config: its first to last byte); config answer = a config request sent to the "
                  "server's first reply (the server deciding what to answer); reboots, pauses = the model's fixed "
                  "reboot pause and retries after a refusal; fleet, tech = by hand, on the stone until the last "
                  "phone had it, then the config swap; other = what none of these covers (the model's own work "
                  "and scheduling: each phone is a process of its own, and the phones share the machine's CPUs with "
                  "the server).")


def breakdown_table(breakdowns: dict) -> list[str]:
    """{side: bench.fleet.fleet_breakdown(...)} as a table: each side's slowest phones, then its mean phone."""
    sides = [(k, b) for k, b in breakdowns.items() if b and b.get("slowest")]
    if not sides:
        return []
    rows = [r for _, b in sides for r in b["slowest"]]
    cols = [(k, t) for k, t in BREAKDOWN_COLUMNS if k != "fleet_wait_s" or any(r.get(k) for r in rows)]
    lines = ["| side | phone | " + " | ".join(t for _, t in cols) + " | leases | files (configs) |",
             "|" + "---|" * (len(cols) + 4)]
    for kind, b in sides:
        run = f" (run {b['run']} of {b['runs']})" if b.get("runs", 1) > 1 else ""
        for r in b["slowest"]:
            mark = "" if r.get("finished", True) else " (not done)"
            lines.append(f"| {kind}{run} | {r['mac']}{mark} | " + " | ".join(fmt(r.get(k)) for k, _ in cols)
                         + f" | {r.get('leases', '—')} | {r.get('fetches', '—')} ({r.get('configs', '—')}) |")
        means = [(f"mean of {b['phones']}", b.get("mean") or {})]
        means += [(f"mean of {m['phones']} {model}", m) for model, m in (b.get("models") or {}).items()]
        for name, m in means:
            if m:
                lines.append(f"| {kind}{run} | {name} | " + " | ".join(fmt(m.get(k)) for k, _ in cols)
                             + f" | {fmt(m.get('leases'))} | {fmt(m.get('fetches'))} ({fmt(m.get('configs'))}) |")
    return lines


def model_table(sc: dict) -> list[str]:
    """A mixed shelf's per-model rows: the last phone of each model on its target, each side, the ratio."""
    kinds = [k for k in sc.get("per_model", {})]
    kinds.sort(key=lambda k: k != "station")
    if not kinds:
        return []
    peers = [k for k in kinds if k != "station"]
    lines = ["", f"Time until the last phone of each model runs its target ({sc['name']}), s ↓:", "",
             "| model | phones | target | " + " | ".join(kinds) + "".join(f" | ratio vs {p}" for p in peers) + " |",
             "|" + "---|" * (3 + len(kinds) + len(peers))]
    for model, n in sc.get("models", {}).items():
        row = [model, str(n), sc.get("targets", {}).get(model, "—")]
        row += [cell(sc["per_model"][k].get(model)) for k in kinds]
        row += [ratio(sc.get("per_model_ratios", {}).get(p, {}).get(model)) for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    ways = sc.get("transports") or {}
    if ways:
        lines += ["", "How each model's files came (all its phones, the run reported below; HTTP refused = an HTTP "
                      ":6970 request that got nothing, after which the phone asked TFTP):", "",
                  "| model | " + " | ".join(f"{k}: HTTP, TFTP, HTTP refused" for k in ways) + " |",
                  "|" + "---|" * (1 + len(ways))]
        for model in sc.get("models", {}):
            vals = [ways[k].get(model) for k in ways]
            lines.append(f"| {model} | " + " | ".join(
                "—" if v is None else f"{v['http']}, {v['tftp']}, {v['http_refused']}" for v in vals) + " |")
    return lines + ["", MIXED_TEXT]


MIXED_TEXT = ("The mixed shelf: 7965s go through the 8.5(2) stone as in the row above; 7841s (half of them "
              "[PLATFORM_1], half [PLATFORM_2], each fetching only its platform's files), the 6921 and the 8945 "
              "go straight to their targets (no stepping stone is known for them). By hand each SEP<MAC>.cnf.xml "
              "names what a tech would write for that model: the stone for a 7965 (then the target after the "
              "swap and reset), the target for the others, which run on by themselves while the 7965s wait for "
              "the swap. dnsmasq serves no HTTP :6970, so there a 7841 or an 8945 finds HTTP closed and falls "
              "back to TFTP for each file, as a real phone does; the station serves both and they take HTTP. A "
              "7800 load holds both platforms' files and is written twice the size, so every phone fetches "
              "about the same bytes per load.")


def value_cell(value) -> str:
    if isinstance(value, dict) and "median" in value:
        return cell(value)
    if isinstance(value, dict):
        return ", ".join(f"{name} {fmt(v)}" for name, v in sorted(value.items(), key=lambda kv: -kv[1])) or "—"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "none"
    return "—" if value is None else str(value)


def targets(doc: dict) -> list[str]:
    lines = []
    gone: dict[tuple[str, str], list[str]] = {}
    for sc in doc["scenarios"]:
        if sc["status"] != "ok":
            gone.setdefault((sc["section"], sc.get("reason", "?")), []).append(sc["name"])
    for (section, reason), names in gone.items():
        what = names[0] if len(names) == 1 else f"{len(names)} scenarios"
        failed = any(sc["status"] == "failed" and sc.get("reason") == reason for sc in doc["scenarios"])
        lines.append(f"- {section}: {what} — " + (f"**failed**: {reason}" if failed else f"not evaluated: {reason}"))
    for sc in doc["scenarios"]:
        tgt = sc.get("target")
        if sc["status"] != "ok":
            continue
        if tgt:
            st = sc["results"].get("station", {}).get("median")
            verdict = "**met**" if tgt["met"] else "**missed**"
            lines.append(f"- {sc['section']}: {sc['name']}: {tgt['text']} — {verdict} "
                         f"(station {fmt(st)} {sc['unit']}){why(sc) if not tgt['met'] else ''}")
    for sc in doc["scenarios"]:
        if sc["section"] == "tftp" and sc["status"] == "ok" and "dnsmasq" in sc["results"] and not sc.get("windowsize"):
            r = sc["ratios"].get("dnsmasq")
            met = r is not None and r >= 1.0
            miss = "" if met else (f", {100 * (1 - r):.0f}% slower" if r else ", no complete station run")
            lines.append(f"- tftp: {sc['name']}: at least 1.0× dnsmasq — {'**met**' if met else '**missed**'} "
                         f"({ratio(r)}{miss}){why(sc) if not met else ''}")
    return lines


def why(sc: dict) -> str:
    """A reason read from the measurements themselves (CPU per block, drops, the biggest processes)."""
    if sc["section"] == "tftp":
        cpu = sc.get("cpu_us_per_block", {})
        st, dm = cpu.get("station", {}).get("median"), cpu.get("dnsmasq", {}).get("median")
        if st and dm:
            user = sc.get("user_us_per_block", {})
            su, du = user.get("station", {}).get("median"), user.get("dnsmasq", {}).get("median")
            split = (f": {fmt(su)} µs in user space (the Python interpreter) against {fmt(du)}, "
                     f"{fmt(st - su)} µs in the kernel against {fmt(dm - du)}") if su is not None and du is not None else ""
            return (f"; the station spends {fmt(st)} µs of server CPU per block against dnsmasq's {fmt(dm)} "
                    f"({st / dm:.1f}×){split}, and clients and servers share the same CPUs")
    if sc["section"] == "dhcp" and "drop_pct" in sc:
        d = sc["drop_pct"].get("station", {}).get("median")
        return f"; {fmt(d)}% of exchanges dropped" if d is not None else ""
    if sc["section"] == "fleet" and len(sc.get("breakdown") or {}) > 1:
        return fleet_why(sc["breakdown"])
    if sc["section"] == "footprint" and sc.get("processes", {}).get("station"):
        big = sorted(sc["processes"]["station"].items(), key=lambda kv: -kv[1])[:4]
        return "; largest (PSS): " + ", ".join(f"{name} {fmt(mib)} MiB" for name, mib in big)
    return ""


def fleet_why(breakdowns: dict) -> str:
    """The parts of the mean phone's time where the station spent more than the peer, biggest first."""
    st = (breakdowns.get("station") or {}).get("mean") or {}
    peer, other = next(((k, b.get("mean") or {}) for k, b in breakdowns.items() if k != "station"), ("", {}))
    names = dict(BREAKDOWN_COLUMNS)
    worse = sorted(((st[k] - other[k], k) for k, _ in BREAKDOWN_COLUMNS[1:]
                    if st.get(k) is not None and other.get(k) is not None and st[k] > other[k]), reverse=True)
    if not st or not worse:
        return ""
    return "; the mean phone spends more with the station in " + ", ".join(
        f"{names[k]} ({fmt(st[k])} s against {fmt(other[k])} with {peer})" for _, k in worse[:3])


def short_version(text: str) -> str:
    match = re.search(r"\d+\.\d+[\w.+~:-]*", text)
    return match.group(0) if match else text


def render(doc: dict) -> str:
    m = doc["machine"]
    out = ["# Benchmarks", "",
           "Generated by `bench/run.py`; do not edit by hand (re-run the command below).", "",
           f"- Command: `{doc['command']}`",
           f"- Date: {doc['date']} · duration {doc['duration_s']:.0f} s · runs per figure: {doc['runs']}"
           + (" · **quick mode: tiny sizes, one run — a smoke test, not figures to quote**" if doc["quick"] else ""),
           f"- Machine: {m['cpu'] or '?'}, {m['cpus']} CPUs, {m['memory_mib']} MiB RAM, {m['os']}, kernel "
           f"{m['kernel']}, Python {m['python']}",
           "- Peers: " + ", ".join(f"{k} {short_version(v)}" for k, v in m["peers"].items()),
           "- Network: a bridge and veth pairs in network namespaces this bench creates and deletes; no real "
           "interface is touched. Servers and clients share the machine's CPUs.", "",
           "Every figure is the median of the runs with (min–max). **Ratio = how many times better the station "
           "is than that peer**: station/peer for rates, peer/station for times and memory. Above 1 the station "
           "is better, below 1 it is worse. ↑ means higher is better, ↓ means lower is better. "
           "A scenario whose part has not landed says \"not available\" and gives the reason; nothing is "
           "estimated.", "", "## Targets", ""]
    out += targets(doc) or ["- no target could be evaluated in this run"]
    for section, title in SECTIONS:
        scs = [sc for sc in doc["scenarios"] if sc["section"] == section]
        if not scs:
            continue
        out += ["", f"## {title}", ""] + table(scs)
        if section == "tftp":
            out += side_table(scs, "cpu_us_per_block", "Server CPU per data block, µs (all processes of each server, "
                                                        "from its cgroup or /proc/<pid>/stat)")
            out += side_table(scs, "user_us_per_block", "Of which in user space (outside the kernel), µs per block")
            out += side_table(scs, "failures", "Transfers that failed or did not match sha256, over all runs")
        if section == "dhcp":
            out += side_table(scs, "drop_pct", "perfdhcp drops, % of DISCOVERs without an ACK")
            out += side_table(scs, "answered", "Cold burst: clients that got an OFFER before the timeout")
            out += side_table(scs, "mean_s", "Cold burst: mean seconds to first OFFER")
        if section == "fleet":
            pauses = sorted({sc["reboot_s"] for sc in scs if sc.get("reboot_s")})
            if pauses:
                out += ["", f"Phone reboot pause: {', '.join(fmt(p) for p in pauses)} s per reboot on both sides "
                            "(a real 79x5 takes a minute or more, which would add the same to both)."]
            out += side_table(scs, "on_target", "Phones on the target load at the end")
            out += side_table(scs, "errors", "What stopped the phones that did not finish")
            for sc in scs:
                out += model_table(sc)
            for sc in scs:
                if sc.get("breakdown"):
                    out += ["", f"Where the slowest phones' seconds went ({sc['name']}; the phone model's own "
                                "timestamps, s):", ""] + breakdown_table(sc["breakdown"]) + ["", BREAKDOWN_TEXT]
        if section == "footprint":
            out += side_table(scs, "rss_mib", "Sum of resident set sizes (RSS; a shared page counts in every "
                                              "process that maps it), MiB")
            out += side_table(scs, "processes", "PSS per process kind, MiB (idle: last sample; fleet: the peak "
                                                "sample; several processes of one kind are added up)")
        notes = sorted({n for sc in scs for n in sc.get("notes", [])})
        if notes:
            out += ["", "Notes:"] + [f"- {n}" for n in notes]
        out += ["", SECTION_TEXT[section]]
    return "\n".join(out) + "\n"


SECTION_TEXT = {
    "tftp": "Clients: `curl tftp://` processes started together in a client namespace, each from its own "
            "address as phones would be (bench/tftp_clients.py); throughput = bytes of all sha256-verified files "
            "/ wall time until the last "
            "one ends. Peers: tftpd-hpa (`in.tftpd -B 1468`) and dnsmasq `--enable-tftp` with Debian defaults. The "
            "windowsize row uses atftp `--option \"windowsize 8\"` (RFC 7440); tftpd-hpa and dnsmasq 2.90 do "
            "not negotiate it and serve it lock-step, which is what a phone asking for it would get from them.",
    "dhcp": "perfdhcp (Kea) runs full DORA exchanges at the offered rate for a fixed period against a fresh "
            "server; the burst sends DISCOVERs from that many new MACs at once (bench/dhcp_burst.py). dnsmasq runs with "
            "its default ping check (which is why it completes no perfdhcp exchange in time and is slow in the "
            "burst); `dnsmasq-noping` is dnsmasq with `--no-ping`, for reference; Kea is kea-dhcp4 with a memfile "
            "lease database and Debian's default single-threaded configuration.",
    "fleet": "Phones (bench/fleet_phones.py): 7965s of the independent phone model (tools.phonesim, outside the "
             "product), web access off: real DHCP with option 60 and 12, then plain TFTP RRQs from each phone's own "
             "leased address: trust files, SEP<MAC>.cnf.xml, the .loads (signed header and name checked, the "
             "model's own table deciding whether the running load can verify it) and its components; a phone "
             "that installed a load reboots (a fixed short pause, the same for both sides) and boots again, and "
             "is done when its config names the load it runs. The hand-configured side is dnsmasq with option "
             "150, TFTP and a static SEP<MAC>.cnf.xml per phone: stone for all, wait for all, swap to the target, "
             "reset (the tech's reaction time is not counted).",
    "footprint": "Memory is summed over every process of each side (`appliance run`, supervisord, every service "
                 "and gunicorn worker; dnsmasq is one process). The headline figure is PSS (proportional set "
                 "size: each shared page divided among the processes mapping it), whose sum is what the machine "
                 "really gives up; the RSS sum counts shared library pages once per process and overstates it. "
                 "Start-up is from launching the process until bench/first_offer.py sees an OFFER (the station "
                 "first probes for another DHCP server, as configured by default).",
}
