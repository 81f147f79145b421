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


def phones(lab: Lab, count: int, current: str, timeout: float, reboot_s: float) -> dict:
    lab.run("cli", "ip", "-4", "addr", "flush", "dev", "lan0")
    lab.run("cli", "ip", "addr", "add", f"{CLIENT}/16", "dev", "lan0")
    res = lab.run("cli", PYTHON, str(HERE / "fleet_phones.py"), "--count", str(count), "--current", current,
                  "--timeout", str(timeout), "--reboot-s", str(reboot_s), timeout=timeout + 60)
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"count": count, "wall_s": None, "phones": [], "error": (res.stderr or res.stdout)[-300:]}


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
    doc = phones(side.lab, count, START_LOAD, timeout, reboot_s)
    mem = sampler.stop()
    return {"fleet": doc, "stone_s": all_installed(doc, count, STONE), "memory": mem}


def fleet_by_hand(side: Side, count: int, timeout: float, reboot_s: float) -> dict:
    macs = macs_of(count)
    sampler = Sampler(side.proc.pid)
    side.write_configs(STONE, macs)
    first = phones(side.lab, count, START_LOAD, timeout, reboot_s)
    t = time.monotonic()
    side.write_configs(TARGET, macs)
    swap = time.monotonic() - t
    on_stone = [p for p in first.get("phones", []) if p["final"] == STONE and not p["error"]]
    second = phones(side.lab, count, STONE, timeout, reboot_s) if len(on_stone) == count else {"phones": []}
    mem = sampler.stop()
    wall = (first["wall_s"] + swap + second["wall_s"]) if second.get("wall_s") and first.get("wall_s") else None
    return {"fleet": {"count": count, "wall_s": wall, "phones": second.get("phones") or first.get("phones", []),
                      "phase1_s": first.get("wall_s"), "phase2_s": second.get("wall_s"), "swap_s": swap},
            "stone_s": all_installed(first, count, STONE), "memory": mem}


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
                finally:
                    side.stop()
    peers = [PEER]
    fleet = scenario("fleet", fleet_name, "time until the last phone runs the target", "s", False, phones=count,
                     load_bytes=load_bytes, on_target={}, errors={}, notes=notes,
                     reboot_s=reboot_s)
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
