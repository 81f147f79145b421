"""Fleet and footprint: the whole station (`appliance run`) against dnsmasq configured by hand, as a tech would.

Station: `appliance run` (supervisord + dhcp, tftp, dns, api) with synthetic
stone and target loads (appliance.firmware.synth) in its firmware volume; the
phones (bench/fleet_phones.py: 7965s of the independent phone model,
tools.phonesim, with web access off) boot, the station's plan sends each
through the stone and then to the target on its own.

By hand: one dnsmasq (DHCP with option 150, TFTP, its default ping check) over
the same load files plus a static SEP<MAC>.cnf.xml per phone naming the stone
(bench/fleet_sep.cnf.xml).  The tech waits for every phone to take the stone,
rewrites the configs to name the target and resets the phones.  The tech's own
reaction time is not counted, which flatters the hand-configured side.

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
from bench.common import Deadline, finish, memory, scenario, summary, tree, unavailable
from bench.dhcp_lab import PYTHON, REPO, Lab, station_env

HERE = Path(__file__).resolve().parent
SERVER, CLIENT = "10.79.0.1", "10.79.0.250"
POOL = ("10.79.0.2", "10.79.0.201")
MODEL = "7965"
STONE, TARGET, START_LOAD = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "SCCP45.8-3-1S"
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


def write_loads(firmware: Path, load_bytes: int) -> None:
    from appliance.firmware import synth

    firmware.mkdir(parents=True, exist_ok=True)
    for load in (STONE, TARGET):
        synth.write_load(firmware, load, size_bytes=load_bytes, components=5)
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

    def write_configs(self, load: str, macs: list[str]) -> None:
        template = (HERE / "fleet_sep.cnf.xml").read_text()
        for mac in macs:
            (self.root / f"SEP{mac.upper()}.cnf.xml").write_text(template.replace("@LOAD@", load)
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


def phones(lab: Lab, count: int, current: str, timeout: float, reboot_s: float,
           timeline: Path | None = None) -> dict:
    lab.run("cli", "ip", "-4", "addr", "flush", "dev", "lan0")
    lab.run("cli", "ip", "addr", "add", f"{CLIENT}/16", "dev", "lan0")
    res = lab.run("cli", PYTHON, str(HERE / "fleet_phones.py"), "--count", str(count), "--current", current,
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


def fleet_breakdown(phones: dict[str, dict], n: int = SLOWEST) -> dict:
    """The `n` slowest phones' breakdowns (slowest first, each with its MAC) and the mean over all phones."""
    ranked = sorted(phones.items(), key=lambda kv: -kv[1]["total_s"])
    keys = ["total_s"] + [k for k, _ in PARTS] + ["first_byte_s", "address_s", "leases", "fetches", "configs"]
    mean = {k: round(statistics.fmean(b[k] for b in phones.values()), 3) for k in keys} if phones else {}
    return {"phones": len(phones), "slowest": [{"mac": mac, **b} for mac, b in ranked[:n]], "mean": mean}


def station_breakdown(timelines: dict[str, dict]) -> dict:
    return fleet_breakdown({mac: breakdown([rec]) for mac, rec in timelines.items()})


def by_hand_breakdown(first: dict[str, dict], second: dict[str, dict], phase1_s: float | None,
                      swap_s: float) -> dict:
    """By hand every phone runs twice (stone, then target); between the two it waits on the stone until the
    tech saw the last phone take it (the first phase's wall time) and swapped the configs."""
    out = {}
    for mac, rec in first.items():
        phases = [rec] + ([second[mac]] if mac in second else [])
        waited = (max(0.0, phase1_s - phase_end(rec)) + swap_s) if mac in second and phase1_s else 0.0
        out[mac] = breakdown(phases, waited)
    return fleet_breakdown(out)


def macs_of(count: int) -> list[str]:
    return [bytes((0x00, 0x1E, 0x7A, 0x42, n >> 8 & 0xFF, n & 0xFF)).hex() for n in range(count)]


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


def fleet_station(side: Side, count: int, timeout: float, reboot_s: float) -> dict:
    sampler = Sampler(side.proc.pid)
    doc = phones(side.lab, count, START_LOAD, timeout, reboot_s, side.work / "timeline.jsonl")
    mem = sampler.stop()
    return {"fleet": doc, "stone_s": all_installed(doc, count, STONE), "memory": mem,
            "breakdown": station_breakdown(read_timelines(side.work / "timeline.jsonl"))}


def fleet_by_hand(side: Side, count: int, timeout: float, reboot_s: float) -> dict:
    macs = macs_of(count)
    sampler = Sampler(side.proc.pid)
    side.write_configs(STONE, macs)
    first = phones(side.lab, count, START_LOAD, timeout, reboot_s, side.work / "timeline-stone.jsonl")
    t = time.monotonic()
    side.write_configs(TARGET, macs)
    swap = time.monotonic() - t
    on_stone = [p for p in first.get("phones", []) if p["final"] == STONE and not p["error"]]
    second = (phones(side.lab, count, STONE, timeout, reboot_s, side.work / "timeline-target.jsonl")
              if len(on_stone) == count else {"phones": []})
    mem = sampler.stop()
    wall = (first["wall_s"] + swap + second["wall_s"]) if second.get("wall_s") and first.get("wall_s") else None
    split = by_hand_breakdown(read_timelines(side.work / "timeline-stone.jsonl"),
                              read_timelines(side.work / "timeline-target.jsonl"), first.get("wall_s"), swap)
    return {"fleet": {"count": count, "wall_s": wall, "phones": second.get("phones") or first.get("phones", []),
                      "phase1_s": first.get("wall_s"), "phase2_s": second.get("wall_s"), "swap_s": swap},
            "stone_s": all_installed(first, count, STONE), "memory": mem, "breakdown": split}


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


