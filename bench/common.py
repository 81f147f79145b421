"""Shared bench helpers: summaries, ratios, process-tree CPU and memory, scenario records.

Ratios are always "station speed / peer speed" (> 1: the station is faster), so a
reader never has to remember which way round a time ratio goes.  Memory ratios are
the exception and say so in their `meaning`.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def summary(values: list[float | None]) -> dict:
    nums = [v for v in values if v is not None]
    out = {"median": None, "min": None, "max": None, "runs": len(values), "missing": len(values) - len(nums),
           "values": [round(v, 6) if isinstance(v, float) else v for v in values]}
    if nums:
        out.update(median=statistics.median(nums), min=min(nums), max=max(nums))
    return out


def speed_ratio(station: float | None, peer: float | None, higher_is_better: bool) -> float | None:
    """station/peer for rates, peer/station for times: > 1 always means the station is faster."""
    if not station or not peer:
        return None
    return round(station / peer if higher_is_better else peer / station, 3)


def scenario(section: str, name: str, metric: str, unit: str, higher_is_better: bool, **extra) -> dict:
    return {"section": section, "name": name, "metric": metric, "unit": unit,
            "higher_is_better": higher_is_better, "status": "ok", "results": {}, "ratios": {}, **extra}


def unavailable(section: str, name: str, reason: str) -> dict:
    return {"section": section, "name": name, "status": "not available", "reason": reason, "results": {},
            "ratios": {}}


def finish(sc: dict, peers: list[str], why_failed: str = "") -> dict:
    """Fill in the ratios from the per-server medians; a station that ran but never completed is "failed"."""
    st = sc["results"].get("station", {}).get("median")
    if sc["status"] == "ok" and "station" in sc["results"] and st is None:
        sc["status"] = "failed"
        sc["reason"] = f"no complete station run out of {sc['results']['station']['runs']}" + (
            f": {why_failed}" if why_failed else "")
    for peer in peers:
        if peer in sc["results"]:
            sc["ratios"][peer] = speed_ratio(st, sc["results"][peer].get("median"), sc["higher_is_better"])
    return sc


# -- process trees --------------------------------------------------------------------------------------
def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


# /proc/<pid>/stat fields after the command: utime, stime, cutime, cstime
ALL_TIMES, USER_TIMES = (11, 12, 13, 14), (11, 13)


def cpu_seconds(pids: list[int], times: tuple[int, ...] = ALL_TIMES) -> float:
    """utime+stime+cutime+cstime over live processes: a reaped child's time lands in its parent's c-fields,
    so forking servers (tftpd-hpa) are counted whole as long as the root stays alive.  `times=USER_TIMES`:
    utime+cutime only, the part spent outside the kernel (an interpreter's own work)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in times)
    return total / CLK_TCK


def tree_cpu(pid: int) -> float:
    return cpu_seconds(tree(pid))


class CpuGroup:
    """A cgroup-v2 group the bench puts a server in at birth; its cpu.stat counts every process the server ever
    ran, even children auto-reaped with SIGCHLD ignored (tftpd-hpa), which /proc/<pid>/stat loses."""

    _n = 0

    def __init__(self, tag: str):
        CpuGroup._n += 1
        self.path: Path | None = None
        for base in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            if (base / "cgroup.procs").exists() and (base / "cgroup.controllers").exists():
                path = base / f"rs-bench-{tag}-{os.getpid()}-{CpuGroup._n}"
                try:
                    path.mkdir()
                    if (path / "cpu.stat").exists():
                        self.path = path
                        break
                    path.rmdir()
                except OSError:
                    continue

    def wrap(self, cmd: list[str]) -> list[str]:
        if self.path is None:
            return cmd
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *cmd]

    def seconds(self, pid: int | None = None, part: str = "usage") -> float:
        """CPU seconds of the group: part "usage" (all) or "user" (outside the kernel)."""
        if self.path is None:
            return cpu_seconds(tree(pid), USER_TIMES if part == "user" else ALL_TIMES) if pid else 0.0
        for line in (self.path / "cpu.stat").read_text().splitlines():
            if line.startswith(f"{part}_usec"):
                return int(line.split()[1]) / 1e6
        return 0.0

    def close(self) -> None:
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


def memory(pids: list[int]) -> dict:
    """Resident (RSS, counts shared pages in every process) and proportional (PSS) memory, in MiB."""
    rss = pss = 0
    names = []
    by_name: dict[str, float] = {}
    pss_by_name: dict[str, float] = {}
    for pid in pids:
        try:
            own_rss = own_pss = 0
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    own_rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    own_pss = int(line.split()[1])
            name = process_name(pid)
        except OSError:
            continue
        rss, pss = rss + own_rss, pss + own_pss
        names.append(name)
        by_name[name] = round(by_name.get(name, 0) + own_rss / 1024, 2)
        pss_by_name[name] = round(pss_by_name.get(name, 0) + own_pss / 1024, 2)
    return {"rss_mib": round(rss / 1024, 2), "pss_mib": round(pss / 1024, 2), "processes": len(names),
            "names": sorted(names), "rss_mib_by_process": by_name, "pss_mib_by_process": pss_by_name}


def appliance_name(words: list[str]) -> str | None:
    """`appliance serve api` for `python -m appliance --log-format text --log-level INFO serve api` (the verb
    and its object, past the global options supervisord's command line puts first); None if not the station."""
    if "appliance" not in words or "-m" not in words:
        return None
    rest = words[words.index("appliance") + 1:]
    verb = next((i for i, w in enumerate(rest) if w in ("serve", "run", "simulate", "demo")), None)
    return " ".join(["appliance", *(rest[verb:verb + 2] if verb is not None else rest[:2])])


def process_name(pid: int) -> str:
    """`appliance serve tftp` rather than `python`, so a memory table says which service costs what."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [a.decode(errors="replace") for a in args if a]
    named = appliance_name(words)
    if named:
        return named
    helper = next((i for i, w in enumerate(words) if w.endswith("supervise.sh")), None)
    if helper is not None:
        return "supervise.sh " + " ".join(words[helper + 1:helper + 2])   # `appliance run` after its exec
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if comm.startswith("gunicorn") or any("gunicorn" in w for w in words[:2]):
        return "gunicorn"
    return comm


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass

    def version(*cmd: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (out.stdout or out.stderr).strip().splitlines()[0][:80]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "missing"

    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_mib": mem, "kernel": platform.release(),
            "python": platform.python_version(), "os": _os_name(),
            "peers": {"dnsmasq": version("dnsmasq", "--version"), "tftpd-hpa": _deb_version("tftpd-hpa"),
                      "kea-dhcp4": version("kea-dhcp4", "-v"), "perfdhcp": _deb_version("kea-admin"),
                      "curl": version("curl", "--version")}}


def _deb_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "missing"
    except (OSError, subprocess.SubprocessError):
        return "missing"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


class Deadline:
    """The whole bench is bounded; scenarios ask before each run whether time is left."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.left() > seconds
