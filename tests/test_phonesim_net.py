"""The phone model on real sockets, on loopback: a tftpy server (and an HTTP one) serving firmware
written by tools/phonesim/firmware.py, the phone's own TFTP client and web page."""
from __future__ import annotations

import json
import logging
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.request import urlopen

import pytest

from tools.phonesim import SimPhone, firmware
from tools.phonesim.net import tftp_get

tftpy = pytest.importorskip("tftpy")
logging.getLogger("tftpy").setLevel(logging.ERROR)

MAC = "001E7A650002"
SEP = f"SEP{MAC}.cnf.xml"
OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
FAST = dict(retry_s=0.3, term_retry_s=0.3, reboot_s=0.2, register_s=0.5)


def cnf(load: str) -> bytes:
    return (f"<device><loadInformation>{load}</loadInformation>"
            "<vendorConfig><webAccess>0</webAccess></vendorConfig></device>").encode()


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def station(tmp_path):
    """A TFTP server on 127.0.0.1 answering from `files` (case-insensitive, one leading '/' stripped)."""
    files: dict[str, bytes] = {}
    asked: list[str] = []
    for load in (STONE, TARGET):
        files.update({k.lower(): v for k, v in firmware.load_files(load, size=20000).items()})
    files.update({k.lower(): v for k, v in firmware.load_files(STONE, size=20000, term=True).items()
                  if k.startswith("term")})
    files[SEP.lower()] = cnf(TARGET)

    def answer(name, **_):
        asked.append(name)
        data = files.get(name.removeprefix("/").lower())
        if data is None:
            return None
        f = tempfile.TemporaryFile()      # a real file: tftpy 0.8.7 flocks whatever it serves
        f.write(data)
        f.seek(0)
        return f

    port = free_port()
    srv = tftpy.TftpServer(str(tmp_path), dyn_file_func=answer)
    th = threading.Thread(target=srv.listen, args=("127.0.0.1", port, 1), daemon=True)   # 1 s select: quick stop
    th.start()
    for _ in range(50):
        if srv.sock is not None:
            break
        time.sleep(0.05)
    yield port, files, asked
    srv.stop(now=True)
    th.join(5)


def test_plain_rrq_download_is_byte_exact(station):
    port, files, asked = station
    data, err = tftp_get("127.0.0.1", port, f"/{TARGET}.loads")
    assert err is None and data == files[f"{TARGET}.loads".lower()] and asked == [f"/{TARGET}.loads"]
    assert tftp_get("127.0.0.1", port, "ITLFile.tlv") == (None, "File not found")


def test_factory_reset_phone_takes_the_term_file_then_the_config_over_sockets(station):
    port, files, asked = station
    phone = SimPhone(MAC, "CP-7965G", OLD, factory_reset=True, capitalised=True, web_port=0, tftp_port=port, **FAST)
    out: dict = {}
    th = threading.Thread(target=lambda: out.update(phone.run(server="127.0.0.1", deadline=60, linger_s=3.0)))
    th.start()
    try:
        end = time.monotonic() + 40
        while time.monotonic() < end and not (phone.machine.settled and phone.web.running):
            time.sleep(0.05)
        assert phone.machine.settled, phone.machine.summary()
        with urlopen(f"http://127.0.0.1:{phone.web.port}/DeviceInformationX", timeout=5) as r:
            page = r.read().decode()
    finally:
        th.join(30)
    assert "<appLoadID>jar45sccp.9-4-2SR4-3.sbn</appLoadID>" in page and "<versionID>*SCCP45.9-4-2SR4-3S*</versionID>" in page
    json.dumps(out)
    assert out["end"] == "settled" and out["load"] == TARGET and out["installed"] == [STONE, TARGET]
    fetched = [f["name"] for f in out["fetched"] if f["ok"]]
    assert fetched[0] == "TERM65.DEFAULT.LOADS" and "Jar45sccp.8-5-2.sbn" in fetched and "Jar45sccp.9-4-2SR4-3.sbn" in fetched
    assert asked == [f["name"] for f in out["fetched"]]       # every request reached the server as logged
    with pytest.raises(OSError):                               # the page stops with the phone
        urlopen(f"http://127.0.0.1:{phone.web.port}/DeviceInformationX", timeout=2)


