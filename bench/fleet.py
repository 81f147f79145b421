"""Fleet and footprint: the whole station (`appliance run`) against dnsmasq configured by hand, as a tech would.

Two shelves (bench/shelf.py): 50 7965s (figures compared across commits), and a
mixed shelf of 7965s, 7841s of both platforms, a 6921 and an 8945.

Station: `appliance run` (supervisord + dhcp, tftp, dns, api) with synthetic
stone and target loads (appliance.firmware.synth) in its firmware volume; the
phones (bench/fleet_phones.py: the independent phone model, tools.phonesim,
with web access off) boot, the station's plan sends each 7965 through the
stone and then to the target, every other phone to its target, on its own.

By hand: one dnsmasq (DHCP with option 150, TFTP, its default ping check) over
the same load files plus a static SEP<MAC>.cnf.xml per phone
(bench/fleet_sep.cnf.xml) naming what a tech would write for its model: the
stone for a 7965, the target for the others.  The tech waits for every 7965 to
take the stone, rewrites their configs to name the target and resets them;
the other phones go on by themselves meanwhile (their own process, started
with the 7965s).  dnsmasq serves no HTTP :6970, so a 7841 or an 8945 finds it
closed and falls back to TFTP, as a real one would.  The tech's own reaction
time is not counted, which flatters the hand-configured side.

Where the time went: every phone model writes down when each of its DHCP
exchanges, downloads and modelled pauses began and ended (bench/fleet_phones.py
--timeline; the phone's own view, the same whichever server answers), and
`breakdown` turns that into seconds waiting for DHCP, transferring, waiting for
the answer to a config request, in the phone's own reboots and pauses, waiting
for the rest of the fleet and the tech (by hand only), and the rest; the slowest
phones of each side are printed and reported.

Footprint, from the same runs: start-up (process launched -> first OFFER seen by
bench/first_offer.py) and memory of every process of each side (sum of RSS and of
PSS over the process tree) idle and, sampled every 0.5 s, during the fleet run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

from bench import report
from bench.common import Deadline, finish, memory, scenario, speed_ratio, summary, tree, unavailable
from bench.dhcp_lab import PYTHON, REPO, Lab, station_env
from bench.shelf import (
    FLEET,
    MIXED,
    STONE,
    Group,
    Phone,
    groups_arg,
    label_counts,
    layout,
    library,
    model_times,
    transports,
)

HERE = Path(__file__).resolve().parent
SERVER, CLIENT = "10.79.0.1", "10.79.0.250"
POOL = ("10.79.0.2", "10.79.0.201")
MODEL = "7965"
MEMORY_TARGET_MB = 120
MEMORY_TARGET_MIB = MEMORY_TARGET_MB * 1e6 / 2**20
PEER = "dnsmasq by hand"


def missing_part(module: str, what: str) -> str | None:
    try:
        if importlib.util.find_spec(module) is None:
            return f"{what} has not landed yet"
    except ImportError as exc:
        return f"{module} cannot be imported ({exc})"
    return None


def write_loads(firmware: Path, load_bytes: int, shelf: tuple[Group, ...] = FLEET) -> None:
    """The shelf's stones and targets; a 7800 load holds both platforms' files, so it gets twice the bytes
    and each phone fetches about `load_bytes`, as a 7965 does."""
    from appliance.firmware import synth

    firmware.mkdir(parents=True, exist_ok=True)
    for load in library(shelf):
        synth.write_load(firmware, load, size_bytes=load_bytes * (2 if synth.is_gen5(load) else 1),
                         components=5)
    for path in [firmware, *firmware.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


class Sampler:
    """Memory of a process tree every `period` seconds, in a thread, until stopped."""

    def __init__(self, pid: int, period: float = 0.5):
        self.pid, self.period, self.samples = pid, period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(memory(tree(self.pid)))
            self._stop.wait(self.period)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        if not self.samples:
            return {}
        peak = max(self.samples, key=lambda s: s["rss_mib"])
        pss_peak = max(self.samples, key=lambda s: s["pss_mib"])
        return {"rss_mib_peak": peak["rss_mib"], "pss_mib_peak": pss_peak["pss_mib"],
                "processes": peak["processes"], "samples": len(self.samples),
                "rss_mib_by_process": peak["rss_mib_by_process"],
                "pss_mib_by_process": pss_peak["pss_mib_by_process"]}


class Side:
    """One side of the comparison running in the lab's `srv` namespace."""

    def __init__(self, lab: Lab, kind: str, work: Path, firmware: Path, quick: bool):
        self.lab, self.kind, self.work, self.firmware, self.quick = lab, kind, work, firmware, quick
        self.proc: subprocess.Popen | None = None
        self.root = work / "tech-root"

    def command(self) -> tuple[list[str], dict | None]:
        if self.kind == "station":
            env = station_env(self.work / "state", TFTP_ROOT=str(self.firmware), DHCP_POOL_START=POOL[0],
                              DHCP_POOL_END=POOL[1])
            return [PYTHON, "-m", "appliance", "run"], env
        return ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--interface=lan0", "--bind-interfaces",
                "--user=root", f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0", f"--dhcp-option=150,{SERVER}",
                f"--dhcp-leasefile={self.work / 'dnsmasq.leases'}", "--enable-tftp", f"--tftp-root={self.root}",
                f"--pid-file={self.work / 'dnsmasq.pid'}", "--address=/recovery/" + SERVER], None

    def start(self) -> float | None:
        """Launch and return seconds until the first OFFER (None: none within the timeout)."""
        self.work.mkdir(parents=True, exist_ok=True)
        if self.kind != "station":
            self.root.mkdir(exist_ok=True)
            for path in self.firmware.iterdir():
                if path.is_file() and not (self.root / path.name).exists():
                    os.link(path, self.root / path.name)
        cmd, env = self.command()
        probe = self.lab.popen("cli", PYTHON, str(HERE / "first_offer.py"), "--timeout", "60", cwd=str(REPO))
        probe.stdout.readline()
        t0 = time.time()
        self.proc = self.lab.popen("srv", *cmd, env=env, stdout=open(self.work / f"{self.kind}.log", "a"),
                                   stderr=subprocess.STDOUT, cwd=str(REPO))
        try:
            out, _ = probe.communicate(timeout=70)
        except subprocess.TimeoutExpired:
            self.lab.kill(probe)
            return None
        offer = json.loads(out.strip().splitlines()[-1]).get("offer") if out.strip() else None
        return offer - t0 if offer else None

    def write_configs(self, load: str | dict[str, str], macs: list[str]) -> None:
        """SEP<MAC>.cnf.xml naming `load` (or {mac: load}) for each MAC, as the tech writes them."""
        template = (HERE / "fleet_sep.cnf.xml").read_text()
        for mac in macs:
            named = load if isinstance(load, str) else load[mac]
            (self.root / f"SEP{mac.upper()}.cnf.xml").write_text(template.replace("@LOAD@", named)
                                                                  .replace("@SERVER@", SERVER))

    def stop(self) -> None:
        if self.proc is None:
            return
        started = {pid: start_time(pid) for pid in tree(self.proc.pid)}
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                pass
        for pid, when in started.items():
            if when is not None and start_time(pid) == when:   # still ours, not a recycled PID
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait(5)
        self.proc = None


