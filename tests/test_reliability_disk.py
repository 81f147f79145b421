"""A full or read-only state dir: the file service keeps serving and the station says why.

Why: the state dir (SQLite) fills up on a small SD card, or is mounted
read-only by mistake; phones on the bench must still get their files.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import needs_root, needs_tool
from tests.reliability_figures import record
from tests.test_tftp_service import Station

pytestmark = [needs_root(), needs_tool("curl", "mount", "umount")]


def _curl(st: Station, name: str, out) -> bytes:
    subprocess.run(["curl", "-sS", "--max-time", "20", "-o", str(out), f"tftp://127.0.0.1:{st.port}/{name}"],
                   check=True)
    return out.read_bytes()


@pytest.fixture
def tiny_state(tmp_path):
    mnt = tmp_path / "state"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _health(base, st: Station) -> str:
    env = dict(st.env, APPLIANCE_API_HOST="127.0.0.1")
    out = subprocess.run([os.sys.executable, "-m", "appliance", "status", "--json"], env=env, cwd=base,
                         capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def test_full_state_disk_keeps_serving_files_and_reports_it(tmp_path, tiny_state):
    st = Station(tmp_path)
    st.env["APPLIANCE_STATE_DIR"] = str(tiny_state)
    st.state = tiny_state
    payload = os.urandom(200_000)
    (st.root / "fw.bin").write_bytes(payload)
    st.start()
    try:
        filler = tiny_state / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        served = 0
        for i in range(5):
            assert _curl(st, "fw.bin", tmp_path / f"out{i}") == payload
            served += 1
        assert st.proc.poll() is None
        log = st.logtext().lower()
        assert "full" in log or "no space" in log or "disk" in log, st.logtext()
    finally:
        st.stop()
    record("disk_full", faults=1, files_served_while_full=served, service_alive=True)


@pytest.fixture
def readonly_state(tmp_path):
    src, mnt = tmp_path / "state-src", tmp_path / "state-ro"
    src.mkdir()
    mnt.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(mnt)], check=True)
    yield src, mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.xfail(strict=True, reason="found here: `serve tftp` exits 1 at start with sqlite3.OperationalError "
                                       "'unable to open database file' (Store() runs PRAGMA journal_mode=WAL + migrate "
                                       "in ServiceContext) instead of serving files and reporting the read-only state dir")
def test_read_only_state_dir_keeps_serving_files_and_says_so(tmp_path, readonly_state):
    """The station ran once (database exists), then its state dir comes back read-only."""
    src, mnt = readonly_state
    st = Station(tmp_path)
    st.env["APPLIANCE_STATE_DIR"] = str(mnt)
    st.state = mnt
    payload = os.urandom(100_000)
    (st.root / "fw.bin").write_bytes(payload)
    st.start()
    st.stop()
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
    st.start()
    try:
        for i in range(3):
            assert _curl(st, "fw.bin", tmp_path / f"ro{i}") == payload
        assert st.proc.poll() is None
        log = st.logtext().lower()
        assert "read-only" in log or "readonly" in log, st.logtext()
    finally:
        st.stop()
    record("state_read_only", faults=1, files_served_while_read_only=3, service_alive=True)