def test_auth_fail_over_sockets_keeps_lease_and_load(station):
    port, files, asked = station
    phone = SimPhone(MAC, "7965", OLD, web=False, tftp_port=port, **FAST)
    out = phone.run(server="127.0.0.1", deadline=30, max_attempts=3)
    assert out["end"] == "stuck" and out["load"] == OLD and out["boots"] == 1 and not out["installed"]
    assert [n for n in asked if not n.endswith(".tlv")] == [SEP, f"{TARGET}.loads"] * 3
    assert {r["screen"] for r in out["refused"]} == {"Auth Fail"}


class _NotHere(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        self.seen.append(self.path)
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_http_first_falls_back_to_tftp_per_file(station):
    port, files, asked = station
    files[SEP.lower()] = cnf(TARGET)
    http = HTTPServer(("127.0.0.1", 0), _NotHere)
    th = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    th.start()
    try:
        phone = SimPhone(MAC, "7965", STONE, web=False, http_first=True, tftp_port=port,
                         http_port=http.server_address[1], **FAST)
        out = phone.run(server="127.0.0.1", deadline=30)
    finally:
        http.shutdown()
        http.server_close()
    assert out["end"] == "settled" and out["load"] == TARGET
    assert _NotHere.seen == ["/" + f["name"] for f in out["fetched"] if f["via"] == "http"]
    assert [f["name"] for f in out["fetched"] if f["via"] == "tftp"] == asked


# --- in namespaces: the phone's own DHCP client against the station's DHCP service ---------------

def _netns_ready() -> str | None:
    import os
    import shutil
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and ip(8)"
    return None


@pytest.mark.netns
@pytest.mark.skipif(_netns_ready() is not None, reason=_netns_ready() or "")
def test_phones_lease_from_the_station_dhcp_and_fetch_over_tftp_in_namespaces(tmp_path):
    """`python -m tools.phonesim --interface lan0` in a phone namespace: DHCP from `appliance serve dhcp`
    (option 60/12 as a 7965, option 150 back), then TFTP from a tftpy server at the option-150 address."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from bench.dhcp_lab import PYTHON, Lab, start_station, wait_serving

    station_ip = "10.76.0.1"
    root = tmp_path / "tftp"
    for load in (STONE, TARGET):
        firmware.write_load(root, load, size=20000)
    macs = ["001e7a760001", "001e7a760002"]
    for mac in macs:
        (root / f"SEP{mac.upper()}.cnf.xml").write_bytes(cnf(TARGET))
    with Lab("ps", subnet="10.76.0") as lab:
        lab.add("srv", station_ip)
        lab.add("ph")
        state = tmp_path / "state"
        dhcp = start_station(lab, "srv", state, tmp_path / "dhcp.log", DHCP_POOL_START="10.76.1.1",
                             DHCP_POOL_END="10.76.1.50")
        wait_serving(state, dhcp)
        lab.popen("srv", PYTHON, "-c", "import sys, tftpy; tftpy.TftpServer(sys.argv[1]).listen(sys.argv[2], 69)",
                  str(root), station_ip, stdout=subprocess.DEVNULL)
        r = lab.run("ph", PYTHON, "-m", "tools.phonesim", "--interface", "lan0", "--model", "CP-7965G", "--load", STONE,
                    "--count", "2", "--first-mac", "001e7a760000", "--deadline", "60", "--reboot-seconds", "0.5",
                    "--no-web", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        out = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted(o["mac"] for o in out) == [m.upper() for m in macs]
    for o in out:
        assert o["end"] == "settled" and o["load"] == TARGET and o["installed"] == [TARGET] and o["boots"] == 2, o
        assert o["ip"].startswith("10.76.1.")
        assert [f["name"] for f in o["fetched"] if f["ok"]][:2] == [f"SEP{o['mac']}.cnf.xml", f"{TARGET}.loads"]
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"ps{__import__('os').getpid()}" not in left


def test_page_without_booting_for_poller_tests():
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    with phone.web_page() as port:
        with urlopen(f"http://127.0.0.1:{port}/DeviceInformationX", timeout=5) as r:
            assert b"<appLoadID>jar45sccp.8-5-2.sbn</appLoadID>" in r.read()
    with SimPhone(MAC, "7965", STONE, web=False).web_page() as port:
        assert port is None