def start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def reset_client(lab: Lab) -> None:
    """The client namespace's interface back to the bench's own address: the last fleet's leases gone."""
    lab.run("cli", "ip", "-4", "addr", "flush", "dev", "lan0")
    lab.run("cli", "ip", "addr", "add", f"{CLIENT}/16", "dev", "lan0")


def phones(lab: Lab, shelf: list[dict], timeout: float, reboot_s: float, timeline: Path | None = None,
           flush: bool = True) -> dict:
    """Boot these phones (bench/fleet_phones.py --shelf groups) and return its JSON document.  `flush` first
    clears the client interface; never while another fleet is running there (it would drop their leases)."""
    if flush:
        reset_client(lab)
    count = sum(g["count"] for g in shelf)
    res = lab.run("cli", PYTHON, str(HERE / "fleet_phones.py"), "--shelf", json.dumps(shelf),
                  "--timeout", str(timeout), "--reboot-s", str(reboot_s),
                  *(["--timeline", str(timeline)] if timeline else []), timeout=timeout + 60)
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"count": count, "wall_s": None, "phones": [], "error": (res.stderr or res.stdout)[-300:]}


# ---- where each phone's seconds went, from its own timeline ------------------------------------------------
# Columns, in the order reported: (key, what it counts).
PARTS = [("dhcp_s", "waiting for DHCP: DISCOVER sent to ACK in, every boot, DHCP retries included"),
         ("transfer_s", "TFTP/HTTP transfers: request sent to last byte in (a config: first to last byte)"),
         ("decision_s", "waiting for the answer to a config request: request sent to the server's first reply"),
         ("phone_s", "the phone's own modelled pauses: reboots after an install, retries after a refusal"),
         ("fleet_wait_s", "on the stone waiting for the rest of the fleet, and the tech's swap (by hand only)"),
         ("other_s", "the rest: the model's own work (address set-up, header checks), thread start, scheduling")]
