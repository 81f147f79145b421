"""The service skeleton every service plugs into: batch writer, poll loop, command tail, run_service."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from appliance import events as ev
from appliance.batch import BatchWriter
from appliance.service import CommandTail, PollLoop, ServiceContext, cannot_listen
from appliance.store import Store
from tests.conftest import REPO, wait_for


def test_batch_writer_writes_in_batches_and_flushes_on_stop():
    batches: list[list[int]] = []
    w = BatchWriter("t", batches.append, interval=0.05)
    w.start()
    w.add(range(3))
    w.add([3])
    wait_for(lambda: batches, 2, "the first batch")
    w.add([4, 5])
    w.stop()
    assert sum(batches, []) == [0, 1, 2, 3, 4, 5]
    assert len(batches) <= 3 and [] not in batches


def test_batch_writer_bounds_its_queue_and_reports_failed_writes():
    failures = []

    def write(items):
        raise OSError("disk full")

    w = BatchWriter("t", write, interval=10, limit=4, on_error=lambda exc, n: failures.append((str(exc), n)))
    assert w.add([1, 2, 3]) and not w.add([4, 5])
    assert w.dropped == 2
    w.flush()
    assert failures == [("disk full", 3)]
    w.requeue([7, 8, 9, 10, 11])
    assert w.dropped == 3


def test_idle_writes_call_write_with_nothing_queued():
    calls = []
    w = BatchWriter("t", calls.append, interval=10, idle_writes=True)
    w.flush()
    assert calls == [[]]


def test_poll_loop_runs_timers_and_readers_and_survives_a_failing_handler():
    stopping, errors, got, ticks = threading.Event(), [], [], []
    a, b = socket.socketpair()
    a.setblocking(False)
    loop = PollLoop(stopping, errors.append)

    def read():
        data = a.recv(100)
        if data == b"bad":
            raise ValueError("bad packet")
        got.append(data)
        if data == b"last":
            stopping.set()

    loop.add_reader(a, read)
    loop.every(0.02, ticks.append)
    th = threading.Thread(target=loop.run)
    th.start()
    for data in (b"one", b"bad", b"last"):
        b.send(data)
        time.sleep(0.05)
    th.join(5)
    assert not th.is_alive()
    assert got == [b"one", b"last"]
    assert len(errors) == 1 and "bad packet" in errors[0]
    assert len(ticks) >= 2
    a.close()
    b.close()


def test_command_tail_reads_each_command_once_and_only_new_ones(station_config):
    store = Store(station_config.db_path)
    store.events.add("api", ev.LEASE_FORGET, "001b2c3d4e5f")     # before the service started: not its
    ctx = ServiceContext("dhcp", station_config, store)
    tail = CommandTail(ctx, [ev.LEASE_FORGET])
    store.events.add("api", ev.CATALOG_RESCAN)
    store.events.add("api", ev.LEASE_FORGET, "00aabbccddee")
    assert [r["mac"] for r in tail.take()] == ["00aabbccddee"]
    assert tail.take() == []


def test_sigterm_stops_a_service_cleanly(station_env, tmp_path):
    """`appliance serve dns` on a free loopback port: heartbeat, then exit 0 on SIGTERM."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **station_env, "APPLIANCE_NETWORK_ADDRESS": "127.0.0.1", "APPLIANCE_DNS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "dns"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        store = Store(tmp_path / "state" / "station.db")
        wait_for(lambda: any(r["name"] == "dns" for r in store.services.all()), 20, "the dns heartbeat")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


HOLD = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(float(sys.argv[1]))
"""


def _holder(tmp_path, seconds: float, *words: str) -> tuple[subprocess.Popen, int]:
    """A process listening on a free loopback port for `seconds`, its (short) command line ending in `words`."""
    script = tmp_path / "hold.py"
    script.write_text(HOLD)
    proc = subprocess.Popen([sys.executable, str(script), str(seconds), *words], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def test_a_service_waits_for_its_own_predecessor_s_port_but_not_for_a_stranger_s(station_config, tmp_path):
    """A killed API's worker still closing is the same service: the successor waits for the port instead of
    stopping the station as if someone else held it.  Anyone else's holder is said at once."""
    ours, port = _holder(tmp_path, 1.5, "-m", "appliance", "serve", "api")
    try:
        t0 = time.monotonic()
        assert cannot_listen("api", station_config, "tcp", "127.0.0.1", port) is None
        assert time.monotonic() - t0 >= 0.5         # it waited for the holder to go
    finally:
        ours.kill()
        ours.wait(5)
    other, port = _holder(tmp_path, 30, "-m", "appliance", "serve", "dns")
    try:
        t0 = time.monotonic()
        assert cannot_listen("api", station_config, "tcp", "127.0.0.1", port) == 1
        assert time.monotonic() - t0 < 5
    finally:
        other.kill()
        other.wait(5)


FORKS = """
import os, sys, time
from appliance.service import die_with_parent
child = os.fork()
if child == 0:
    die_with_parent()
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


def test_a_worker_dies_with_its_parent_killed_by_sigkill():
    """die_with_parent: a forked worker does not outlive a parent killed with SIGKILL (it would hold the
    service's port against the parent's successor)."""
    parent = subprocess.Popen([sys.executable, "-c", FORKS], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait(5)

        def gone() -> bool:
            try:
                with open(f"/proc/{child}/stat") as fh:
                    return fh.read().split(") ", 1)[1].startswith("Z")
            except FileNotFoundError:
                return True
        wait_for(gone, 5, "the worker to die with its parent")
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


PID_ONE = """
import os
from appliance.service import die_with_parent
assert os.getpid() == 1, os.getpid()
child = os.fork()
if child == 0:
    die_with_parent()
    die_with_parent(1)
    print("worker alive", flush=True)
    os._exit(0)
os.waitpid(child, 0)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_a_worker_of_a_service_running_as_pid_1_lives():
    """In a container the service may be PID 1 (a kit running `serve tftp`): its workers' parent is then PID 1,
    and that must not read as an orphan (stop 29's TFTP workers exited at once, over and over, in the images)."""
    out = subprocess.run(["unshare", "--pid", "--fork", sys.executable, "-c", PID_ONE], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "worker alive", out.stdout + out.stderr