def all_installed(doc: dict, count: int, load: str) -> float | None:
    """Seconds from power-on until the last phone had installed `load` (None unless every phone did)."""
    times = [p.get("installed_s", {}).get(load) for p in doc.get("phones", [])]
    return max(times) if len(times) == count and None not in times else None


def outcome(doc: dict, count: int) -> tuple[float | None, int, list[str]]:
    """(seconds until the last phone is done on the target, or None; phones on target; first errors)."""
    ps = doc.get("phones", [])
    on_target = [p for p in ps if p["final"] == TARGET and p["done_s"] is not None and not p["error"]]
    errors = sorted({f"{p['error']} (on {p['final']})" if p["error"] else
                     f"settled on {p['final']}: its config kept naming the load it runs; the target {TARGET} "
                     f"was never offered" for p in ps if p["error"] or p["final"] != TARGET})[:3]
    if doc.get("error"):
        errors.insert(0, doc["error"])
    if len(on_target) < count:
        return None, len(on_target), errors
    return doc.get("wall_s") if "phase1_s" in doc else max(p["done_s"] for p in on_target), len(on_target), errors


def run(work: Path, runs: int, quick: bool, deadline: Deadline, log=print) -> list[dict]:
    count = 5 if quick else 50
    load_bytes = 512 * 1024 if quick else 7_000_000
    fleet_name = f"{count} phones through the stone to the target ({load_bytes / 1e6:.1f} MB per load)"
    why = missing_part("appliance.tftp.service", "the file service (`appliance serve tftp`), without which "
                                                  "`appliance run` stops,")
    if why:
        return [unavailable("fleet", fleet_name, why),
                unavailable("fleet", f"first step: {count} phones have all installed the stone {STONE}", why),
                unavailable("footprint", "memory of all processes", why),
                unavailable("footprint", "start-up: process launched to first OFFER", why)]
    no_fleet = missing_part("appliance.firmware.synth", "the synthetic-load writer (appliance.firmware.synth)")
    timeout = 90.0 if quick else 400.0
    reboot_s = 3.0 if quick else 5.0
    raw: dict[str, list] = {"station": [], PEER: []}
    notes: list[str] = []
    with Lab("fl") as lab:
        lab.add("srv", SERVER)
        lab.add("cli", CLIENT)
        firmware = work / "firmware"
        if no_fleet:
            firmware.mkdir(parents=True, exist_ok=True)
            firmware.chmod(0o755)
        else:
            write_loads(firmware, load_bytes)
        for run_no in range(runs):
            if not deadline.allows(40 if quick else 150):
                notes.append(f"time budget reached after {run_no} run(s)")
                break
            for kind in (("station", PEER) if run_no % 2 == 0 else (PEER, "station")):
                side = Side(lab, kind, work / f"{kind.replace(' ', '-')}-{run_no}", firmware, quick)
                try:
                    startup = side.start()
                    if startup is None:
                        notes.append(f"run {run_no + 1}: {kind} sent no OFFER within 60 s")
                        continue
                    idle = settle_memory(side.proc.pid, 2.0 if quick else 5.0)
                    if no_fleet:
                        raw[kind].append({"startup_s": startup, "idle": idle})
                        log(f"fleet run {run_no + 1}/{runs} {kind:15s} start-up {startup:.2f} s, idle "
                            f"{idle['pss_mib']:.0f} MiB PSS ({idle['rss_mib']:.0f} RSS); no fleet: {no_fleet}")
                        continue
                    res = (fleet_station if kind == "station" else fleet_by_hand)(side, count, timeout, reboot_s)
                    res.update(startup_s=startup, idle=idle)
                    res["done_s"], res["on_target"], res["errors"] = outcome(res["fleet"], count)
                    if res["on_target"] < count:
                        keep_failure(side, res["fleet"], run_no, log)
                    res.pop("fleet")
                    raw[kind].append(res)
                    log(f"fleet run {run_no + 1}/{runs} {kind:15s} start-up {startup:.2f} s, idle "
                        f"{idle['pss_mib']:.0f} MiB PSS, fleet {res['on_target']}/{count} on target in "
                        f"{res['done_s']} s, peak {res['memory'].get('pss_mib_peak')} MiB PSS"
                        + (f"  {res['errors']}" if res["errors"] else ""))
                    for line in report.breakdown_table({kind: res["breakdown"]}):
                        log(f"  {line}")
                finally:
                    side.stop()
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
                finish(mem_idle, peers),
                unavailable("footprint", mem_busy["name"], no_fleet), finish(startup, peers)]
    st_errors = fleet["errors"].get("station") or []
    on = fleet["on_target"].get("station", {}).get("values") or []
    why = (f"phones on the target per run: {on}; " if on else "") + "; ".join(st_errors[:2])
    return [finish(fleet, peers, why), finish(stone, peers, why), finish(mem_idle, peers), finish(mem_busy, peers),
            finish(startup, peers)]
