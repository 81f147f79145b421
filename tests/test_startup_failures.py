"""Start-up failures that say what to do (issue 25 item 2), each run for real.

- a port held by a process the test starts (a Python socket, dnsmasq), with the station in a namespace of its own
  on the real ports: the service says at once who holds it and what to stop, the station stops without
  supervisor's retries, exit 3, its last line repeating the cause;
- not root (setpriv to nobody) and root without capabilities (an empty bounding set): the fix first;
- a bad value from an environment variable is blamed on that variable, from the file on the file;
- a config file in another directory: its relative paths follow the file, an environment variable's the cwd.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_root, needs_tool, wait_for

sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env  # noqa: E402

STATION = "10.78.0.1"
STAMP = r"\d\d:\d\d:\d\d"
HOLDER = ("import socket, sys, time\n"
          "kind = socket.SOCK_DGRAM if sys.argv[1] == 'udp' else socket.SOCK_STREAM\n"
          "s = socket.socket(socket.AF_INET, kind)\n"
          "s.bind(('0.0.0.0', int(sys.argv[2])))\n"
          "kind == socket.SOCK_STREAM and s.listen()\n"
          "print('bound', flush=True)\n"
          "time.sleep(120)\n")


def appliance(*args: str, env: dict, cwd: Path | str = REPO, prefix: tuple[str, ...] = (),
              timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, PYTHON, "-m", "appliance", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


# ---- a port someone else holds --------------------------------------------------------------------------------
PORT_CASES = [
    # service, proto, port, holder, what else the tech may do
    ("dhcp", "udp", 67, "python", "set [dhcp] enabled = false"),
    ("dns", "udp", 53, "dnsmasq", "set [dns] enabled = false"),
    ("api", "tcp", 8080, "python", "set [api] port to a free one"),
    ("tftp", "tcp", 6970, "python", "set [tftp] http_port = 0 (phones then fetch over TFTP)"),
    ("tftp", "udp", 69, "python", ""),          # phones need 69: nothing else to set
]


@pytest.mark.netns
@needs_root()
@needs_tool("ip", "dnsmasq", "ss")
@pytest.mark.parametrize("service,proto,port,holder,alternative", PORT_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in PORT_CASES])
def test_port_held_by_another_program_stops_the_station_at_once_naming_it(tmp_path, service, proto, port, holder,
                                                                          alternative):
    with Lab("sf") as lab:
        lab.add("srv", STATION)
        if holder == "dnsmasq":
            held = lab.popen("srv", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                             f"--listen-address={STATION}", "--bind-interfaces", f"--port={port}",
                             "--pid-file=")
            wait_for(lambda: lab.run("srv", "ss", "-lunH", f"sport = :{port}").stdout.strip(), 10, "dnsmasq bound")
        else:
            held = lab.popen("srv", PYTHON, "-c", HOLDER, proto, str(port))
            assert held.stdout.readline().strip() == "bound"
        comm = Path(f"/proc/{held.pid}/comm").read_text().strip()
        assert comm.startswith(holder)
        env = station_env(tmp_path / "state", UPGRADE_NEIGHBOURS="false", DHCP_GUARD="off")
        started = time.monotonic()
        station = lab.popen("srv", PYTHON, "-m", "appliance", "run", env=env)
        try:
            out, _ = station.communicate(timeout=90)
        finally:
            lab.kill(station)
        took = time.monotonic() - started
        lab.kill(held)
    lines = out.splitlines()
    cause = f"port {port}/{proto} is held by {comm} (pid {held.pid}): stop it (kill {held.pid})" + \
        (f" or {alternative}" if alternative else "")
    said = [line for line in lines if re.fullmatch(f"{STAMP} ERROR   {service:<10} {service} cannot start: "
                                                   + re.escape(cause), line)]
    assert len(said) == 1, out
    assert re.fullmatch(f"{STAMP} ERROR   supervisor station stopped: {service} cannot start: " + re.escape(cause),
                        lines[-1]), out
    assert station.returncode == 3, out
    # No retries: supervisor stopped the station on the first failed start.
    assert not [line for line in lines if f"{service} exited while starting" in line], out
    assert len(lines) == len(set(lines)), "a line appears twice:\n" + out
    print(f"{service}: {port}/{proto} held; station stopped after {took:.1f} s")


# ---- not root ---------------------------------------------------------------------------------------------------
@pytest.fixture
def world_readable_station():
    """A firmware dir and a state path anyone can read (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="station-", dir="/tmp"))
    try:
        base.chmod(0o755)
        (base / "firmware").mkdir(mode=0o755)
        yield clean_env(APPLIANCE_CONFIG=str(REPO / "config" / "appliance.toml"), APPLIANCE_NETWORK_INTERFACE="lo",
                        APPLIANCE_TFTP_ROOT=str(base / "firmware"), APPLIANCE_STATE_DIR=str(base / "state"))
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)


NEEDED = ("CAP_NET_BIND_SERVICE (ports below 1024: dhcp 67, tftp 69, dns 53); CAP_NET_RAW (DHCP binds to interface "
          "lo and probes addresses with ICMP); CAP_NET_ADMIN (DHCP replies to clients that have no address yet)")
COMPOSE = "in a container, add to its compose service: cap_add: [NET_BIND_SERVICE, NET_RAW, NET_ADMIN]"


