"""20 phones fetch their files through 10% packet loss and get byte-identical copies.

Why: bench LANs drop packets (cheap switches, PoE resets).  The loss is made
by an iptables `statistic` rule inside a namespace this test creates, and the
clients are the phone model's TFTP reader (tools.phonesim.net.tftp_get, plain
RRQs as phones send them; the code `appliance simulate` uses), so both
retransmission paths - server and phone - are real.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, SHIPPED_CONFIG, needs_root, needs_tool
from tests.reliability_figures import record

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip", "iptables")]

PHONES = 20
LOSS = 0.10
FILES = {"SEP-term.cnf.xml": 3_000, "app.sbn": 60_000, "dsp.sbn": 40_000}
CLIENT = """
import hashlib, json, sys, time
from concurrent.futures import ThreadPoolExecutor
from tools.phonesim.net import tftp_get
port, names, phones = int(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
def phone(n):
    got, retried = {}, 0
    for name in names:
        for attempt in range(4):
            data, err = tftp_get("127.0.0.1", port, name, timeout=1.0, retries=6)
            if data is not None:
                got[name] = hashlib.sha256(data).hexdigest()
                break
            retried += 1
    return {"phone": n, "files": got, "restarts": retried}
with ThreadPoolExecutor(phones) as ex:
    print(json.dumps(list(ex.map(phone, range(phones)))))
"""


def _ns(ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, **kw)


def test_twenty_phones_finish_byte_identical_at_ten_percent_loss(tmp_path):
    ns = f"loss{os.getpid()}"
    root, state = tmp_path / "firmware", tmp_path / "state"
    root.mkdir()
    want = {}
    for name, size in FILES.items():
        data = os.urandom(size)
        (root / name).write_bytes(data)
        want[name] = hashlib.sha256(data).hexdigest()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = None
    try:
        _ns(ns, "ip", "link", "set", "lo", "up", check=True)
        port = 6900 + os.getpid() % 1000
        env = dict(os.environ, APPLIANCE_CONFIG=str(SHIPPED_CONFIG), APPLIANCE_NETWORK_INTERFACE="lo",
                   APPLIANCE_TFTP_ROOT=str(root), APPLIANCE_STATE_DIR=str(state), APPLIANCE_TFTP_PORT=str(port),
                   APPLIANCE_TFTP_HTTP_PORT="0", APPLIANCE_TFTP_TIMEOUT="1", APPLIANCE_TFTP_RETRIES="8",
                   APPLIANCE_TFTP_PER_CLIENT=str(3 * PHONES), PYTHONPATH=str(REPO))
        log = open(tmp_path / "tftp.log", "wb")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "appliance", "serve", "tftp"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "tftp.log").read_text()[-2000:]
            probe = _ns(ns, sys.executable, "-c", CLIENT, str(port), "SEP-term.cnf.xml", "1", cwd=REPO, env=env,
                        timeout=30)
            if probe.returncode == 0 and json.loads(probe.stdout)[0]["files"]:
                break
            time.sleep(0.3)
        _ns(ns, "iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
            "--probability", str(LOSS), "-j", "DROP", check=True)
        out = _ns(ns, sys.executable, "-c", CLIENT, str(port), ",".join(FILES), str(PHONES), cwd=REPO, env=env,
                  timeout=150)
        assert out.returncode == 0, out.stderr[-2000:]
        counters = _ns(ns, "iptables", "-L", "INPUT", "-v", "-x", "-n").stdout
        dropped = int(next(line.split()[0] for line in counters.splitlines() if "statistic" in line))
        phones = json.loads(out.stdout)
        finished = sum(1 for p in phones if p["files"] == want)
        record("loss", phones=PHONES, loss=LOSS, packets_dropped=dropped, phones_finished=finished,
               files_identical=sum(sum(1 for k, v in p["files"].items() if want.get(k) == v) for p in phones),
               client_restarts=sum(p["restarts"] for p in phones))
        assert dropped > 0
        assert finished == PHONES, [p for p in phones if p["files"] != want][:3]
        assert proc.poll() is None
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