CONFIG_ROLES = {"config", "default config", "signed config", "SIP phone's SEP config", "SIPDefault.cnf",
                "SIP<MAC>.cnf"}
DHCP_PAUSE = "retry DHCP"       # the pause between two DHCP attempts of one boot: still waiting for DHCP
SLOWEST = 5


def read_timelines(path: Path) -> dict[str, dict]:
    """bench/fleet_phones.py --timeline: {mac: that phone's line}; a missing or torn file gives what it has."""
    out: dict[str, dict] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("mac"):
            out[rec["mac"]] = rec
    return out


def phase_end(rec: dict) -> float:
    """When the phone was done in this phase (settled), else when it stopped, on the fleet's clock."""
    if rec.get("done_s") is not None:
        return rec["done_s"]
    ends = [s["t0"] for s in rec.get("spans", []) if s.get("kind") == "end"]
    return ends[-1] if ends else max([s.get("t1") or s.get("t0") or 0.0 for s in rec.get("spans", [])] + [0.0])


def breakdown(phases: list[dict], waited_s: float = 0.0) -> dict:
    """Where one phone's seconds went, from its timeline in each phase (bench/fleet_phones.py --timeline
    lines, in order) and `waited_s` spent between phases (by hand: on the stone until the last phone had
    it, then the tech's swap).  Total = the phases' ends + waited_s; every part is a sum of the phone's
    own spans; `other_s` is what no span covers."""
    parts = {key: 0.0 for key, _ in PARTS}
    pauses: dict[str, float] = {}
    first_byte = address = 0.0
    fetches = configs = boots = 0
    total, finished = waited_s, True
    for rec in phases:
        finished = finished and rec.get("done_s") is not None
        total += phase_end(rec)
        for span in rec.get("spans", []):
            kind, t0, t1 = span.get("kind"), span.get("t0"), span.get("t1")
            if t0 is None or t1 is None:
                continue
            took = max(0.0, t1 - t0)
            if kind == "dhcp":
                parts["dhcp_s"] += took
                boots += span.get("ok", False)
            elif kind == "address":
                address += took
            elif kind == "sleep":
                if span.get("why") == DHCP_PAUSE:
                    parts["dhcp_s"] += took
                else:
                    parts["phone_s"] += took
                    pauses[span.get("why", "?")] = pauses.get(span.get("why", "?"), 0.0) + took
            elif kind == "fetch":
                fetches += 1
                answered = span.get("first")
                wait = took if answered is None else min(took, max(0.0, answered - t0))
                if span.get("role") in CONFIG_ROLES:
                    configs += 1
                    parts["decision_s"] += wait
                    parts["transfer_s"] += took - wait
                else:
                    parts["transfer_s"] += took
                    first_byte += wait
    parts["fleet_wait_s"] = waited_s
    parts["other_s"] = total - sum(v for k, v in parts.items() if k != "other_s")
    return {"total_s": round(total, 3), **{k: round(v, 3) for k, v in parts.items()}, "finished": finished,
            "leases": boots, "fetches": fetches, "configs": configs, "first_byte_s": round(first_byte, 3),
            "address_s": round(address, 3), "pauses": {k: round(v, 3) for k, v in sorted(pauses.items())}}


MEAN_KEYS = ["total_s"] + [k for k, _ in PARTS] + ["first_byte_s", "address_s", "leases", "fetches", "configs"]


