"""`appliance serve tftp` on loopback against real clients: curl, tftp-hpa, atftp, tftpy; and hostile packets."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.recovery.facts import Lease
from appliance.recovery.hub import FactSender
from tests.conftest import REPO, SHIPPED_CONFIG, needs_tool

MIB = 1 << 20


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Station:
    def __init__(self, base: Path, **overrides: str):
        self.base = base
        self.root = base / "firmware"
        self.state = base / "state"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.http_port = free_port(socket.SOCK_STREAM)
        self.env = {**os.environ, "APPLIANCE_CONFIG": str(SHIPPED_CONFIG), "APPLIANCE_NETWORK_INTERFACE": "lo",
                    "APPLIANCE_TFTP_ROOT": str(self.root), "APPLIANCE_STATE_DIR": str(self.state),
                    "APPLIANCE_TFTP_PORT": str(self.port), "APPLIANCE_TFTP_HTTP_PORT": str(self.http_port),
                    "PYTHONPATH": str(REPO),
                    **{f"APPLIANCE_{k.upper()}": v for k, v in overrides.items()}}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Station":
        (self.root / "ready.txt").write_bytes(b"ready\n")
        self.log = open(self.base / "service.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "tftp"], cwd=REPO, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, self.logtext()
            if tftp_get(self.port, "ready.txt", timeout=0.5) == b"ready\n":
                return self
            time.sleep(0.1)
        raise AssertionError("service did not come up: " + self.logtext())

    def logtext(self) -> str:
        return (self.base / "service.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def db(self, sql: str, params=()) -> list[tuple]:
        conn = sqlite3.connect(self.state / "station.db", timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def wait_db(self, sql: str, params=(), want=lambda rows: bool(rows), timeout: float = 6.0) -> list[tuple]:
        deadline = time.time() + timeout
        rows = []
        while time.time() < deadline:
            try:
                rows = self.db(sql, params)
            except sqlite3.OperationalError:
                rows = []
            if want(rows):
                return rows
            time.sleep(0.2)
        return rows


def tftp_get(port: int, name: bytes | str, timeout: float = 2.0, options: bytes = b"",
             src: str = "127.0.0.1") -> bytes | None:
    """Plain lock-step RFC 1350 reader; returns None on an ERROR packet or timeout."""
    if isinstance(name, str):
        name = name.encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    sock.settimeout(timeout)
    try:
        sock.sendto(b"\x00\x01" + name + b"\x00octet\x00" + options, ("127.0.0.1", port))
        data, expected = bytearray(), 1
        while True:
            packet, peer = sock.recvfrom(65536)
            opcode, number = struct.unpack("!HH", packet[:4])
            if opcode == 5:
                return None
            if opcode == 6:
                sock.sendto(struct.pack("!HH", 4, 0), peer)
                continue
            sock.sendto(struct.pack("!HH", 4, number), peer)
            if number == expected & 0xFFFF:
                data += packet[4:]
                expected += 1
                if len(packet) - 4 < 512:
                    return bytes(data)
    except OSError:
        return None
    finally:
        sock.close()


def request_error(port: int, packet: bytes, src: str = "127.0.0.1", timeout: float = 2.0) -> tuple[int, bytes]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((src, 0))
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        reply, _ = sock.recvfrom(65536)
        return struct.unpack("!HH", reply[:4]), reply[4:]


@pytest.fixture(scope="module", params=["native", "python"])
def station(tmp_path_factory, request):
    """Every test runs against both block senders: the C pump and the Python session loop."""
    if request.param == "native" and importlib.util.find_spec("appliance.tftp._pump") is None:
        pytest.skip("the C pump was not built (no compiler or Python headers when installed)")
    base = tmp_path_factory.mktemp("tftpsvc")
    st = Station(base, TFTP_TIMEOUT="1", TFTP_RETRIES="2", TFTP_PER_CLIENT="3", TFTP_MAX_SESSIONS="5",
                 TFTP_PHONE_RESERVE_PERCENT="40",     # 2 of the 5 kept for phones: strangers share 3
                 TFTP_LIFETIME_MS_PER_BLOCK="2",      # the 700 kB file (1368 blocks) lives 3 + 2.7 s at most
                 TFTP_WORKERS="2",       # two workers, so SO_REUSEPORT sharing and worker restarts are covered
                 TFTP_PUMP=request.param)
    st.pump = request.param
    rng = os.urandom(MIB)
    (st.root / "jar11sip.8-2-2ES4.sbn").write_bytes(rng[:700_001])
    (st.root / "exact1024.bin").write_bytes(rng[:1024])
    (st.root / "empty.bin").write_bytes(b"")
    (st.root / "notes.txt").write_bytes(b"line one\r\nline two\nbare\rcr\x00nul" * 40 + b"\r")
    (st.root / "English_United_Kingdom").mkdir()
    (st.root / "English_United_Kingdom" / "mk-sccp.jar").write_bytes(rng[:5000])
    with open(st.root / "big40.bin", "wb") as fh:        # 40 MiB: block numbers roll over at 512
        for i in range(40):
            fh.write(hashlib.sha512(str(i).encode()).digest() * (MIB // 64))
    (base / "secret.txt").write_bytes(b"top secret\n")
    (st.root / "escape.txt").symlink_to(base / "secret.txt")
    (st.root / "escdir").symlink_to(base)
    st.start()
    yield st
    st.stop()


@needs_tool("curl")
@pytest.mark.parametrize("blksize", [512, 1024, 1428, 1468, 8192])
def test_curl_fetches_identical_bytes(station, tmp_path, blksize):
    out = tmp_path / "out"
    subprocess.run(["curl", "-sS", "--max-time", "30", "--tftp-blksize", str(blksize), "-o", str(out),
                    f"tftp://127.0.0.1:{station.port}/Jar11sip.8-2-2ES4.sbn"], check=True)
    assert sha(out) == sha(station.root / "jar11sip.8-2-2ES4.sbn")


@needs_tool("curl")
def test_curl_40_mib_rolls_over_block_numbers(station, tmp_path):
    out = tmp_path / "out"
    subprocess.run(["curl", "-sS", "--max-time", "60", "--tftp-blksize", "512", "-o", str(out),
                    f"tftp://127.0.0.1:{station.port}/big40.bin"], check=True)
    assert out.stat().st_size == 40 * MIB and sha(out) == sha(station.root / "big40.bin")


@needs_tool("curl")
def test_empty_file(station):
    """curl 7.88 itself fails on any empty TFTP file (tftpd-hpa too: getpeername errno 107), so a plain client."""
    assert tftp_get(station.port, "empty.bin") == b""
    assert tftp_get(station.port, "EMPTY.BIN", options=b"tsize\x000\x00") == b""


@needs_tool("curl")
@pytest.mark.parametrize("name", ["exact1024.bin", "english_united_kingdom/MK-SCCP.jar",
                                  "%2Fenglish_united_kingdom%2FMK-SCCP.jar"])
def test_curl_edge_sizes_and_names(station, tmp_path, name):
    out = tmp_path / "out"
    subprocess.run(["curl", "-sS", "--max-time", "20", "-o", str(out), f"tftp://127.0.0.1:{station.port}/{name}"],
                   check=True)
    real = {"exact1024.bin": "exact1024.bin", "empty.bin": "empty.bin"}.get(name, "English_United_Kingdom/mk-sccp.jar")
    assert out.read_bytes() == (station.root / real).read_bytes()


@needs_tool("tftp")
def test_tftp_hpa_client(station, tmp_path):
    for blk in ("512", "1468"):
        out = tmp_path / f"hpa{blk}"
        r = subprocess.run(["tftp", "127.0.0.1", str(station.port), "-m", "binary", "-c", "get",
                            "/JAR11SIP.8-2-2ES4.sbn", str(out)], capture_output=True, text=True, timeout=30,
                           input="")
        assert r.returncode == 0, r.stderr
        assert sha(out) == sha(station.root / "jar11sip.8-2-2ES4.sbn")


@needs_tool("tftp")
@pytest.mark.parametrize("name", ["notes.txt", "jar11sip.8-2-2ES4.sbn"])
def test_tftp_hpa_text_mode_gets_the_same_bytes(station, tmp_path, name):
    """tftp-hpa's default mode is netascii: the server must encode LF and CR so the client's decoding restores them."""
    out = tmp_path / "ascii.out"
    r = subprocess.run(["tftp", "127.0.0.1", str(station.port), "-m", "netascii", "-c", "get", name, str(out)],
                       capture_output=True, text=True, timeout=30, input="")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (station.root / name).read_bytes()


def test_netascii_of_firmware_sized_files_and_mail_mode_are_refused(station):
    (op, code), msg = request_error(station.port, b"\x00\x01big40.bin\x00netascii\x00")
    assert (op, code, msg.rstrip(b"\0")) == (5, 4, b"netascii over 16 MiB not served; use octet")
    (op, code), msg = request_error(station.port, b"\x00\x01notes.txt\x00mail\x00")
    assert (op, code, msg.rstrip(b"\0")) == (5, 4, b"mail mode not served; use octet")


@needs_tool("atftp")
@pytest.mark.parametrize("opts", [[], ["--option", "windowsize 8", "--option", "blksize 1428"],
                                  ["--option", "windowsize 16", "--option", "tsize 0"]])
def test_atftp_client_with_windowsize(station, tmp_path, opts):
    out = tmp_path / "atftp.out"
    r = subprocess.run(["atftp", *opts, "-g", "-r", "jar11sip.8-2-2ES4.sbn", "-l", str(out), "127.0.0.1",
                        str(station.port)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sha(out) == sha(station.root / "jar11sip.8-2-2ES4.sbn")


def test_tftpy_client(station, tmp_path):
    import tftpy

    out = tmp_path / "tftpy.out"
    tftpy.TftpClient("127.0.0.1", station.port, options={"blksize": 1428, "tsize": 0}).download(
        "jar11sip.8-2-2ES4.sbn", str(out), timeout=2)
    assert sha(out) == sha(station.root / "jar11sip.8-2-2ES4.sbn")


@pytest.mark.parametrize("name", ["../secret.txt", "..\\secret.txt", "escape.txt", "escdir/secret.txt",
                                  "/../secret.txt", str(Path("/etc/passwd")), "English_United_Kingdom",
                                  "a\x00b", "nothere.bin"])
def test_traversal_and_directories_serve_nothing(station, name):
    assert tftp_get(station.port, name, timeout=1) is None


def test_write_requests_are_refused_and_nothing_is_written(station, tmp_path):
    before = sorted(p.name for p in station.root.rglob("*"))
    secret = (station.base / "secret.txt").read_bytes()
    (code, _), _ = request_error(station.port, b"\x00\x02new.bin\x00octet\x00")
    assert code == 5
    (code, _), _ = request_error(station.port, b"\x00\x02escape.txt\x00octet\x00")
    assert code == 5
    payload = tmp_path / "upload.bin"
    payload.write_bytes(b"overwrite" * 100)
    if subprocess.run(["which", "curl"], capture_output=True).returncode == 0:
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-T", str(payload),
                            f"tftp://127.0.0.1:{station.port}/jar11sip.8-2-2ES4.sbn"], capture_output=True)
        assert r.returncode != 0
    assert sorted(p.name for p in station.root.rglob("*")) == before
    assert (station.base / "secret.txt").read_bytes() == secret
    assert (station.root / "jar11sip.8-2-2ES4.sbn").stat().st_size == 700_001


def test_malformed_packets_never_stop_the_service(station, tmp_path):
    hostile = [
        b"\x00\x01caf\xe9\xff.bin\x00octet\x00",                      # non-UTF-8 name (killed tftpy)
        b"\x00\x01jar11sip.8-2-2ES4.sbn\x00octet\x00blksize\x00abc\x00",  # blksize=abc (killed tftpy)
        b"\x00\x01English_United_Kingdom\x00octet\x00",               # a directory (killed tftpy)
        b"", b"\x00", b"\x00\x01", b"\x00\x04\x00\x01", b"\x00\x03\x00\x01data", b"\xff" * 600,
        b"\x00\x01x\x00octet", b"\x00\x01x\x00bogusmode\x00", os.urandom(1400),
        b"\x00\x01" + b"A" * 1500 + b"\x00octet\x00",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for packet in hostile * 3:
            s.sendto(packet, ("127.0.0.1", station.port))
    assert tftp_get(station.port, b"jar11sip.8-2-2ES4.sbn", options=b"blksize\x00abc\x00") == \
        (station.root / "jar11sip.8-2-2ES4.sbn").read_bytes()
    out = tmp_path / "after"
    subprocess.run(["curl", "-sS", "--max-time", "20", "-o", str(out),
                    f"tftp://127.0.0.1:{station.port}/exact1024.bin"], check=True)
    assert out.read_bytes() == (station.root / "exact1024.bin").read_bytes()
    assert station.proc.poll() is None
    rows = station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                           want=lambda r: r and json.loads(r[0][0])["tftp"]["malformed"] >= 20)
    assert json.loads(rows[0][0])["tftp"]["malformed"] >= 20
    events = station.db("SELECT count(*) FROM events WHERE kind = 'file.malformed'")[0][0]
    assert 1 <= events <= 20        # logged and put on the bus rate-limited, not one row per packet


def _hold(port: int, src: str, name: bytes = b"jar11sip.8-2-2ES4.sbn"):
    """Start a transfer and never ACK: it occupies a session slot until aborted or timed out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(2)
    s.sendto(b"\x00\x01" + name + b"\x00octet\x00", ("127.0.0.1", port))
    packet, peer = s.recvfrom(65536)
    return s, packet, peer


