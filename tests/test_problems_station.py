"""Red when the station cannot do its job, in all four places at once, and green again once fixed (issue 25 item 1).

A whole station (`appliance run`: supervisord, dhcp, tftp, dns, api) runs in a namespace of a lab segment
(bench/dhcp_lab.py).  For each row of appliance/problems.py the test makes the fault, then reads the four
places a tech or a machine looks: /api/v1/health (curl, its `problems` and `ok`), `appliance status` (exit
code and words), the container healthcheck (`python -m appliance.api.healthcheck`, exit code and words) and
the station's log (the start-up warning of `appliance run`, or the API's watch for what appears later).
Then it fixes the fault the way a tech would (copies firmware in, replugs the cable, stops the other DHCP
server, frees a lease, lets a service run again) and reads them green.

The clients are real: busybox udhcpc, dnsmasq as the other DHCP server, and tools/phonesim's factory-reset
7965 (the independent phone model) so the station has seen a model.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_for

REPO = Path(__file__).resolve().parent.parent
from bench.dhcp_lab import PYTHON, Lab, station_env  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip", "curl", "busybox")]

SUBNET = "10.74.0"
STATION = f"{SUBNET}.1"
STONE, TARGET, OLD_7940 = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "P00308010200"
FIRST_MAC = "001e7a740000"


class Bench:
    """One station in namespace `srv`, its log, and the four places to read."""

    def __init__(self, lab: Lab, tmp: Path, **overrides: str):
        self.lab, self.tmp = lab, tmp
        self.state = tmp / "state"
        self.firmware = self.state / "firmware"
        self.env = station_env(self.state, **{"DHCP_POOL_START": f"{SUBNET}.100", "DHCP_POOL_END": f"{SUBNET}.150",
                                              **overrides})
        self.log_path = tmp / "station.log"
        self.run: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.run = self.lab.popen("srv", PYTHON, "-m", "appliance", "run", env=self.env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=str(REPO))

    def stop(self) -> None:
        from tests.test_dashboard_station import stop_station

        if self.run is not None:
            stop_station(self.run, self.state)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> tuple[str, dict]:
        """(HTTP status, body) of /api/v1/health; three tries, as a loaded machine may drop one."""
        code, doc = "", {}
        for _ in range(3):
            out = self.lab.run("srv", "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                               f"http://{STATION}:8080/api/v1/health", timeout=15).stdout
            body, _, code = out.rpartition("\n")
            try:
                doc = json.loads(body)
                break
            except ValueError:
                time.sleep(1)
        return code, doc

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.lab.members["srv"], PYTHON, "-m", *args],
                              env=self.env, capture_output=True, text=True, timeout=60, cwd=str(REPO))

    def red(self) -> list[str]:
        return [p["code"] for p in self.health()[1].get("problems", []) if p["severity"] == "red"]

    def wait_red(self, code: str, timeout: float) -> dict:
        """Until health lists `code` red; then the problem."""
        def found():
            doc = self.health()[1]
            return next((p for p in doc.get("problems", []) if p["code"] == code and p["severity"] == "red"), None)
        return wait_for(found, timeout, f"{code} red in /api/v1/health", every=1)

    def assert_red_everywhere(self, code: str, words: str, timeout: float = 40) -> None:
        """`code` red in health (503, ok false), status (exit 1, its words), healthcheck (exit 1, its words),
        and said in the log with `words`."""
        problem = self.wait_red(code, timeout)
        assert words in problem["what"], problem
        http, doc = self.health()
        assert http == "503" and doc["ok"] is False, (http, doc.get("problems"))
        status = self.cli("appliance", "status")
        assert status.returncode == 1, status.stdout + status.stderr
        assert "CANNOT DO ITS JOB" in status.stdout and words in status.stdout, status.stdout
        assert "do: " in status.stdout
        check = self.cli("appliance.api.healthcheck")
        assert check.returncode == 1 and "unhealthy" in check.stdout and words in check.stdout, check.stdout
        wait_for(lambda: any(words in line for line in self.log().splitlines()
                             if "WARNING" in line and "station cannot do its job" in line),
                 30, f"a WARNING with {words!r} in the station's log", every=1)

    def assert_green_everywhere(self, gone: str, timeout: float = 60) -> None:
        """`gone` no longer listed, no red problem at all: 200, status 0, healthcheck 0."""
        wait_for(lambda: (lambda h: h[0] == "200" and h[1].get("ok") and gone not in
                          [p["code"] for p in h[1].get("problems", [])])(self.health()),
                 timeout, f"health green without {gone}", every=1)
        status = self.cli("appliance", "status")
        assert status.returncode == 0 and status.stdout.startswith("station OK"), status.stdout + status.stderr
        check = self.cli("appliance.api.healthcheck")
        assert check.returncode == 0 and check.stdout.strip() == "healthy", check.stdout


def station_peer(lab: Lab) -> str:
    """The switch-side end of the station's cable (Lab names it v<pid>x<n>; the station is added first)."""
    return f"v{os.getpid() % 100000}x1"


