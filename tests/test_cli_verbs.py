"""`appliance leases`, `retry`, `forget` and `logs` as a tech runs them: subprocesses of the CLI over a state dir
prepared through the store's public repositories (each table written as its owner writes it)."""
from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from appliance import config
from appliance import events as ev
from appliance.dhcp.leases import Lease
from appliance.store import Store
from tests.conftest import wait_for

PHONE = "001b2c3d4e5f"
OTHER_PHONE = "00aabbccddee"
LAPTOP = "a4c3f0112233"
HOSTILE_NAME = "\x1b]0;pwned\x07evil\u202etxt.exe\x9b2J"
HOSTILE_MACS = ["\x1b[2J001b2c3d4e5f", "001b2c3d4e5f\u202e", "00:1b-2c.3d4e5f", "001b2c3d4e5f'; DROP TABLE events;--",
                "0" * 5000, ""]
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e")


def run(env, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=timeout)


def prepare(env) -> Store:
    """Two phones, a laptop with a hostile hostname; services beating; one DHCP fact on the bus."""
    store = Store(config.load(environ=env).db_path)
    now = time.time()
    for name in ("api", "dhcp", "dns", "tftp"):
        store.services.beat(name, 100)
    store.leases.save_changes([
        # phones first, each group by address as a number (10.0.0.9 before 10.0.0.11), whatever the text order
        ("upsert", (Lease(LAPTOP, "10.0.0.10", "bound", now + 600, hostname=HOSTILE_NAME,
                          vendor_class="=cmd|' /C calc'!A0", updated=now),)),
        ("upsert", (Lease(OTHER_PHONE, "10.0.0.9", "offered", now - 30, hostname=None,
                          vendor_class="Cisco Systems, Inc. IP Phone CP-7965G", updated=now),)),
        ("upsert", (Lease(PHONE, "10.0.0.11", "bound", now + 3600, hostname="SEP001B2C3D4E5F", updated=now),)),
    ])
    store.phones.upsert(PHONE, model="CP-7945G", ip="10.0.0.11", state="stuck", plan=["SCCP45.8-5-2S"], step=0)
    store.events.add("dhcp", ev.DHCP_ACK, PHONE, ip="10.0.0.11")
    return store


def commands(store: Store, kind: str) -> list:
    rows, _ = store.events.commands_after(0, [kind])
    return rows


def test_leases_phones_first_with_header_cleaned_and_json(station_env):
    prepare(station_env)
    out = run(station_env, "leases")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["MAC", "ADDRESS", "STATE", "EXPIRES", "MODEL", "/", "VENDOR", "CLASS", "HOSTNAME"]
    assert [line.split()[0] for line in lines[1:4]] == [OTHER_PHONE, PHONE, LAPTOP]
    other, phone, laptop = lines[1:4]
    assert "10.0.0.11" in phone and "bound" in phone and re.search(r" in \d+m ", phone) and "CP-7945G" in phone
    assert "SEP001B2C3D4E5F" in phone
    assert "offered" in other and re.search(r" \d+s ago ", other) and "CP-7965G" in other     # model from option 60
    assert "?]0;pwned?evil?txt.exe?2J" in laptop and "=cmd|" in laptop
    assert lines[4] == "3 lease(s): 2 phone(s), 1 other device(s)"
    assert not any(ch in out.stdout for ch in UNSAFE)

    out = run(station_env, "leases", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["leases"]
    assert [(r["mac"], r["phone"]) for r in rows] == [(OTHER_PHONE, True), (PHONE, True), (LAPTOP, False)]
    assert rows[0]["model"] == "CP-7965G" and rows[1]["model"] == "CP-7945G" and rows[2]["model"] is None
    assert rows[0]["expires_in"] < 0 and rows[1]["expires_in"] > 3500
    assert rows[2]["hostname"] == "?]0;pwned?evil?txt.exe?2J"


def test_retry_and_forget_append_the_commands_their_owners_execute(station_env):
    store = prepare(station_env)
    out = run(station_env, "retry", "00:1B:2C:3D:4E:5F")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"queued: retry {PHONE}.") and "within a second" in out.stdout
    assert "note:" not in out.stdout                        # the file service is beating
    (cmd,) = commands(store, ev.PHONE_RETRY)
    assert cmd["mac"] == PHONE and cmd["data"]["by"] == "station shell"

    out = run(station_env, "forget", "001b.2c3d.4e5f")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"queued: forget the lease of {PHONE} (10.0.0.11).")
    (cmd,) = commands(store, ev.LEASE_FORGET)
    assert cmd["mac"] == PHONE
    assert store.leases.of(PHONE) is not None              # DHCP, the owner, deletes it; the CLI only asked

    # unknown: said so, nothing queued
    out = run(station_env, "retry", LAPTOP)
    assert out.returncode == 1 and f"no phone {LAPTOP}" in out.stderr and "appliance status" in out.stderr
    out = run(station_env, "forget", "0011223344ff")
    assert out.returncode == 1 and "no lease for 0011223344ff" in out.stderr
    assert len(commands(store, ev.PHONE_RETRY)) == 1 and len(commands(store, ev.LEASE_FORGET)) == 1