def wait_idle(station, timeout: float = 12.0) -> None:
    """Until the heartbeat shows no running session (earlier tests leave silent ones to time out)."""
    rows = station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                           want=lambda r: r and json.loads(r[0][0]).get("sessions") == 0, timeout=timeout)
    assert rows and json.loads(rows[0][0])["sessions"] == 0


def info(station) -> dict:
    return json.loads(station.db("SELECT info FROM services WHERE name = 'tftp'")[0][0])


def lease(station, mac: str, ip: str) -> None:
    """Tell the core a phone holds `ip`, as DHCP does before its ACK leaves; wait until it is the phone's."""
    sender = FactSender(station.state / "tracker.sock")
    sender.send(Lease(time.time(), mac, ip, True, "CP-7965G"))
    sender.close()
    station.wait_db("SELECT ip FROM phones WHERE mac = ?", (mac,), want=lambda r: r and r[0][0] == ip)


def _hold_long(port: int, src: str):
    """As _hold, with timeout=5 (the cap) so the session outlives the steps of a test on a loaded machine."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(3)
    s.sendto(b"\x00\x01jar11sip.8-2-2ES4.sbn\x00octet\x00timeout\x005\x00", ("127.0.0.1", port))
    packet, peer = s.recvfrom(65536)
    assert packet == b"\x00\x06timeout\x005\x00", packet
    s.sendto(b"\x00\x04\x00\x00", peer)             # ACK of the OACK is not progress: no block confirmed
    packet, _ = s.recvfrom(65536)
    assert packet[:4] == b"\x00\x03\x00\x01"
    return s, peer


def test_per_client_cap_phone_reserve_and_eviction_for_a_phone(station):
    """Strangers get 3 of the 5 slots, 3 per address; a phone gets the other 2 and then a stranger's slot."""
    wait_idle(station)
    lease(station, "00aabbcc0009", "127.0.0.9")
    before = info(station)
    held, phone = [], []
    try:
        for _ in range(3):
            held.append(_hold_long(station.port, "127.0.0.1"))
        (code, err), msg = request_error(station.port, b"\x00\x01exact1024.bin\x00octet\x00")
        assert code == 5 and b"too many transfers from your address" in msg         # per_client = 3
        (code, _), msg = request_error(station.port, b"\x00\x01exact1024.bin\x00octet\x00", src="127.0.0.2")
        assert code == 5 and b"busy" in msg                 # the strangers' share (5 - 2) is in use
        phone = [_hold_long(station.port, "127.0.0.9") for _ in range(2)]     # the phone: the reserve
        time.sleep(0.3)
        held[1][0].sendto(b"\x00\x04\x00\x01", held[1][1])   # two strangers' sessions move on: the first is
        held[2][0].sendto(b"\x00\x04\x00\x01", held[2][1])   # the longest idle, and goes for the phone
        time.sleep(0.3)
        phone.append(_hold_long(station.port, "127.0.0.9"))  # full: a stranger's slot goes to the phone
        ended = None
        while ended is None:                                # its client is told (maybe after a retransmit)
            packet = held[0][0].recv(65536)
            if packet[:2] == b"\x00\x05":
                ended = packet
        assert ended[2:4] == b"\x00\x00" and b"ended for a phone" in ended
        for s2, _ in held[1:]:
            s2.settimeout(0.3)
            try:
                while s2.recv(65536)[:2] != b"\x00\x05":
                    pass
                pytest.fail("a session that made progress was ended instead of the longest idle")
            except TimeoutError:
                pass
    finally:
        for s, peer in held + phone:
            s.sendto(b"\x00\x05\x00\x00client gave up\x00", peer)  # abort: frees the slots at once
            s.close()
    rows = station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                           want=lambda r: json.loads(r[0][0])["limits"]["evicted"] > before["limits"]["evicted"]
                           and json.loads(r[0][0])["tftp"]["evicted"] > before["tftp"]["evicted"])
    after = json.loads(rows[0][0])
    assert after["limits"]["evicted"] == before["limits"]["evicted"] + 1
    assert after["limits"]["refused_per_client"] > before["limits"]["refused_per_client"]
    assert after["limits"]["refused_share"] > before["limits"]["refused_share"]
    assert after["limits"]["phones_refused"] == before["limits"]["phones_refused"]
    deadline = time.time() + 10
    while time.time() < deadline and tftp_get(station.port, "exact1024.bin", src="127.0.0.3") is None:
        time.sleep(0.2)
    assert tftp_get(station.port, "exact1024.bin", src="127.0.0.3") is not None


