"""The API served by real gunicorn: curl, the SSE stream, and schemathesis against the OpenAPI document."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from appliance import config
from appliance.store import Store
from tests.conftest import needs_tool
from tests.test_api import populate

SPEC = Path(__file__).resolve().parent.parent / "appliance" / "api" / "openapi.json"
schema = schemathesis.openapi.from_path(str(SPEC))


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_tcp_port()
    env = dict(os.environ, **env, APPLIANCE_API_HOST="127.0.0.1", APPLIANCE_API_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "api"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            urllib.request.urlopen(base + "/api/v1/phones", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("api did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "firmware").mkdir()
    env = {"APPLIANCE_CONFIG": str(Path(__file__).resolve().parent.parent / "config" / "appliance.toml"),
           "APPLIANCE_NETWORK_INTERFACE": "lo", "APPLIANCE_TFTP_ROOT": str(tmp / "firmware"),
           "APPLIANCE_STATE_DIR": str(tmp / "state"), "APPLIANCE_API_TOKEN": "tok"}
    store = Store(config.load(environ=env).db_path)
    populate(store)
    proc, base = start_api(env)
    yield base, store
    stop(proc)


@needs_tool("curl")
def test_curl_health_reports_api_heartbeat(api):
    base, store = api
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/api/v1/health"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out in ("200", "503")
    api_row = next(s for s in store.services.all() if s["name"] == "api")
    assert api_row["info"].get("bind", "").startswith("127.0.0.1:")


@needs_tool("curl")
def test_sse_with_curl_is_bounded_and_delivers_new_events(api):
    base, store = api
    proc = subprocess.Popen(["curl", "-sN", "--max-time", "20", base + "/api/v1/events?duration=3"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    store.events.add("tracker", "phone.state", "001b2c3d4e5f", state="rebooting")
    out, _ = proc.communicate(timeout=25)
    assert proc.returncode == 0, "stream must end by itself (bounded), not by curl's --max-time"
    assert "event: phone.state" in out and '"rebooting"' in out


def test_many_open_streams_do_not_starve_requests(api):
    base, _ = api
    streams = [subprocess.Popen(["curl", "-sN", "--max-time", "15", base + "/api/v1/events?duration=8"],
                                stdout=subprocess.DEVNULL) for _ in range(6)]
    try:
        time.sleep(0.5)
        for _ in range(5):
            assert urllib.request.urlopen(base + "/api/v1/phones", timeout=5).status == 200
    finally:
        for p in streams:
            p.kill()
            p.wait()


@pytest.fixture
def base_url(api):
    return api[0]


@schema.exclude(path="/api/v1/events").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_failures(case, base_url):
    case.call_and_validate(base_url=base_url, timeout=10)


def test_schemathesis_events_short_streams(base_url):
    op = schema["/api/v1/events"]["GET"]
    for params in ({"duration": 0}, {"duration": 1, "after": -5}, {"after": 0, "duration": 0}):
        case = op.Case(query=params)
        case.call_and_validate(base_url=base_url, timeout=10)