def test_forget_says_when_dhcp_is_not_running(station_env):
    store = prepare(station_env)
    with store._db.transaction() as conn:                  # DHCP stopped beating a minute ago
        conn.execute("UPDATE services SET heartbeat = heartbeat - 60 WHERE name = 'dhcp'")
    out = run(station_env, "forget", PHONE)
    assert out.returncode == 0, out.stderr
    assert "note: the dhcp service is stale" in out.stdout


@pytest.mark.parametrize("verb", ["retry", "forget"])
def test_a_hostile_mac_is_a_named_error(station_env, verb):
    store = prepare(station_env)
    before = store.events.last_id()
    for mac in HOSTILE_MACS:
        out = run(station_env, verb, mac)
        assert out.returncode == 2, (mac, out.stderr)
        assert out.stderr.startswith("appliance: not a MAC address: ") and "001b2c3d4e5f, 00:1b" in out.stderr
        assert "Traceback" not in out.stderr and not any(ch in out.stderr for ch in UNSAFE)
        assert len(out.stderr) < 400
    assert store.events.last_id() == before


def _read_only(state_dir: str, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run the CLI with the state dir unwritable: a read-only bind mount in a private mount namespace as root
    (root ignores permission bits), the permission bits otherwise."""
    cmd = [sys.executable, "-m", "appliance", *argv]
    if os.geteuid() == 0:
        if not shutil.which("unshare"):
            pytest.skip("needs unshare (util-linux) to make a read-only mount")
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", state_dir, *cmd]
        return subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True, timeout=60)
    os.chmod(state_dir, 0o555)
    try:
        return subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(state_dir, 0o755)


@pytest.mark.parametrize("verb", ["retry", "forget"])
def test_an_unwritable_state_dir_is_refused_clearly(station_env, verb):
    store = prepare(station_env)
    before = store.events.last_id()
    store.close()
    out = _read_only(station_env["APPLIANCE_STATE_DIR"], [verb, PHONE], station_env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cannot queue the command" in out.stderr and "is not writable" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert Store(store.path).events.last_id() == before


def test_logs_latest_lines_cleaned_and_bad_options(station_env):
    store = prepare(station_env)
    store.events.add("tftp", ev.FILE_REQUEST, PHONE, ip="10.0.0.11", file=HOSTILE_NAME, proto="tftp")
    store.events.add("tracker", ev.PHONE_STATE, PHONE, state="stuck", step=0, steps=1, diagnosis="no answer")
    out = run(station_env, "logs", "-n", "2")
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert "file.request" in first and PHONE in first and "file=?]0;pwned?evil?txt.exe?2J proto=tftp" in first
    assert "phone.state" in second and 'diagnosis="no answer"' in second and "state=stuck" in second
    assert not any(ch in out.stdout for ch in UNSAFE)
    everything = run(station_env, "logs", "-n", "100").stdout.splitlines()
    assert len(everything) == 3 and "dhcp.ack" in everything[0]
    assert run(station_env, "logs", "--mac", OTHER_PHONE).stderr.strip() == f"no events yet for {OTHER_PHONE}"

    assert run(station_env, "logs", "-n", "-1").returncode == 2
    bad = run(station_env, "logs", "--mac", HOSTILE_MACS[0])
    assert bad.returncode == 2 and "not a MAC address" in bad.stderr and "\x1b" not in bad.stderr


def _read_until(proc: subprocess.Popen, want: str, deadline: float) -> str:
    """Lines from the process's stdout until one contains `want`; fails at the deadline (the test's bound)."""
    seen = ""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if want in line:
                return seen
    raise AssertionError(f"{want!r} never printed; got {seen!r}")


def test_logs_follow_prints_new_events_until_interrupted(station_env):
    store = prepare(station_env)
    # As from a terminal: SIGINT at its default even when this test runs as a background job (which ignores it)
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "logs", "-f", "-n", "1", "--mac", PHONE],
                            env=dict(os.environ, **station_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        assert "dhcp.ack" in _read_until(proc, "dhcp.ack", deadline)
        store.events.add("dhcp", ev.DHCP_ACK, LAPTOP, ip="10.0.0.10")            # another MAC: not shown
        store.events.add("tftp", ev.FILE_DONE, PHONE, ip="10.0.0.11", file=HOSTILE_NAME, result="complete")
        line = _read_until(proc, "file.done", deadline)
        assert LAPTOP not in line and "?]0;pwned?evil?txt.exe?2J" in line and "\x1b" not in line
        proc.send_signal(signal.SIGINT)                                          # Ctrl-C, by PID
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_retry_is_executed_by_a_running_file_service(tmp_path):
    """End to end: `appliance serve tftp` runs the hub; `appliance retry` queues; the hub restarts the phone's plan
    and records who asked in its note."""
    from tests.test_tftp_service import Station

    station = Station(tmp_path)
    env = {k: v for k, v in station.env.items() if k.startswith("APPLIANCE_")}
    store = Store(config.load(environ=env).db_path)
    store.phones.upsert(PHONE, model="CP-7945G", ip="10.0.0.11", state="stuck", plan=["SCCP45.8-5-2S"], step=0,
                        diagnosis="it refused SCCP45.8-5-2S")
    station.start()
    try:
        out = run(env, "retry", PHONE)
        assert out.returncode == 0, out.stderr
        assert "note:" not in out.stdout, out.stdout            # the file service beats: nothing to warn about
        wait_for(lambda: (store.phones.get(PHONE) or {}).get("state") == "seen", 20,
                 "the file service to restart the phone's plan: " + station.logtext())
        logged = run(env, "logs", "--mac", PHONE).stdout
        assert 'cli     phone.retry' in logged and 'detail="plan restarted on request (station shell)"' in logged
    finally:
        station.stop()
        station.log.close()


def test_forget_is_executed_by_the_lease_book(station_env):
    """The LEASE_FORGET the CLI appends is the one DHCP's lease book executes: the address is freed, the row goes."""
    from appliance.dhcp.leases import LeaseBook

    store = prepare(station_env)
    book = LeaseBook("10.0.0.2", "10.0.0.50")
    book.load(*store.leases.book())
    assert run(station_env, "forget", PHONE).returncode == 0
    (command,) = commands(store, ev.LEASE_FORGET)
    assert book.drop(command["mac"]) == "10.0.0.11"
    store.leases.save_changes(book.take_pending())
    assert store.leases.of(PHONE) is None and store.leases.of(LAPTOP) is not None


def test_output_piped_into_a_reader_that_leaves_early_is_no_traceback(station_env):
    """`appliance report | head`: the reader closing the pipe is not an error (no traceback on stderr)."""
    store = prepare(station_env)
    for i in range(2000):                      # a report far larger than a pipe's buffer
        store.phones.upsert(f"00aabbcc{i:04x}", model="CP-7965G", state="done", current_load="SCCP45.9-4-2SR4-3S")
    r = subprocess.run(f"{shlex.quote(sys.executable)} -m appliance report --format json | head -c 10",
                       shell=True, env=dict(os.environ, **station_env), capture_output=True, text=True, timeout=60)
    assert len(r.stdout) == 10 and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr[-2000:]