def test_timeout_255_is_not_acknowledged_and_the_default_applies(station):
    """RFC 2347: an option the server does not grant is left out; with nothing else asked, DATA 1 comes at once."""
    before = info(station)["tftp"]["timeout_declined"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.10", 0))
        s.settimeout(2)
        s.sendto(b"\x00\x01exact1024.bin\x00octet\x00timeout\x00255\x00", ("127.0.0.1", station.port))
        packet, peer = s.recvfrom(65536)
        assert packet[:4] == b"\x00\x03\x00\x01"
        t0 = time.monotonic()
        again = s.recvfrom(65536)[0]                 # never ACKed: resent after [tftp] timeout (1 s), not 255
        assert again[:4] == b"\x00\x03\x00\x01" and time.monotonic() - t0 < 2
        s.sendto(b"\x00\x05\x00\x00bye\x00", peer)
        s.sendto(b"\x00\x01exact1024.bin\x00octet\x00timeout\x001\x00", ("127.0.0.1", station.port))
        assert s.recvfrom(65536)[0] == b"\x00\x06timeout\x001\x00"     # within the cap: acknowledged
    station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                    want=lambda r: json.loads(r[0][0])["tftp"]["timeout_declined"] > before)
    assert info(station)["tftp"]["timeout_declined"] == before + 1


