"""API writes under hostile callers, against the real gunicorn service with curl.

Why: the API is reachable by anything on the bench LAN; a write (retry, forget
a lease, rescan) must need the exact token, and nothing a phone sends about
itself may run as script in the dashboard.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from appliance import config
from appliance.store import Store
from tests.conftest import needs_tool
from tests.reliability_figures import record
from tests.test_api import populate
from tests.test_api_server import start_api, stop

TOKEN = "s3cret-token"
WRITES = [("POST", "/api/v1/phones/001b2c3d4e5f/retry"), ("DELETE", "/api/v1/leases/001b2c3d4e5f"),
          ("POST", "/api/v1/firmware/rescan")]
BAD_AUTH = [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN.upper()}", f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"bearer{TOKEN}", TOKEN, f"Bearer {TOKEN}\u00e9".encode().decode("latin-1")]


def _env(tmp: Path, token: str) -> dict[str, str]:
    (tmp / "firmware").mkdir(exist_ok=True)
    return {"APPLIANCE_CONFIG": str(Path(__file__).resolve().parent.parent / "config" / "appliance.toml"),
            "APPLIANCE_NETWORK_INTERFACE": "lo", "APPLIANCE_TFTP_ROOT": str(tmp / "firmware"),
            "APPLIANCE_STATE_DIR": str(tmp / "state"), "APPLIANCE_API_TOKEN": token}


def _curl(method: str, url: str, auth: str | None) -> tuple[int, bytes]:
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", "10", url]
    if auth is not None:
        cmd[1:1] = ["-H", f"Authorization: {auth}"]
    out = subprocess.run(cmd, capture_output=True, timeout=20).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code), body


def _state(store: Store) -> tuple:
    leases = store.leases.all()
    writes = [e for e in store.events.after(0, limit=100_000) if e["source"] == "api"]
    return len(leases), len(writes)


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    env = _env(tmp_path_factory.mktemp("relapi"), TOKEN)
    store = Store(config.load(environ=env).db_path)
    populate(store)
    proc, base = start_api(env)
    yield base, store
    stop(proc)


@needs_tool("curl")
def test_writes_refuse_missing_and_wrong_tokens(station):
    base, store = station
    before = _state(store)
    tried = 0
    for method, path in WRITES:
        for auth in BAD_AUTH:
            code, body = _curl(method, base + path, auth)
            assert code in (401, 403), (method, path, auth, code, body[:200])
            tried += 1
    assert _state(store) == before, "a refused write changed the store"
    code, _ = _curl("POST", base + "/api/v1/firmware/rescan", f"Bearer {TOKEN}")
    assert code in (200, 202), code
    record("api_auth", refused_writes=tried, state_changed=0)


@needs_tool("curl")
def test_writes_are_off_without_a_configured_token(tmp_path):
    env = _env(tmp_path, "")
    populate(Store(config.load(environ=env).db_path))
    proc, base = start_api(env)
    try:
        for method, path in WRITES:
            for auth in ("Bearer ", "Bearer anything", None):
                code, _ = _curl(method, base + path, auth)
                assert code == 403, (method, path, auth, code)
    finally:
        stop(proc)


@needs_tool("curl")
def test_hostile_host_name_is_data_in_json_and_never_markup_in_html(station):
    base, _ = station
    code, body = _curl("GET", base + "/api/v1/phones", None)
    assert code == 200
    phones = json.loads(body)["phones"]
    assert any(p.get("hostname") == "<script>alert(1)</script>" for p in phones)
    code, page = _curl("GET", base + "/", None)
    assert b"<script>alert(1)</script>" not in page
