"""TFTP scenarios of the file-service issue: the station against tftpd-hpa and dnsmasq, one run, one machine.

Each server runs in the lab's `srv` namespace serving the same files; the clients
(`curl tftp://`, bench/tftp_clients.py) run in `cli`.  Per scenario: aggregate
throughput (bytes of all verified files / wall time) and the server's CPU per
data block, read from /proc/<pid>/stat of the processes this bench started
(children included, so forking and multi-worker servers are counted whole).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import CpuGroup, Deadline, finish, scenario, summary
from bench.dhcp_lab import PYTHON, REPO, Lab, station_env

SERVER = "10.78.0.1"
CLIENT = "10.78.0.2"
CLIENTS = Path(__file__).resolve().parent / "tftp_clients.py"
PEERS = ["tftpd-hpa", "dnsmasq"]
MIB = 1 << 20

# name, file size, concurrent clients, blksize, windowsize (0: curl, lock-step; N: atftp asking for RFC 7440)
FULL = [("single 8 MiB, blksize 512", 8 * MIB, 1, 512, 0),
        ("single 8 MiB, blksize 1428", 8 * MIB, 1, 1428, 0),
        ("20 x 8 MiB concurrent, blksize 512", 8 * MIB, 20, 512, 0),
        ("50 x 512 KiB concurrent, blksize 512", 512 * 1024, 50, 512, 0),
        ("single 8 MiB, blksize 1428, atftp windowsize 8", 8 * MIB, 1, 1428, 8)]
QUICK = [("single 1 MiB, blksize 512", MIB, 1, 512, 0),
         ("single 1 MiB, blksize 1428", MIB, 1, 1428, 0),
         ("4 x 1 MiB concurrent, blksize 512", MIB, 4, 512, 0),
         ("10 x 128 KiB concurrent, blksize 512", 128 * 1024, 10, 512, 0),
         ("single 1 MiB, blksize 1428, atftp windowsize 8", MIB, 1, 1428, 8)]


def station_missing() -> str | None:
    try:
        spec = importlib.util.find_spec("appliance.tftp.service")
    except ImportError as exc:
        return f"appliance.tftp.service cannot be imported ({exc})"
    if spec is None:
        return "the file service (appliance/tftp/service.py, `appliance serve tftp`) has not landed yet"
    return None


class TftpServer:
    def __init__(self, lab: Lab, kind: str, root: Path, work: Path):
        self.lab, self.kind, self.root, self.work = lab, kind, root, work
        self.proc: subprocess.Popen | None = None
        self.group: CpuGroup | None = None

    def command(self) -> list[str]:
        if self.kind == "station":
            return [PYTHON, "-m", "appliance", "serve", "tftp"]
        if self.kind == "tftpd-hpa":
            return ["in.tftpd", "--foreground", "--address", f"{SERVER}:69", "--secure", "--blocksize", "1468",
                    "--user", "root", str(self.root)]
        return ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=lan0",
                "--bind-interfaces", "--user=root", "--enable-tftp", f"--tftp-root={self.root}",
                f"--pid-file={self.work / 'dnsmasq-tftp.pid'}"]

    def start(self) -> None:
        log = open(self.work / f"{self.kind}.log", "a")
        env = station_env(self.work / "station-state", TFTP_ROOT=str(self.root), TFTP_PORT="69",
                          TFTP_HTTP_PORT="6970", NETWORK_ADDRESS=SERVER) if self.kind == "station" else None
        self.group = CpuGroup(self.kind.replace("-", ""))
        self.proc = subprocess.Popen(self.group.wrap(["ip", "netns", "exec", self.lab.members["srv"], *self.command()]),
                                     env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                                     start_new_session=True)
        self.lab.procs.append(self.proc)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} (log {self.work}/{self.kind}.log)")
            probe = self.lab.run("cli", "curl", "-s", "--max-time", "2", "-o", "/dev/null", "-w", "%{size_download}",
                                 f"tftp://{SERVER}/ready.txt", timeout=10)
            if probe.returncode == 0 and probe.stdout.strip() == "6":
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.kind} did not serve ready.txt within {timeout}s")

    def cpu(self, part: str = "usage") -> float:
        return self.group.seconds(self.proc.pid, part)

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.kill(self.proc)
            self.proc = None
        if self.group is not None:
            self.group.close()
            self.group = None


def make_files(root: Path, sizes: set[int]) -> dict[int, tuple[str, str]]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ready.txt").write_bytes(b"ready\n")
    files = {}
    for size in sorted(sizes):
        data = os.urandom(size)
        name = f"bench-{size}.bin"
        (root / name).write_bytes(data)
        files[size] = (name, hashlib.sha256(data).hexdigest())
    for path in [root, *root.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return files


SOURCES = [f"10.78.1.{n}" for n in range(1, 51)]


def fetch(lab: Lab, name: str, sha: str, count: int, blksize: int, timeout: float, windowsize: int = 0) -> dict:
    res = lab.run("cli", PYTHON, str(CLIENTS), "--url", f"tftp://{SERVER}/{name}", "--count", str(count),
                  "--blksize", str(blksize), "--sha256", sha, "--timeout", str(timeout),
                  "--sources", ",".join(SOURCES[:count]), "--windowsize", str(windowsize), timeout=timeout + 60)
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"count": count, "good": 0, "wall_s": None, "errors": [(res.stderr or res.stdout)[-200:]]}


def run(work: Path, runs: int, quick: bool, deadline: Deadline, log=print) -> list[dict]:
    plan = QUICK if quick else FULL
    missing = {kind: why for kind, why in (("station", station_missing()),
                                            ("tftpd-hpa", None if shutil.which("in.tftpd") else "in.tftpd not installed"),
                                            ("dnsmasq", None if shutil.which("dnsmasq") else "dnsmasq not installed"))
               if why}
    kinds = [k for k in ["station", *PEERS] if k not in missing]
    timeout = 30.0 if quick else 180.0
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    notes: list[str] = [f"{k}: {why}" for k, why in missing.items()]
    if shutil.which("atftp") is None:
        notes.append("atftp not installed: the windowsize scenario is skipped")
        plan = [p for p in plan if not p[4]]
    raw: dict[str, dict[str, list]] = {name: {k: [] for k in kinds} for name, *_ in plan}
    with Lab("tf") as lab:
        lab.add("srv", SERVER)
        lab.add("cli", CLIENT)
        for address in SOURCES:
            lab.run("cli", "ip", "addr", "add", f"{address}/16", "dev", "lan0", check=True)
        files = make_files(work / "root", {size for _, size, *_ in plan})
        for run_no in range(runs):
            if not deadline.allows(60 if not quick else 10):
                notes.append(f"time budget reached after {run_no} run(s)")
                break
            for kind in kinds[run_no % len(kinds):] + kinds[:run_no % len(kinds)]:   # nobody always goes first
                server = TftpServer(lab, kind, work / "root", work)
                try:
                    server.start()
                except (RuntimeError, TimeoutError) as exc:
                    server.stop()
                    notes.append(f"run {run_no + 1}: {kind} did not start: {exc}")
                    continue
                try:
                    for name, size, count, blksize, window in plan:
                        fname, sha = files[size]
                        cpu0, user0 = server.cpu(), server.cpu("user")
                        res = fetch(lab, fname, sha, count, blksize, timeout, window)
                        res["cpu_s"], res["user_s"] = server.cpu() - cpu0, server.cpu("user") - user0
                        res["blocks"] = count * (size // blksize + 1)
                        res["bytes"] = res["good"] * size
                        raw[name][kind].append(res)
                        mbps = res["bytes"] / MIB / res["wall_s"] if res.get("wall_s") else 0
                        log(f"tftp run {run_no + 1}/{runs} {kind:9s} {name:38s} {res['good']}/{count} ok "
                            f"{mbps:7.1f} MiB/s  cpu {res['cpu_s']:.2f}s" + (f"  {res['errors'][:1]}" if res["errors"] else ""))
                finally:
                    server.stop()
    out = []
    for name, size, count, blksize, window in plan:
        sc = scenario("tftp", name, "throughput", "MiB/s", True, clients=count, file_bytes=size, blksize=blksize,
                      windowsize=window,
                      cpu_us_per_block={}, user_us_per_block={}, failures={}, notes=notes)
        for kind, results in raw[name].items():
            if not results:
                continue
            sc["results"][kind] = summary([r["bytes"] / MIB / r["wall_s"] if r.get("wall_s") and r["good"] == count
                                           else None for r in results])
            sc["cpu_us_per_block"][kind] = summary([1e6 * r["cpu_s"] / r["blocks"] for r in results])
            sc["user_us_per_block"][kind] = summary([1e6 * r["user_s"] / r["blocks"] for r in results])
            sc["failures"][kind] = sum(r["count"] - r["good"] for r in results)
        if "station" in missing:
            sc.update(status="not available", reason=missing["station"])
        errors = sorted({e for r in raw[name].get("station", []) for e in r.get("errors", [])})[:2]
        out.append(finish(sc, PEERS, f"{sc['failures'].get('station', 0)} transfers failed or mismatched"
                                     + (f" ({'; '.join(errors)})" if errors else "")))
    return out