def test_a_client_acking_just_in_time_is_ended_at_the_sessions_lifetime(station):
    """ACKing every block just inside the timeout would hold a slot for ever; the lifetime ends it, with an ERROR."""
    before = info(station)["tftp"]["expired"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.11", 0))
        s.settimeout(2)
        s.sendto(b"\x00\x01jar11sip.8-2-2ES4.sbn\x00octet\x00", ("127.0.0.1", station.port))
        blocks, ended, t0 = 0, None, time.monotonic()
        while ended is None and time.monotonic() - t0 < 20:
            packet, peer = s.recvfrom(65536)
            if packet[:2] == b"\x00\x05":
                ended = packet
                break
            time.sleep(0.6)                          # inside the 1 s timeout: no retry is ever spent
            s.sendto(b"\x00\x04" + packet[2:4], peer)
            blocks += 1
    assert ended is not None and b"too slow" in ended and blocks < 1368
    rows = station.wait_db("SELECT result FROM transfers WHERE client_ip = '127.0.0.11'",
                           want=lambda r: r and r[0][0] == "timeout")
    assert rows[0][0] == "timeout"
    station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                    want=lambda r: json.loads(r[0][0])["tftp"]["expired"] > before)
    assert info(station)["tftp"]["expired"] == before + 1


def test_silent_client_times_out_and_is_recorded(station):
    s, _, _ = _hold(station.port, "127.0.0.4", b"exact1024.bin")
    try:
        rows = station.wait_db("SELECT result, bytes, total FROM transfers WHERE client_ip = '127.0.0.4'",
                               want=lambda r: r and r[0][0] == "timeout", timeout=10)
        assert rows and rows[0] == ("timeout", 0, 1024)
    finally:
        s.close()


