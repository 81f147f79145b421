"""A full or read-only state dir: the file service keeps serving and the station says why.

Why: the state dir (SQLite) fills up on a small SD card, or is mounted
read-only by mistake; phones on the bench must still get their files.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import time

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


def _remount(mnt, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,bind,{mode}", str(mnt)], check=True)


def test_read_only_state_dir_keeps_serving_files_and_says_so(tmp_path, readonly_state):
    """The station ran once (database exists), then its state dir comes back read-only."""
    from appliance.firmware import synth

    src, mnt = readonly_state
    st = Station(tmp_path)
    st.env["APPLIANCE_STATE_DIR"] = str(mnt)
    st.state = mnt
    payload = os.urandom(100_000)
    (st.root / "fw.bin").write_bytes(payload)
    load = synth.write_load(st.root, "SCCP45.9-4-2SR3-3S", size_bytes=60_000, components=2)
    st.start()
    first_xml = _curl(st, "XMLDefault.cnf.xml", tmp_path / "xml-rw")
    st.stop()
    before = (src / "station.db").read_bytes()
    _remount(mnt, "ro")
    st.start()
    served = 0
    try:
        for i in range(3):
            assert _curl(st, "fw.bin", tmp_path / f"ro{i}") == payload
            served += 1
        for path in load:
            assert _curl(st, path.name, tmp_path / f"ro-{path.name}") == path.read_bytes()
            served += 1
        assert _curl(st, "XMLDefault.cnf.xml", tmp_path / "xml-ro") == first_xml
        served += 1
        http = subprocess.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{st.http_port}/{load[0].name}"],
                              capture_output=True, check=True).stdout
        assert http == load[0].read_bytes()
        served += 1
        assert st.proc.poll() is None
        log = st.logtext()
        errors = [line for line in log.splitlines() if " ERROR " in line and "state dir" in line]
        assert len(errors) == 1, log
        assert str(mnt) in errors[0] and "read-only file system" in errors[0], errors
        assert "Traceback" not in log, log
    finally:
        st.stop()
    assert (src / "station.db").read_bytes() == before
    record("state_read_only", faults=1, files_served_while_read_only=served, service_alive=True)


@pytest.mark.netns
@needs_tool("ip", "udhcpc", "nsenter")
def test_read_only_state_dir_dhcp_refuses_leases_it_cannot_store_then_resumes(tmp_path, readonly_state):
    """Issue 5: a lease is stored before its ACK; with nowhere to store it, DHCP must lease nothing.

    It stays up saying why (a crash loop would reach FATAL and `appliance run` would stop the file
    service too), and starts leasing by itself once the state dir is writable again.
    """
    from bench.dhcp_lab import PYTHON, REPO, Lab, start_station, station_env, wait_serving
    from tests.test_dhcp_netns import STATION, mac_of, udhcpc

    src, mnt = readonly_state
    log = tmp_path / "dhcp.log"
    with Lab("ro") as lab:
        lab.add("srv", STATION)
        proc = start_station(lab, "srv", mnt, log, DHCP_GUARD="off")
        wait_serving(mnt, proc)
        lab.add("c1")
        assert udhcpc(lab, "c1", tmp_path).get("ip"), log.read_text()
        lab.kill(proc)
        _remount(mnt, "ro")
        # nsenter, not `ip netns exec`: that gives the service its own mount namespace, where the later
        # remount rw (a flag change, which mount propagation does not carry) would never show.
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.members['srv']}", PYTHON, "-m", "appliance",
                                 "serve", "dhcp"], env=station_env(mnt, DHCP_GUARD="off"), cwd=str(REPO),
                                stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        lab.procs.append(proc)
        deadline = time.time() + 20
        while "refuses to serve" not in log.read_text() and time.time() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        refusal = [line for line in log.read_text().splitlines() if "refuses to serve" in line]
        assert refusal and str(mnt) in refusal[0] and "read-only file system" in refusal[0], log.read_text()
        lab.add("phone")
        mac = mac_of(lab, "phone")
        refused = udhcpc(lab, "phone", tmp_path, tries=3)
        leased_while_ro = int("ip" in refused) + int(mac in _lease_macs(src))
        assert "ip" not in refused, refused
        assert proc.poll() is None, log.read_text()
        assert mac not in _lease_macs(src)
        _remount(mnt, "rw")
        got = udhcpc(lab, "phone", tmp_path, tries=15)
        assert got.get("ip"), log.read_text()[-2000:]
        assert mac in _lease_macs(src)
        alive = proc.poll() is None
        text = log.read_text()
    assert alive and "Traceback" not in text, text
    record("state_read_only_dhcp", faults=1, clients_tried_while_read_only=1, leases_while_read_only=leased_while_ro,
           leases_after_rw=int(bool(got.get("ip"))), service_alive=alive)


def _lease_macs(state) -> set[str]:
    conn = sqlite3.connect(f"file:{state / 'station.db'}?mode=ro", uri=True, timeout=10)
    try:
        return {m for (m,) in conn.execute("SELECT mac FROM leases")}
    finally:
        conn.close()