def fleet_breakdown(phones: dict[str, dict], n: int = SLOWEST, labels: dict[str, str] | None = None) -> dict:
    """The `n` slowest phones' breakdowns (slowest first, each with its MAC) and the mean over all phones;
    with `labels` ({mac: model}) naming more than one model, also the mean phone of each ("models")."""
    ranked = sorted(phones.items(), key=lambda kv: -kv[1]["total_s"])

    def mean(group: list[dict]) -> dict:
        return {k: round(statistics.fmean(b[k] for b in group), 3) for k in MEAN_KEYS} if group else {}
    out = {"phones": len(phones), "slowest": [{"mac": mac, **b} for mac, b in ranked[:n]],
           "mean": mean(list(phones.values()))}
    models = list(dict.fromkeys((labels or {}).values()))
    if len(models) > 1:
        out["models"] = {m: {"phones": len(group), **mean(group)} for m in models
                         if (group := [b for mac, b in phones.items() if (labels or {}).get(mac) == m])}
    return out


def station_breakdown(timelines: dict[str, dict], labels: dict[str, str] | None = None) -> dict:
    return fleet_breakdown({mac: breakdown([rec]) for mac, rec in timelines.items()}, labels=labels)


def by_hand_breakdown(first: dict[str, dict], second: dict[str, dict], phase1_s: float | None,
                      swap_s: float, labels: dict[str, str] | None = None) -> dict:
    """By hand a phone that needs the stone runs twice (stone, then target); between the two it waits on the
    stone until the tech saw the last such phone take it (the first phase's wall time) and swapped the
    configs.  A phone with no second round (its config named its target from the start) waits for nothing."""
    out = {}
    for mac, rec in first.items():
        phases = [rec] + ([second[mac]] if mac in second else [])
        waited = (max(0.0, phase1_s - phase_end(rec)) + swap_s) if mac in second and phase1_s else 0.0
        out[mac] = breakdown(phases, waited)
    return fleet_breakdown(out, labels=labels)


def settle_memory(pid: int, wait: float) -> dict:
    time.sleep(wait)
    samples = []
    for _ in range(5):
        samples.append(memory(tree(pid)))
        time.sleep(0.5)
    return {"rss_mib": statistics.median(s["rss_mib"] for s in samples),
            "pss_mib": statistics.median(s["pss_mib"] for s in samples),
            "processes": samples[-1]["processes"], "names": samples[-1]["names"],
            "rss_mib_by_process": samples[-1]["rss_mib_by_process"],
            "pss_mib_by_process": samples[-1]["pss_mib_by_process"]}


def on_target(result: dict, target: str, offset: float = 0.0) -> float | None:
    """Seconds from the fleet's power-on until this phone was done on `target` (`offset`: when its round
    began), None when it did not end there."""
    if result.get("final") != target or result.get("done_s") is None or result.get("error"):
        return None
    return offset + result["done_s"]


def labels_of(plan: list[Phone]) -> dict[str, str]:
    return {p.mac: p.group.label for p in plan}


def fleet_station(side: Side, plan: list[Phone], timeout: float, reboot_s: float) -> dict:
    sampler = Sampler(side.proc.pid)
    doc = phones(side.lab, groups_arg(plan), timeout, reboot_s, side.work / "timeline.jsonl")
    mem = sampler.stop()
    target = {p.mac: p.group.target for p in plan}
    for r in doc.get("phones", []):
        r["target_s"] = on_target(r, target.get(r["mac"], ""))
    stoned = [p for p in plan if p.group.stone]
    timelines = read_timelines(side.work / "timeline.jsonl")
    return {"fleet": doc, "stone_s": all_installed(doc, len(stoned), STONE, {p.mac for p in stoned}),
            "memory": mem, "breakdown": station_breakdown(timelines, labels_of(plan)),
            "transports": transports([timelines], plan)}