def test_transfers_and_events_land_in_the_store_with_mac(station, tmp_path):
    sender = FactSender(station.state / "tracker.sock")        # as DHCP tells each ACK before it leaves
    sender.send(Lease(time.time(), "00aabbccddee", "127.0.0.5", True, "CP-7965G"))
    sender.close()
    station.wait_db("SELECT ip FROM phones WHERE mac = '00aabbccddee'", want=lambda r: r and r[0][0] == "127.0.0.5")
    assert tftp_get(station.port, "exact1024.bin", src="127.0.0.5") is not None
    assert tftp_get(station.port, "CTLSEP0011223344AA.tlv", src="127.0.0.6") is None
    rows = station.wait_db("SELECT mac, file, bytes, total, result, proto FROM transfers WHERE client_ip = ?",
                           ("127.0.0.5",), want=lambda r: r and r[0][4] == "complete")
    assert rows[0] == ("00aabbccddee", "exact1024.bin", 1024, 1024, "complete", "tftp")
    events = station.wait_db("SELECT kind, mac, data FROM events WHERE data LIKE '%127.0.0.5%' ORDER BY id",
                             want=lambda r: len(r) >= 2)
    assert [e[0] for e in events] == ["file.request", "file.done"] and events[1][1] == "00aabbccddee"
    done = json.loads(events[1][2])
    assert done["bytes"] == 1024 and done["total"] == 1024 and done["result"] == "complete" and done["proto"] == "tftp"
    assert done["file"] == "exact1024.bin" and done["resolved"].endswith("exact1024.bin") and done["duration"] >= 0
    nf = station.wait_db("SELECT kind, mac FROM events WHERE data LIKE '%127.0.0.6%'")
    assert nf == [("file.not_found", None)]      # it names a MAC, but 127.0.0.6 holds no lease: nobody's record


