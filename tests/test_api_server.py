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
from tests.test_api import populate, with_firmware

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
    with_firmware(env)          # else the station cannot do its job and health answers 503
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


# -- fair shares (issue 24 item 2) -------------------------------------------------------------------------
def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _connect(base: str, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", _port(base)), timeout=30, source_address=(source, 0))


def _status(s: socket.socket) -> bytes:
    """The first line the server sends, or b"" when it closes (or resets) without one."""
    return _head(s).split(b"\r\n", 1)[0]


def _head(s: socket.socket) -> bytes:
    """What the server sends up to the end of its headers (or until it closes)."""
    out = b""
    try:
        while b"\r\n\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        pass
    return out


def _health(base: str) -> int:
    try:
        return urllib.request.urlopen(base + "/api/v1/health", timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def _shares(store: Store) -> dict:
    row = next((s for s in store.services.all() if s["name"] == "api"), None)
    return (row or {}).get("info", {}).get("shares") or {}


def test_clients_dripping_their_requests_do_not_take_the_threads(api):
    """40 unfinished requests (more than the 16 threads) from 4 addresses: health still answers; each is ended
    with 408 at the request deadline."""
    base, store = api
    before = _shares(store).get("header_timeouts", 0)
    slow = [_connect(base, f"127.0.4.{1 + i % 4}") for i in range(40)]
    try:
        for s in slow:
            s.sendall(b"GET /api/v1/phones HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(3):
            assert _health(base) in (200, 503)        # answered (503: a station service is not up in this test)
        for s in slow:
            s.sendall(b"a")                           # still dripping
        assert all(_status(s).startswith(b"HTTP/1.1 408") for s in slow)
    finally:
        for s in slow:
            s.close()
    from tests.conftest import wait_for
    wait_for(lambda: _shares(store).get("header_timeouts", 0) >= before + 40, 15, "the heartbeat to count them")


def test_one_address_holds_at_most_its_share_of_connections(api):
    from appliance.api.service import PER_ADDRESS
    base, store = api
    held = [_connect(base, "127.0.5.1") for _ in range(PER_ADDRESS)]
    try:
        for s in held:
            s.sendall(b"GET /api/v1/phones HTTP/1.1\r\nHost: x\r\n")     # unfinished: each holds its slot
        time.sleep(0.5)
        with _connect(base, "127.0.5.1") as extra:
            extra.sendall(b"GET /api/v1/phones HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(extra) == b"", "a connection over the address's share is closed at once"
        with _connect(base, "127.0.5.2") as other:
            other.sendall(b"GET /api/v1/phones HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _status(other) == b"HTTP/1.1 200 OK"
    finally:
        for s in held:
            s.close()


def test_request_too_large_is_refused_without_a_thread(api):
    base, _ = api
    with _connect(base, "127.0.6.1") as s:
        s.sendall(b"POST /api/v1/firmware/rescan HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        assert _status(s).startswith(b"HTTP/1.1 413")


def _open_stream(base: str, source: str) -> tuple[socket.socket, bytes]:
    """(the connection, the response's head) of a GET for a minute's event stream."""
    s = _connect(base, source)
    s.sendall(b"GET /api/v1/events?duration=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    return s, _head(s)


def test_event_streams_are_bounded_in_all_and_per_address_and_free_their_slot_when_the_client_goes(api):
    from appliance.api import sse
    base, store = api
    total = sse.Slots.for_threads(16).total
    streams = []
    try:
        for _ in range(sse.PER_ADDRESS):
            s, head = _open_stream(base, "127.0.7.1")
            streams.append(s)
            assert head.startswith(b"HTTP/1.1 200 OK")
        s, head = _open_stream(base, "127.0.7.1")
        head += s.recv(4096)
        s.close()
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 30" in head and b"this address" in head
        for i in range(total - sse.PER_ADDRESS):
            s, head = _open_stream(base, f"127.0.7.{10 + i}")
            streams.append(s)
            assert head.startswith(b"HTTP/1.1 200 OK")
        s, head = _open_stream(base, "127.0.7.99")
        s.close()
        assert head.startswith(b"HTTP/1.1 503"), "past the total a stream is refused"
        for _ in range(5):
            assert _health(base) in (200, 503), "health answers with every stream slot taken"
        streams.pop().close()                          # one dashboard goes away: its slot comes back
        from tests.conftest import wait_for

        def reopened() -> bool:
            s, head = _open_stream(base, "127.0.7.99")
            streams.append(s)
            return head.startswith(b"HTTP/1.1 200 OK")
        # Without noticing the hang-up the slot would come back only when a keepalive write failed (20 s).
        wait_for(reopened, 8, "the slot of a stream whose client left", every=0.5)
    finally:
        for s in streams:
            s.close()


def test_a_stream_sees_its_client_hang_up():
    from appliance.api.sse import hung_up
    a, b = socket.socketpair()
    try:
        assert not hung_up(a)
        b.sendall(b"x")                                # data waiting is not a hang-up
        assert not hung_up(a)
        b.close()
        a.recv(1)
        assert hung_up(a)
    finally:
        a.close()
    assert hung_up(None) is False