def fleet_by_hand(side: Side, plan: list[Phone], timeout: float, reboot_s: float) -> dict:
    """The tech's way: configs naming the stone (7965s) or the target (the rest); once every 7965 has the
    stone, the swap and their reset; the rest run meanwhile in a fleet of their own, started together."""
    stoned = [p for p in plan if p.group.stone]
    direct = [p for p in plan if not p.group.stone]
    sampler = Sampler(side.proc.pid)
    side.write_configs({p.mac: p.group.stone or p.group.target for p in plan}, [p.mac for p in plan])
    reset_client(side.lab)
    alone: dict = {"phones": []}
    others = threading.Thread(target=lambda: alone.update(phones(
        side.lab, groups_arg(direct), timeout, reboot_s, side.work / "timeline-direct.jsonl", flush=False)),
        daemon=True)
    if direct:
        others.start()
    first: dict = (phones(side.lab, groups_arg(stoned), timeout, reboot_s, side.work / "timeline-stone.jsonl",
                           flush=False) if stoned else {"phones": [], "wall_s": 0.0})
    t = time.monotonic()
    side.write_configs({p.mac: p.group.target for p in stoned}, [p.mac for p in stoned])
    swap = time.monotonic() - t
    on_stone = [r for r in first.get("phones", []) if r["final"] == STONE and not r["error"]]
    # Round two starts on the stone; with others still on the segment their leases stay on the interface.
    second: dict = (phones(side.lab, groups_arg(stoned, {p.group: STONE for p in stoned}), timeout, reboot_s,
                           side.work / "timeline-target.jsonl", flush=not direct)
                    if stoned and len(on_stone) == len(stoned) else {"phones": []})
    if direct:
        others.join(timeout + 90)
    mem = sampler.stop()
    wall: float | None = None
    if not stoned:
        wall = 0.0
    elif first.get("wall_s") and second.get("wall_s"):
        wall = first["wall_s"] + swap + second["wall_s"]
    if direct:
        ends = [r.get("done_s") for r in alone.get("phones", [])]
        wall = None if wall is None or None in ends or len(ends) < len(direct) else max([wall, *ends])
    target = {p.mac: p.group.target for p in plan}
    for r in second.get("phones", []):
        r["target_s"] = on_target(r, target[r["mac"]], first["wall_s"] + swap)
    for r in alone.get("phones", []):
        r["target_s"] = on_target(r, target[r["mac"]])
    results = (second.get("phones") or first.get("phones", [])) + alone.get("phones", [])
    round_one = {**read_timelines(side.work / "timeline-stone.jsonl"),
                 **read_timelines(side.work / "timeline-direct.jsonl")}
    round_two = read_timelines(side.work / "timeline-target.jsonl")
    split = by_hand_breakdown(round_one, round_two, first.get("wall_s"), swap, labels_of(plan))
    return {"fleet": {"count": len(plan), "wall_s": wall, "phones": results, "phase1_s": first.get("wall_s"),
                      "phase2_s": second.get("wall_s"), "swap_s": swap, "errors": [alone.get("error")] if
                      alone.get("error") else []},
            "stone_s": all_installed(first, len(stoned), STONE), "memory": mem, "breakdown": split,
            "transports": transports([round_one, round_two], plan)}