def test_heartbeat_names_the_workers(station):
    rows = station.wait_db("SELECT pid, heartbeat, info FROM services WHERE name = 'tftp'")
    pid, beat, info = rows[0]
    assert pid == station.proc.pid and time.time() - beat < 10
    workers = json.loads(info)["workers"]
    assert len(workers) == 2 and all(workers)


@needs_tool("curl")
def test_firmware_blocks_go_through_the_configured_pump(station, tmp_path):
    def pumped() -> int:
        info = json.loads(station.db("SELECT info FROM services WHERE name = 'tftp'")[0][0])
        return info["tftp"]["pumped"]

    before = pumped()
    subprocess.run(["curl", "-sS", "--max-time", "30", "-o", str(tmp_path / "out"),
                    f"tftp://127.0.0.1:{station.port}/jar11sip.8-2-2ES4.sbn"], check=True)
    blocks = 700_001 // 512 + 1
    if station.pump == "python":
        time.sleep(2.5)
        assert pumped() == 0
    else:
        station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                        want=lambda rows: json.loads(rows[0][0])["tftp"]["pumped"] >= before + blocks - 2)
        assert pumped() >= before + blocks - 2      # all but the first block (after the OACK) and the ACK of the last


def test_killed_worker_is_replaced_and_port_keeps_serving(station):
    info = json.loads(station.db("SELECT info FROM services WHERE name = 'tftp'")[0][0])
    victim = info["workers"][0]
    os.kill(victim, 9)
    deadline = time.time() + 10
    while time.time() < deadline:
        info = json.loads(station.db("SELECT info FROM services WHERE name = 'tftp'")[0][0])
        if victim not in info["workers"] and all(info["workers"]):
            break
        time.sleep(0.3)
    assert victim not in info["workers"] and all(info["workers"])
    for _ in range(8):          # different source ports hash to both workers
        assert tftp_get(station.port, "exact1024.bin") == (station.root / "exact1024.bin").read_bytes()


