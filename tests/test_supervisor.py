"""`appliance run` under the shipped supervisord.conf: restarts a killed service, exits non-zero on FATAL."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from appliance import config
from appliance.store import Store
from tests.conftest import wait_for
from tests.test_api import with_firmware
from tests.test_api_server import free_tcp_port
from tests.test_dns import free_udp_port

HAVE_TFTP = importlib.util.find_spec("appliance.tftp.service") is not None


def station_env_for(base: dict, **extra: str) -> dict:
    with_firmware(base)         # without firmware the station cannot do its job and its health is 503
    return dict(os.environ, **base, APPLIANCE_API_HOST="127.0.0.1", APPLIANCE_API_PORT=str(free_tcp_port()),
                APPLIANCE_DNS_PORT=str(free_udp_port()), APPLIANCE_TFTP_PORT=str(free_udp_port()),
                APPLIANCE_TFTP_HTTP_PORT=str(free_tcp_port()), APPLIANCE_DHCP_PORT=str(free_udp_port()),
                APPLIANCE_DHCP_GUARD="off", **extra)


def run_station(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "appliance", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_station(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.stdout.read().decode(errors="replace")


def health(env: dict) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{env['APPLIANCE_API_PORT']}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
    except OSError:
        return 0, {}




def all_up(env: dict) -> bool:
    """Every expected service up (health itself may be red for other reasons, e.g. an empty library)."""
    services = [s for s in health(env)[1].get("services", []) if s.get("expected", True)]
    return bool(services) and all(s["status"] == "up" for s in services)


def service_pid(doc: dict, name: str) -> int | None:
    for s in doc.get("services", []):
        if s["name"] == name and s["status"] == "up":
            return s["pid"]
    return None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TFTP, reason="appliance.tftp.service not landed yet: the station cannot start whole")
def test_killed_tftp_is_restarted_and_health_reports_it(station_env):
    env = station_env_for(station_env)
    proc = run_station(env)
    try:
        wait_for(lambda: all_up(env), 60, "all four services up")
        old = service_pid(health(env)[1], "tftp")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: not all_up(env) or service_pid(health(env)[1], "tftp") not in (None, old), 30,
                 "health to notice")
        new = wait_for(lambda: (lambda p: p if p not in (None, old) else None)(service_pid(health(env)[1], "tftp")),
                       60, "tftp restarted with a new pid")
        assert new != old
        assert wait_for(lambda: all_up(env), 30, "every service up again")
        assert proc.poll() is None
    finally:
        out = stop_station(proc)
    assert "tftp" in out


def test_dns_killed_restarts_then_station_stops_cleanly(station_env):
    env = station_env_for(station_env, APPLIANCE_DHCP_ENABLED="false")
    proc = run_station(env)
    try:
        store = Store(config.load(environ=env).db_path)
        def dns_pid():
            return next((s["pid"] for s in store.services.all() if s["name"] == "dns"
                         and s["heartbeat"] and time.time() - s["heartbeat"] < 5), None)
        old = wait_for(dns_pid, 60, "dns heartbeat")
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: (lambda p: p if p not in (None, old) else None)(dns_pid()), 60, "dns restarted")
        assert new != old
        out = subprocess.run(["dig", "@127.0.0.1", "-p", env["APPLIANCE_DNS_PORT"], "+short", "+notcp",
                              "+time=1", "recovery"], capture_output=True, text=True, timeout=10).stdout
        assert out.split() == ["127.0.0.1"]
    finally:
        log = stop_station(proc)
    assert proc.returncode == 0 or not HAVE_TFTP, log


def test_service_that_always_fails_makes_run_exit_nonzero(station_env, tmp_path):
    """Services that fail at every start (the database is a directory) go FATAL after supervisor's retries;
    the station stops, exit 3, its last lines naming the service and its last error."""
    env = station_env_for(station_env, APPLIANCE_DHCP_ENABLED="false")
    (tmp_path / "state" / "station.db").mkdir(parents=True)
    proc = run_station(env)
    try:
        proc.wait(120)
    finally:
        log = stop_station(proc)
    assert proc.returncode == 3, log
    lines = log.strip().splitlines()
    final = lines[lines.index(next(line for line in lines if "station stopped" in line)):]
    assert all(re.search(r"ERROR +supervisor +station stopped: (dns|tftp|api) kept failing", f) for f in final), log
    assert any("its last error: OperationalError: unable to open database file" in f for f in final), log