@needs_root()
@needs_tool("setpriv")
def test_not_root_says_sudo_first_and_compose_second(world_readable_station):
    got = appliance("run", env=world_readable_station, cwd="/tmp",
                    prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    assert got.returncode == 4, got.stderr
    assert got.stderr.splitlines() == [
        f"appliance: the station must run as root: sudo -E make run (needed: {NEEDED})",
        f"appliance: {COMPOSE}",
    ]
    assert not Path(world_readable_station["APPLIANCE_STATE_DIR"]).exists()     # nothing started


@needs_root()
@needs_tool("setpriv")
def test_root_without_capabilities_says_compose_cap_add(world_readable_station):
    got = appliance("run", env=world_readable_station, prefix=("setpriv", "--inh-caps=-all", "--bounding-set=-all"))
    assert got.returncode == 4, got.stderr
    assert got.stderr.splitlines() == [
        f"appliance: root, but without the capabilities the station needs: {COMPOSE} (needed: {NEEDED})"]


# ---- where a bad value came from --------------------------------------------------------------------------------
def test_bad_interface_from_the_environment_names_the_variable_and_nothing_starts(station_env, tmp_path):
    env = clean_env(**{**station_env, "APPLIANCE_NETWORK_INTERFACE": "nosuch0"})
    for verb in ("check-config", "run"):
        got = appliance(verb, env=env)
        assert got.returncode == 2, got.stderr
        assert got.stderr.startswith("appliance: bad config: environment APPLIANCE_NETWORK_INTERFACE: [network] "
                                     "interface: no interface named 'nosuch0' (present: "), got.stderr
    assert not (tmp_path / "state").exists()


def test_bad_pool_from_the_environment_and_from_the_file(station_env, tmp_path):
    env = clean_env(**station_env, APPLIANCE_DHCP_POOL_START="10.9.9.9")
    got = appliance("check-config", env=env)
    assert (got.returncode, got.stderr.strip()) == (2, "appliance: bad config: environment APPLIANCE_DHCP_POOL_START: "
                                                       "[dhcp] pool_start: 10.9.9.9 is outside the interface subnet "
                                                       "127.0.0.0/8")
    site = tmp_path / "site" / "station.toml"
    site.parent.mkdir()
    site.write_text('[dhcp]\npool_start = "10.9.9.9"\n')
    got = appliance("check-config", env=clean_env(**{**station_env, "APPLIANCE_CONFIG": str(site)}))
    assert (got.returncode, got.stderr.strip()) == (2, f"appliance: bad config: {site}: [dhcp] pool_start: 10.9.9.9 "
                                                       "is outside the interface subnet 127.0.0.0/8")


def test_a_missing_firmware_dir_names_the_file_or_the_variable(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "station.toml").write_text('[network]\ninterface = "lo"\n[tftp]\nroot = "no-such-firmware"\n')
    env = clean_env(APPLIANCE_CONFIG=str(site / "station.toml"))
    got = appliance("check-config", env=env, cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr.strip() == (f"appliance: bad config: {site / 'station.toml'}: [tftp] root: directory "
                                  f"'{site / 'no-such-firmware'}' does not exist")
    got = appliance("check-config", env={**env, "APPLIANCE_TFTP_ROOT": "elsewhere"}, cwd=tmp_path)
    assert got.stderr.strip() == ("appliance: bad config: environment APPLIANCE_TFTP_ROOT: [tftp] root: directory "
                                  f"'{tmp_path / 'elsewhere'}' does not exist")


# ---- relative paths ---------------------------------------------------------------------------------------------
@needs_tool("curl")
def test_relative_paths_in_a_config_file_follow_the_file_not_the_cwd(tmp_path):
    """A config in another directory names `fw` and `var`: started from elsewhere, the file service serves
    site/fw (curl fetches a file from it over HTTP :6970) and keeps its database in site/var."""
    from tests.test_api_server import free_tcp_port
    from tests.test_dns import free_udp_port
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "fw").mkdir(parents=True)
    elsewhere.mkdir()
    (site / "fw" / "hello.txt").write_text("from site/fw\n")
    http = free_tcp_port()
    (site / "station.toml").write_text(
        f'[network]\ninterface = "lo"\n[tftp]\nroot = "fw"\nport = {free_udp_port()}\nhttp_port = {http}\n'
        '[state]\ndir = "var"\n[upgrade]\nneighbours = false\n')
    env = clean_env()
    got = appliance("--config", str(site / "station.toml"), "check-config", "--json", env=env, cwd=elsewhere)
    assert got.returncode == 0, got.stderr
    resolved = json.loads(got.stdout)
    assert (resolved["tftp"]["root"], resolved["state"]["dir"]) == (str(site / "fw"), str(site / "var"))
    # An environment variable's relative path follows the current directory.
    got = appliance("--config", str(site / "station.toml"), "check-config", "--json", cwd=elsewhere,
                    env={**env, "APPLIANCE_STATE_DIR": "here"})
    assert json.loads(got.stdout)["state"]["dir"] == str(elsewhere / "here")

    proc = subprocess.Popen([PYTHON, "-m", "appliance", "--config", str(site / "station.toml"), "serve", "tftp"],
                            cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def fetched():
            r = subprocess.run(["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{http}/hello.txt"],
                               capture_output=True, text=True)
            return r.stdout if r.returncode == 0 and r.stdout else None
        assert wait_for(fetched, 60, "the file service on HTTP :6970") == "from site/fw\n"
        assert (site / "var" / "station.db").exists()
        assert not (elsewhere / "var").exists() and not (elsewhere / "fw").exists()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
