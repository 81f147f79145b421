"""A throw-away Ethernet segment made of network namespaces, for DHCP tests and benchmarks.

A "switch" namespace holds a bridge; every member namespace gets one veth
into it, renamed `lan0` inside.  Nothing touches the host's interfaces, and
`close()` kills only the processes this lab started (by PID) and deletes its
namespaces (which deletes their veths).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
SHIPPED_CONFIG = REPO / "config" / "appliance.toml"
IFACE = "lan0"


def sh(*cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)


class Lab:
    def __init__(self, tag: str, subnet: str = "10.77.0"):
        self.tag = f"{tag}{os.getpid()}"
        self.subnet = subnet
        self.switch = f"sw-{self.tag}"
        self.members: dict[str, str] = {}     # short name -> namespace
        self.procs: list[subprocess.Popen] = []
        self._n = 0
        sh("ip", "netns", "add", self.switch)
        sh("ip", "netns", "exec", self.switch, "ip", "link", "add", "br0", "type", "bridge", "stp_state", "0",
           "forward_delay", "0")
        sh("ip", "netns", "exec", self.switch, "ip", "link", "set", "br0", "up")

    def add(self, name: str, address: str | None = None) -> str:
        """A member namespace with `lan0` on the segment (and `address/16` if given)."""
        ns = f"{name}-{self.tag}"
        self._n += 1
        outer, inner = f"v{os.getpid() % 100000}x{self._n}", f"v{os.getpid() % 100000}y{self._n}"
        sh("ip", "netns", "add", ns)
        self.members[name] = ns
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", outer, "netns", self.switch)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "netns", "exec", self.switch, "ip", "link", "set", outer, "master", "br0", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "name", IFACE)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", IFACE, "up")
        if address:
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/16", "dev", IFACE)
        return ns

    def link(self, ns: str, ifname: str, address: str | None = None) -> None:
        """Plug an existing namespace (e.g. another lab's member) into this segment as `ifname`."""
        self._n += 1
        outer, inner = f"v{os.getpid() % 100000}x{self._n}", f"v{os.getpid() % 100000}y{self._n}"
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", outer, "netns", self.switch)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "netns", "exec", self.switch, "ip", "link", "set", outer, "master", "br0", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "name", ifname)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ifname, "up")
        if address:
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/16", "dev", ifname)

    def run(self, name: str, *cmd: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.members[name], *cmd], capture_output=True, text=True,
                              timeout=timeout, check=check)

    def popen(self, name: str, *cmd: str, env: dict | None = None, **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        proc = subprocess.Popen(["ip", "netns", "exec", self.members[name], *cmd], env=env, text=True,
                                start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 5) -> None:
        """Signal the process group this lab started for `proc` (ip netns exec execs in place)."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(wait)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc, signal.SIGKILL, wait=5)
        for ns in list(self.members.values()) + [self.switch]:
            sh("ip", "netns", "del", ns, check=False)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the station's DHCP service inside a lab namespace ------------------------------------------------
def station_env(state_dir: Path, **overrides: str) -> dict[str, str]:
    firmware = state_dir / "firmware"
    firmware.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "APPLIANCE_CONFIG": str(SHIPPED_CONFIG),
        "APPLIANCE_NETWORK_INTERFACE": IFACE,
        "APPLIANCE_TFTP_ROOT": str(firmware),
        "APPLIANCE_STATE_DIR": str(state_dir),
        "PYTHONPATH": str(REPO),
    })
    env.update({f"APPLIANCE_{k.upper()}": v for k, v in overrides.items()})
    return env


def start_station(lab: Lab, name: str, state_dir: Path, log_path: Path | None = None,
                  **overrides: str) -> subprocess.Popen:
    out = open(log_path, "a") if log_path else subprocess.DEVNULL
    return lab.popen(name, PYTHON, "-m", "appliance", "serve", "dhcp", env=station_env(state_dir, **overrides),
                     stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))


def kv(state_dir: Path, key: str):
    import json

    db = state_dir / "station.db"
    if not db.exists():
        return None
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def wait_serving(state_dir: Path, proc: subprocess.Popen, timeout: float = 20) -> dict:
    """Until the station's guard says it serves (refuse mode probes first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"DHCP service exited with {proc.returncode}")
        guard = kv(state_dir, "dhcp.guard")
        if guard and guard.get("serving"):
            return guard
        time.sleep(0.1)
    raise TimeoutError(f"DHCP service not serving after {timeout}s (guard: {kv(state_dir, 'dhcp.guard')})")