def cable(lab: Lab, plugged: bool) -> None:
    subprocess.run(["ip", "-n", lab.switch, "link", "set", station_peer(lab), "up" if plugged else "down"],
                   check=True, timeout=10)


def write_load(root: Path, load: str, term: bool = False) -> None:
    from appliance.firmware import synth

    synth.write_load(root, load, size_bytes=20000, components=2, term=term)


def phone(lab: Lab, tmp: Path) -> subprocess.Popen:
    """A factory-reset 7965 (tools/phonesim): it leases with option 60 and asks term65.default.loads."""
    return lab.popen("ph", PYTHON, "-m", "tools.phonesim", "--interface", "lan0", "--model", "CP-7965G",
                     "--factory-reset", "--first-mac", FIRST_MAC, "--no-web", "--reboot-seconds", "2",
                     "--deadline", "150", stdout=open(tmp / "phone.jsonl", "w"), stderr=subprocess.STDOUT,
                     cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})


def test_firmware_link_and_model_rows_red_everywhere_then_green(tmp_path):
    """Empty library and unplugged cable at start-up; then a 7965 seen with no load for it, then with loads but
    no term file a factory-reset one can start from; each fixed in turn."""
    with Lab("pb", subnet=SUBNET) as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        bench = Bench(lab, tmp_path, DHCP_GUARD_INTERVAL="10")
        cable(lab, plugged=False)
        bench.start()
        try:
            # -- start-up: both said before any service runs
            wait_for(lambda: "DHCP on lan0" in bench.log(), 60, "the services started")
            lines = bench.log().splitlines()
            # what `appliance run` said before any service (or supervisord) wrote a line
            startup = "\n".join(lines[:next(i for i, line in enumerate(lines) if " station " not in line[:30])])
            assert re.search(r"WARNING .*station cannot do its job: The firmware folder .* holds no phone "
                             r"firmware.*To fix: Copy", startup), startup
            assert re.search(r"WARNING .*station cannot do its job: The network interface lan0 has no link", startup)
            assert startup.count("station cannot do its job") == 2, startup
            bench.assert_red_everywhere("no-firmware", "holds no phone firmware")
            bench.assert_red_everywhere("link-down", "lan0 has no link")
            # the guard cannot probe an unplugged cable: never "clear", and no address is offered
            wait_for(lambda: "could not check lan0 for another DHCP server" in bench.log(), 30, "the guard's words")
            assert "no other DHCP server on lan0 (clear)" not in bench.log()
            guard = bench.health()[1]["guard"]
            assert guard["status"] == "unknown" and "no link" in (guard["not_probed"] or "") and not guard["serving"]

            # -- the cable goes back in: link-down is fixed, the guard probes and clears
            cable(lab, plugged=True)
            wait_for(lambda: "link-down" not in [p["code"] for p in bench.health()[1].get("problems", [])], 30,
                     "link-down gone")
            wait_for(lambda: bench.health()[1]["guard"]["status"] == "clear", 40, "the guard clear after a probe")
            wait_for(lambda: "fixed: The network interface lan0 has no link" in bench.log(), 30, "the fix logged")
            assert bench.red() == ["no-firmware"], bench.red()

            # -- a 7940 load only: the library is no longer empty, but a 7965 is then seen with nothing for it
            write_load(bench.firmware, OLD_7940)
            bench.assert_green_everywhere("no-firmware")
            ph = phone(lab, tmp_path)
            bench.assert_red_everywhere("no-target:CP-7965G", "no complete load for the CP-7965G")

            # -- its loads, loose, without the term file a factory-reset 7965 asks first
            write_load(bench.firmware, STONE)
            write_load(bench.firmware, TARGET)
            bench.assert_red_everywhere("no-start-for-factory-reset:CP-7965G", "asks for term65.default.loads")
            assert "no-target:CP-7965G" not in bench.red()

            # -- the stone's package brings its term files: a reset 7965 can start, nothing is red
            write_load(bench.firmware, STONE, term=True)
            bench.assert_green_everywhere("no-start-for-factory-reset:CP-7965G")
            wait_for(lambda: "fixed: A factory-reset CP-7965G" in bench.log(), 30, "the fix logged")
            lab.kill(ph)
        finally:
            bench.stop()
        assert "Traceback" not in bench.log(), bench.log()[-3000:]