def test_progress_of_a_running_transfer_is_visible(station):
    """A slow client: the transfers row shows bytes growing while the result is still 'running'."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.7", 0))
    s.settimeout(2)
    try:
        s.sendto(b"\x00\x01jar11sip.8-2-2ES4.sbn\x00octet\x00", ("127.0.0.1", station.port))
        seen = []
        deadline = time.time() + 8
        while time.time() < deadline:
            packet, peer = s.recvfrom(65536)
            s.sendto(b"\x00\x04" + packet[2:4], peer)
            time.sleep(0.01)
            rows = station.db("SELECT bytes, result FROM transfers WHERE client_ip = '127.0.0.7'")
            if rows and rows[0][1] == "running" and rows[0][0] > 0:
                seen.append(rows[0][0])
                if len(seen) >= 2 and seen[-1] > seen[0]:
                    break
        assert len(seen) >= 2 and seen[-1] > seen[0], seen
        s.sendto(b"\x00\x05\x00\x00stop\x00", peer)
        rows = station.wait_db("SELECT result FROM transfers WHERE client_ip = '127.0.0.7'",
                               want=lambda r: r and r[0][0] == "aborted")
        assert rows[0][0] == "aborted"
    finally:
        s.close()


def test_repeated_request_does_not_start_a_second_transfer(station):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.8", 0))
        s.settimeout(2)
        rrq = b"\x00\x01exact1024.bin\x00octet\x00"
        s.sendto(rrq, ("127.0.0.1", station.port))
        s.sendto(rrq, ("127.0.0.1", station.port))
        first, peer = s.recvfrom(65536)
        s.sendto(b"\x00\x04\x00\x01", peer)
        s.sendto(b"\x00\x04\x00\x02", peer)
        s.sendto(b"\x00\x04\x00\x03", peer)
    station.wait_db("SELECT count(*) FROM transfers WHERE client_ip = '127.0.0.8'", want=lambda r: r[0][0] >= 1)
    time.sleep(1.2)
    assert station.db("SELECT count(*) FROM transfers WHERE client_ip = '127.0.0.8'")[0][0] == 1


def test_new_files_and_rescan_requests_are_picked_up(station):
    (station.root / "late-arrival.bin").write_bytes(b"late" * 300)
    deadline = time.time() + 10
    got = None
    while time.time() < deadline and got is None:
        got = tftp_get(station.port, "Late-Arrival.bin", timeout=0.5)
        if got is None:
            time.sleep(0.3)
    assert got == b"late" * 300
    before = json.loads(station.db("SELECT info FROM services WHERE name = 'tftp'")[0][0])["generation"]
    conn = sqlite3.connect(station.state / "station.db", timeout=10)
    with conn:
        conn.execute("INSERT INTO events(ts, source, kind, data) VALUES (?, 'api', 'firmware.rescan', '{}')",
                     (time.time(),))
    conn.close()
    rows = station.wait_db("SELECT info FROM services WHERE name = 'tftp'",
                           want=lambda r: r and json.loads(r[0][0])["generation"] > before, timeout=8)
    assert json.loads(rows[0][0])["generation"] > before