def median_run(results: list[dict]) -> dict:
    """The run whose fleet time is the median (an incomplete run counts as the slowest); its breakdown is
    the one reported, with its number."""
    ranked = sorted(range(len(results)), key=lambda i: (results[i].get("done_s") is None,
                                                        results[i].get("done_s") or 0.0))
    i = ranked[(len(ranked) - 1) // 2]
    return {**results[i], "breakdown": {**results[i].get("breakdown", {}), "run": i + 1, "runs": len(results)}}


FAILURES = REPO / "build" / "bench-failures"


def keep_failure(side: Side, doc: dict, run_no: int, log) -> None:
    """An incomplete run's station log, database and phone reports, kept for diagnosis (build/ is not committed)."""
    import shutil

    dest = FAILURES / f"{side.kind.replace(' ', '-')}-run{run_no + 1}-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        shutil.copytree(side.work, dest, ignore=shutil.ignore_patterns("tech-root", "firmware", "*.sock"))
        (dest / "phones.json").write_text(json.dumps(doc, indent=1))
        log(f"fleet: incomplete run kept in {dest}")
    except OSError as exc:
        log(f"fleet: incomplete run not kept: {exc}")


def all_installed(doc: dict, count: int, load: str, macs: set[str] | None = None) -> float | None:
    """Seconds from power-on until the last phone (of `macs`, else every one) had installed `load` (None
    unless every one of `count` did)."""
    times = [p.get("installed_s", {}).get(load) for p in doc.get("phones", []) if macs is None or p["mac"] in macs]
    return max(times) if times and len(times) == count and None not in times else None


def outcome(doc: dict, plan: list[Phone]) -> tuple[float | None, int, list[str]]:
    """(seconds until the last phone is done on its target, or None; phones on target; first errors)."""
    target = {p.mac: p.group.target for p in plan}
    ps = doc.get("phones", [])
    done = [p for p in ps if p.get("target_s") is not None]
    errors = sorted({f"{p['error']} (on {p['final']})" if p["error"] else
                     f"settled on {p['final']}: its config kept naming the load it runs; the target "
                     f"{target.get(p['mac'])} was never offered"
                     for p in ps if p["error"] or p["final"] != target.get(p["mac"])})[:3]
    errors[:0] = [e for e in [doc.get("error"), *doc.get("errors", [])] if e]
    if len(done) < len(plan):
        return None, len(done), errors
    return doc.get("wall_s") if "phase1_s" in doc else max(p["target_s"] for p in done), len(done), errors


def run_side(lab: Lab, kind: str, work: Path, firmware: Path, plan: list[Phone], quick: bool, run_no: int,
             runs: int, timeout: float, reboot_s: float, no_fleet: str | None, notes: list[str], log) -> dict | None:
    """One side's run: start it, its idle memory, its fleet (unless `no_fleet`), stop it.  None (and a note)
    when it sent no OFFER."""
    side = Side(lab, kind, work, firmware, quick)
    try:
        startup = side.start()
        if startup is None:
            notes.append(f"run {run_no + 1}: {kind} sent no OFFER within 60 s")
            return None
        idle = settle_memory(side.proc.pid, 2.0 if quick else 5.0)
        if no_fleet:
            log(f"fleet run {run_no + 1}/{runs} {kind:15s} start-up {startup:.2f} s, idle "
                f"{idle['pss_mib']:.0f} MiB PSS ({idle['rss_mib']:.0f} RSS); no fleet: {no_fleet}")
            return {"startup_s": startup, "idle": idle}
        res = (fleet_station if kind == "station" else fleet_by_hand)(side, plan, timeout, reboot_s)
        res.update(startup_s=startup, idle=idle)
        res["done_s"], res["on_target"], res["errors"] = outcome(res["fleet"], plan)
        res["models"] = model_times(res["fleet"].get("phones", []), plan)
        if res["on_target"] < len(plan):
            keep_failure(side, res["fleet"], run_no, log)
        res.pop("fleet")
        log(f"fleet run {run_no + 1}/{runs} {kind:15s} start-up {startup:.2f} s, idle "
            f"{idle['pss_mib']:.0f} MiB PSS, fleet {res['on_target']}/{len(plan)} on target in "
            f"{res['done_s']} s, peak {res['memory'].get('pss_mib_peak')} MiB PSS"
            + (f"  {res['errors']}" if res["errors"] else ""))
        if len(label_counts(plan)) > 1:
            log("  last phone of each model on its target: "
                + ", ".join(f"{m} {t if t is None else round(t, 1)} s" for m, t in res["models"].items()))
        for line in report.breakdown_table({kind: res["breakdown"]}):
            log(f"  {line}")
        return res
    finally:
        side.stop()


def runs_of(lab: Lab, tag: str, work: Path, firmware: Path, plan: list[Phone], runs: int, quick: bool,
            deadline: Deadline, timeout: float, reboot_s: float, no_fleet: str | None, notes: list[str],
            log) -> dict[str, list]:
    """`runs` runs of both sides over one shelf, the side that goes first alternating; {side: results}."""
    raw: dict[str, list] = {"station": [], PEER: []}
    what = "mixed shelf: " if tag else ""
    for run_no in range(runs):
        if not deadline.allows(40 if quick else 150):
            notes.append(f"{what}time budget reached after {run_no} run(s)")
            break
        for kind in (("station", PEER) if run_no % 2 == 0 else (PEER, "station")):
            res = run_side(lab, kind, work / f"{tag}{kind.replace(' ', '-')}-{run_no}", firmware, plan, quick,
                           run_no, runs, timeout, reboot_s, no_fleet, notes, log)
            if res is not None:
                raw[kind].append(res)
    return raw


def mixed_name(plan: list[Phone], load_bytes: int) -> str:
    counts = label_counts(plan)
    stoned = sorted({p.group.label for p in plan if p.group.stone})
    parts = [f"{counts[m]} {m}s through the stone" for m in stoned]
    parts += [f"{n} {m}" + ("s" if n > 1 else "") for m, n in counts.items() if m not in stoned]
    return (f"mixed shelf: {', '.join(parts)}, each to its target ({load_bytes / 1e6:.1f} MB per phone per "
            f"load)")


def mixed_scenario(name: str, plan: list[Phone], raw: dict[str, list], load_bytes: int, reboot_s: float,
                   notes: list[str]) -> dict:
    """The mixed shelf's row: the whole shelf on target, and per model the last phone on its target."""
    sc = scenario("fleet", name, "time until the last phone runs its target", "s", False, phones=len(plan),
                  load_bytes=load_bytes, on_target={}, errors={}, notes=notes, reboot_s=reboot_s, breakdown={},
                  models=label_counts(plan), per_model={}, per_model_ratios={}, transports={},
                  targets={p.group.label: p.group.target for p in plan})
    for kind, results in raw.items():
        if not results:
            continue
        sc["results"][kind] = summary([r["done_s"] for r in results])
        sc["on_target"][kind] = summary([r["on_target"] for r in results])
        sc["errors"][kind] = sorted({e for r in results for e in r["errors"]})[:5]
        sc["breakdown"][kind] = median_run(results)["breakdown"]
        sc["per_model"][kind] = {m: summary([r["models"].get(m) for r in results]) for m in sc["models"]}
        sc["transports"][kind] = median_run(results).get("transports", {})
    st = sc["per_model"].get("station", {})
    for peer, per in sc["per_model"].items():
        if peer != "station":
            sc["per_model_ratios"][peer] = {m: speed_ratio((st.get(m) or {}).get("median"),
                                                           (per.get(m) or {}).get("median"), False)
                                            for m in sc["models"]}
    errs = sc["errors"].get("station") or []
    on = sc["on_target"].get("station", {}).get("values") or []
    return finish(sc, [PEER], (f"phones on the target per run: {on}; " if on else "") + "; ".join(errs[:2]))


def against_peer(sc: dict) -> dict:
    """Issue 26: the fleet stays at least 1.0x dnsmasq by hand; the verdict goes with the row."""
    r = sc["ratios"].get(PEER)
    if sc["status"] == "ok" and PEER in sc["results"]:
        sc["target"] = {"text": f"at least 1.0× {PEER}, ratio {'—' if r is None else f'{r:.2f}×'}",
                        "met": r is not None and r >= 1.0}
    return sc


def run(work: Path, runs: int, quick: bool, deadline: Deadline, log=print) -> list[dict]:
    fleet_plan, mixed_plan = layout(FLEET, quick), layout(MIXED, quick)
    count = len(fleet_plan)
    load_bytes = 512 * 1024 if quick else 7_000_000
    fleet_name = f"{count} phones through the stone to the target ({load_bytes / 1e6:.1f} MB per load)"
    shelf_name = mixed_name(mixed_plan, load_bytes)
    why = missing_part("appliance.tftp.service", "the file service (`appliance serve tftp`), without which "
                                                  "`appliance run` stops,")
    if why:
        return [unavailable("fleet", fleet_name, why),
                unavailable("fleet", f"first step: {count} phones have all installed the stone {STONE}", why),
                unavailable("fleet", shelf_name, why),
                unavailable("footprint", "memory of all processes", why),
                unavailable("footprint", "start-up: process launched to first OFFER", why)]
    no_fleet = missing_part("appliance.firmware.synth", "the synthetic-load writer (appliance.firmware.synth)")
    timeout = 90.0 if quick else 400.0
    reboot_s = 3.0 if quick else 5.0
    notes: list[str] = []
    mixed_notes: list[str] = []
    mixed_raw: dict[str, list] = {"station": [], PEER: []}
    with Lab("fl") as lab:
        lab.add("srv", SERVER)
        lab.add("cli", CLIENT)
        firmware = work / "firmware"
        if no_fleet:
            firmware.mkdir(parents=True, exist_ok=True)
            firmware.chmod(0o755)
        else:
            write_loads(firmware, load_bytes)
        raw = runs_of(lab, "", work, firmware, fleet_plan, runs, quick, deadline, timeout, reboot_s, no_fleet,
                      notes, log)
        if not no_fleet:
            # After the 50 7965s: a short budget drops mixed runs, never runs of the figures compared across
            # commits.
            write_loads(work / "firmware-mixed", load_bytes, MIXED)
            mixed_raw = runs_of(lab, "mixed-", work, work / "firmware-mixed", mixed_plan, runs, quick, deadline,
                                timeout, reboot_s, None, mixed_notes, log)
    peers = [PEER]
    fleet = scenario("fleet", fleet_name, "time until the last phone runs the target", "s", False, phones=count,
                     load_bytes=load_bytes, on_target={}, errors={}, notes=notes,
                     reboot_s=reboot_s, breakdown={})
    stone = scenario("fleet", f"first step: {count} phones have all installed the stone {STONE}",
                     "time until the last phone has installed the stone", "s", False, phones=count, notes=notes)
    mem_idle = scenario("footprint", "memory of all processes, idle (sum of PSS)", "PSS", "MiB", False,
                        rss_mib={}, processes={}, notes=notes)
    mem_busy = scenario("footprint", "memory of all processes, peak during the fleet run (sum of PSS)",
                        "PSS", "MiB", False, rss_mib={}, processes={}, notes=notes)
    startup = scenario("footprint", "start-up: process launched to first OFFER", "start-up time", "s", False,
                       notes=notes)
    for kind, results in raw.items():
        if not results:
            continue
        mem_idle["results"][kind] = summary([r["idle"]["pss_mib"] for r in results])
        mem_idle["rss_mib"][kind] = summary([r["idle"]["rss_mib"] for r in results])
        mem_idle["processes"][kind] = results[-1]["idle"]["pss_mib_by_process"]
        startup["results"][kind] = summary([r["startup_s"] for r in results])
        if no_fleet:
            continue
        fleet["results"][kind] = summary([r["done_s"] for r in results])
        fleet["on_target"][kind] = summary([r["on_target"] for r in results])
        fleet["errors"][kind] = sorted({e for r in results for e in r["errors"]})[:5]
        fleet["breakdown"][kind] = median_run(results)["breakdown"]
        stone["results"][kind] = summary([r.get("stone_s") for r in results])
        mem_busy["results"][kind] = summary([r["memory"].get("pss_mib_peak") for r in results])
        mem_busy["rss_mib"][kind] = summary([r["memory"].get("rss_mib_peak") for r in results])
        mem_busy["processes"][kind] = results[-1]["memory"].get("pss_mib_by_process", {})
    for sc in (mem_idle, mem_busy):
        st = sc["results"].get("station", {}).get("median")
        rss = sc["rss_mib"].get("station", {}).get("median")
        sc["target"] = {"text": f"under {MEMORY_TARGET_MB} MB ({MEMORY_TARGET_MIB:.1f} MiB) in total "
                                f"(Raspberry Pi Zero 2 W), judged on the "
                                f"PSS sum (shared pages counted once); the RSS sum, which counts them in every "
                                f"process, is {'—' if rss is None else f'{rss:.0f}'} MiB",
                        "met": bool(st is not None and st < MEMORY_TARGET_MIB)}
    if no_fleet:
        return [unavailable("fleet", fleet_name, no_fleet), unavailable("fleet", stone["name"], no_fleet),
                unavailable("fleet", shelf_name, no_fleet), finish(mem_idle, peers),
                unavailable("footprint", mem_busy["name"], no_fleet), finish(startup, peers)]
    st_errors = fleet["errors"].get("station") or []
    on = fleet["on_target"].get("station", {}).get("values") or []
    why = (f"phones on the target per run: {on}; " if on else "") + "; ".join(st_errors[:2])
    return [against_peer(finish(fleet, peers, why)), finish(stone, peers, why),
            against_peer(mixed_scenario(shelf_name, mixed_plan, mixed_raw, load_bytes, reboot_s, mixed_notes)),
            finish(mem_idle, peers), finish(mem_busy, peers), finish(startup, peers)]