@needs_tool("dnsmasq")
def test_dhcp_and_service_rows_red_everywhere_then_green(tmp_path):
    """Another DHCP server on the segment; then a pool a laptop fills; then a service that stops answering."""
    with Lab("pc", subnet=SUBNET) as lab:
        lab.add("srv", STATION)
        lab.add("rogue", f"{SUBNET[:-2]}.5.1")
        lab.add("cli")
        rogue = lab.popen("rogue", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
                          "--interface=lan0", "--bind-interfaces", "--user=root",
                          f"--dhcp-range={SUBNET[:-2]}.5.10,{SUBNET[:-2]}.5.60,255.255.0.0",
                          f"--dhcp-leasefile={tmp_path / 'rogue.leases'}", f"--pid-file={tmp_path / 'rogue.pid'}",
                          stdout=open(tmp_path / "dnsmasq.log", "w"), stderr=subprocess.STDOUT)
        time.sleep(0.5)
        assert rogue.poll() is None, "dnsmasq did not start"
        # One address: a single laptop exhausts it.  dnsmasq pings 3 s on every DISCOVER: probe every 8 s.
        bench = Bench(lab, tmp_path, DHCP_GUARD_INTERVAL="8", DHCP_POOL_START=f"{SUBNET}.100",
                      DHCP_POOL_END=f"{SUBNET}.100")
        for load in (STONE, TARGET):
            write_load(bench.firmware, load, term=(load == STONE))
        bench.start()
        try:
            other = f"{SUBNET[:-2]}.5.1"
            bench.assert_red_everywhere("dhcp-guard-blocked", f"Another DHCP server ({other}) answers on lan0",
                                        timeout=60)
            problem = next(p for p in bench.health()[1]["problems"] if p["code"] == "dhcp-guard-blocked")
            assert "switch of their own" in problem["do"] and other in problem["do"]
            assert f"another DHCP server answers on lan0: {other}" in bench.log()     # DHCP's own words too

            # -- the other server is switched off: the next probe goes unanswered
            lab.kill(rogue)
            bench.assert_green_everywhere("dhcp-guard-blocked", timeout=60)
            wait_for(lambda: "fixed: Another DHCP server" in bench.log(), 30, "the fix logged")

            # -- a laptop takes the pool's only address
            got = udhcpc(lab, "cli", tmp_path)
            assert got.get("ip") == f"{SUBNET}.100", got
            bench.assert_red_everywhere("pool-exhausted", "no free address for a new phone")
            mac = lab.run("cli", "cat", "/sys/class/net/lan0/address").stdout.strip()
            forget = bench.cli("appliance", "forget", mac)
            assert forget.returncode == 0, forget.stdout + forget.stderr
            bench.assert_green_everywhere("pool-exhausted")

            # -- the DNS service stops answering (frozen: no heartbeat, supervisord sees nothing wrong)
            dns = next(s for s in bench.health()[1]["services"] if s["name"] == "dns")
            os.kill(dns["pid"], signal.SIGSTOP)
            try:
                bench.assert_red_everywhere("service-down:dns", "The dns service is not answering")
            finally:
                os.kill(dns["pid"], signal.SIGCONT)
            bench.assert_green_everywhere("service-down:dns")
            wait_for(lambda: "fixed: The dns service" in bench.log(), 30, "the fix logged")
        finally:
            bench.stop()
        assert "Traceback" not in bench.log(), bench.log()[-3000:]


UDHCPC_SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip" >> "{out}"\nexit 0\n'


def udhcpc(lab: Lab, name: str, tmp: Path) -> dict:
    out = tmp / f"udhcpc-{name}.out"
    script = tmp / f"udhcpc-{name}.sh"
    script.write_text(UDHCPC_SCRIPT.format(out=out))
    script.chmod(0o755)
    lab.run(name, "busybox", "udhcpc", "-i", "lan0", "-f", "-q", "-n", "-t", "6", "-T", "2", "-s", str(script),
            timeout=60)
    match = re.search(r"BOUND ip=(\S+)", out.read_text() if out.exists() else "")
    return {"ip": match.group(1)} if match else {}

