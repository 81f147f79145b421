"""HTTP :6970 of `appliance serve tftp` with curl, and generated configs over both protocols."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import needs_tool
from tests.test_tftp_service import Station, tftp_get

HAVE_GENERATED = importlib.util.find_spec("appliance.firmware.generated") is not None
STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
MAC = "001b2c3d4e5f"

pytestmark = needs_tool("curl")


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, check=check)


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    base = tmp_path_factory.mktemp("httpsvc")
    st = Station(base)
    (st.root / "jar11sip.8-2-2ES4.sbn").write_bytes(os.urandom(300_000))
    (base / "secret.txt").write_bytes(b"top secret\n")
    (st.root / "escape.txt").symlink_to(base / "secret.txt")
    if HAVE_GENERATED:
        from appliance.firmware import synth

        synth.write_zip(st.root, STONE, size_bytes=8_000)
        synth.write_zip(st.root, TARGET, size_bytes=8_000)
    st.state.mkdir(parents=True, exist_ok=True)
    from appliance.store import Store

    store = Store(st.state / "station.db")
    store.phones.upsert(MAC, model="CP-7965G", ip="127.0.0.9")
    store.close()
    st.start()
    yield st
    st.stop()


def url(st: Station, name: str) -> str:
    return f"http://127.0.0.1:{st.http_port}/{name}"


def test_get_returns_the_same_bytes_as_tftp(station, tmp_path):
    real = (station.root / "jar11sip.8-2-2ES4.sbn").read_bytes()
    assert curl(url(station, "Jar11sip.8-2-2ES4.sbn")).stdout == real
    assert tftp_get(station.port, "JAR11SIP.8-2-2ES4.sbn") == real


def test_range_requests(station):
    real = (station.root / "jar11sip.8-2-2ES4.sbn").read_bytes()
    r = curl("-D", "-", "-r", "100-199", url(station, "jar11sip.8-2-2ES4.sbn"))
    head, body = r.stdout.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 206") and b"Content-Range: bytes 100-199/300000" in head
    assert body == real[100:200]
    assert curl("-r", "-50", url(station, "jar11sip.8-2-2ES4.sbn")).stdout == real[-50:]
    assert curl("-r", "299990-", url(station, "jar11sip.8-2-2ES4.sbn")).stdout == real[299990:]
    code = curl("-o", "/dev/null", "-w", "%{http_code}", "-r", "400000-", url(station, "jar11sip.8-2-2ES4.sbn")).stdout
    assert code == b"416"


def test_head_reports_length_without_body(station):
    r = curl("-I", url(station, "jar11sip.8-2-2ES4.sbn"))
    assert r.stdout.startswith(b"HTTP/1.1 200") and b"Content-Length: 300000" in r.stdout


@pytest.mark.parametrize("path,codes", [
    ("../secret.txt", {b"403", b"404"}), ("%2e%2e/secret.txt", {b"403"}), ("..%5csecret.txt", {b"403"}),
    ("escape.txt", {b"404"}), ("nothere.bin", {b"404"}), ("a%00b", {b"403"}), ("caf%e9.bin", {b"403"}),
])
def test_bad_names_serve_nothing(station, path, codes):
    r = curl("--path-as-is", "-o", "-", "-w", "\n%{http_code}", url(station, path), check=False)
    body, _, code = r.stdout.rpartition(b"\n")
    assert code in codes and b"secret" not in body


def test_writes_are_refused(station):
    before = sorted(p.name for p in station.root.rglob("*"))
    for method in ("PUT", "POST", "DELETE"):
        r = curl("-X", method, "--data-binary", "x" * 100, "-o", "/dev/null", "-w", "%{http_code}",
                 url(station, "jar11sip.8-2-2ES4.sbn"), check=False)
        assert r.stdout == b"405"
    assert sorted(p.name for p in station.root.rglob("*")) == before
    assert (station.root / "jar11sip.8-2-2ES4.sbn").stat().st_size == 300_000


def test_http_transfers_are_tracked(station):
    curl(url(station, "jar11sip.8-2-2ES4.sbn"), "-o", "/dev/null")
    want = ("http", "jar11sip.8-2-2ES4.sbn", 300000, 300000, "complete")
    rows = station.wait_db("SELECT proto, file, bytes, total, result FROM transfers WHERE proto = 'http'",
                           want=lambda r: want in r)
    assert want in rows
    rows = station.wait_db("SELECT count(*) FROM events WHERE source = 'http' AND kind = 'file.done'",
                           want=lambda r: r[0][0] >= 1)
    assert rows[0][0] >= 1


@pytest.mark.skipif(not HAVE_GENERATED, reason="appliance.firmware.generated has not landed yet")
def test_serve_starts_heartbeats_and_serves_generated_sep_config(station):
    rows = station.wait_db("SELECT pid, heartbeat, info FROM services WHERE name = 'tftp'")
    assert rows and rows[0][0] == station.proc.pid and time.time() - rows[0][1] < 10
    assert json.loads(rows[0][2])["catalog"] is True
    assert "admitted" in json.dumps(json.loads(rows[0][2])["http_shares"])     # :6970's budget in the heartbeat
    name = f"SEP{MAC.upper()}.cnf.xml"
    over_tftp = tftp_get(station.port, name)
    over_http = curl(url(station, name)).stdout
    assert over_tftp == over_http
    root = ET.fromstring(over_tftp)
    assert root.tag == "device" and root.findtext("loadInformation") == STONE     # 7965: stepping stone first
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--tftp-blksize", "1468",
                        f"tftp://127.0.0.1:{station.port}/{name}"], capture_output=True, check=True)
    assert r.stdout == over_tftp
    assert b"<" in tftp_get(station.port, "XMLDefault.cnf.xml")
    stone_manifest = f"{STONE}.loads"
    got = tftp_get(station.port, stone_manifest)
    assert got is not None and hashlib.sha256(got).hexdigest() == hashlib.sha256(
        curl(url(station, stone_manifest)).stdout).hexdigest()
    assert tftp_get(station.port, f"ITLSEP{MAC.upper()}.tlv") is None                # trust files: not found
    rows = station.wait_db("SELECT mac, result FROM transfers WHERE file = ? AND proto = 'tftp'", (name,))
    assert rows and rows[0] == (None, "complete")       # read from an address with no lease: no phone's transfer


def test_garbage_and_silent_connections_do_not_stop_http(station):
    junk = [b"\x00\xff\xfe garbage\r\n\r\n", b"GET /" + b"A" * 70000 + b" HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"BREW /pot HTCPCP/1.0\r\n\r\n",
            b"GET /jar11sip.8-2-2ES4.sbn HTTP/1.1\r\nRange: bytes=zz-\r\n\r\n"]
    silent = socket.create_connection(("127.0.0.1", station.http_port), timeout=5)   # never sends a byte
    try:
        for payload in junk:
            with socket.create_connection(("127.0.0.1", station.http_port), timeout=5) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
        real = (station.root / "jar11sip.8-2-2ES4.sbn").read_bytes()
        assert curl(url(station, "jar11sip.8-2-2ES4.sbn")).stdout == real
    finally:
        silent.close()
    assert station.proc.poll() is None


# -- fair shares (issue 24 item 2): the real FileHTTPServer in this process, with a small budget -------------------
class InProcess:
    """FileHTTPServer on 127.0.0.1 over a plain directory, as the file service runs it (real Files, TransferLog,
    Limits), with `shares` small enough to reach in a test."""

    def __init__(self, base, shares, table=None, limits=None):
        from appliance.store import Store
        from appliance.tftp import http as httpmod
        from appliance.tftp.files import Files
        from appliance.tftp.limits import Limits
        from appliance.tftp.transfer_log import TransferLog

        self.root = base / "root"
        self.root.mkdir()
        (self.root / "small.bin").write_bytes(b"x" * 1000)
        (self.root / "big.bin").write_bytes(os.urandom(4 << 20))
        self.tracking = TransferLog(Store(base / "db.sqlite"), source="tftp", table=table)
        self.limits = limits or Limits(100, 50)
        self.server = httpmod.start("127.0.0.1", 0, Files(self.root), self.tracking, self.limits,
                                    table=table, shares=shares)
        self.port = self.server.server_address[1]

    def connect(self, source: str) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))

    def get(self, source: str, name: str = "small.bin") -> bytes:
        with self.connect(source) as s:
            s.sendall(f"GET /{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return read_all(s)

    def wait_open(self, n: int) -> None:
        from tests.conftest import wait_for
        wait_for(lambda: self.server.info()["open"] == n, 10, f"{n} connections admitted", every=0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_all(s, limit: float = 15.0) -> bytes:
    """Everything until the server closes (bounded by `limit` seconds of socket timeout)."""
    s.settimeout(limit)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


@pytest.fixture
def inproc(tmp_path):
    made = []

    def make(table=None, limits=None, **shares):
        from appliance.tftp.http import Shares
        srv = InProcess(tmp_path / f"s{len(made)}", Shares(**shares), table, limits)
        made.append(srv)
        return srv

    (tmp_path / "s0").mkdir()
    for i in range(1, 4):
        (tmp_path / f"s{i}").mkdir()
    yield make
    for srv in made:
        srv.close()


def test_a_client_dripping_its_headers_loses_the_connection_at_the_request_deadline(inproc):
    """A byte every 0.2 s never trips a per-read timeout (30 s); the whole-request deadline (1 s) still ends it."""
    srv = inproc(header_s=1.0)
    s = srv.connect("127.0.0.2")
    closed = False
    try:
        for byte in (b"GET /small.bin HTTP/1.1\r\nX-Drip: " + b"a" * 200)[:75]:    # at most 15 s of dripping
            try:
                s.sendall(bytes([byte]))
                time.sleep(0.2)
                s.setblocking(False)
                if s.recv(1024) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            finally:
                s.setblocking(True)
    finally:
        s.close()
    assert closed, "a client dripping its request line kept its connection"
    assert srv.server.info()["header_timeouts"] == 1
    assert srv.get("127.0.0.2").startswith(b"HTTP/1.1 200"), "the same address is served again afterwards"


def test_a_client_reading_a_byte_at_a_time_loses_the_transfer_at_the_body_deadline(inproc):
    """4 MiB at a minimum of 8 MiB/s plus 0.5 s: the transfer must be over long before a dripping reader takes it."""
    srv = inproc(min_rate=8 << 20, body_grace_s=0.5)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(("127.0.0.2", 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.port))
    got, ended = 0, False
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(100):                                     # at most ~20 s of reading 512 bytes at a time
            try:
                chunk = s.recv(512)
            except ConnectionResetError:
                ended = True
                break
            if not chunk:
                ended = True
                break
            got += len(chunk)
            time.sleep(0.2)
    finally:
        s.close()
    assert ended and got < (4 << 20), f"the slow reader kept its transfer ({got} bytes read)"
    from tests.conftest import wait_for
    wait_for(lambda: srv.server.info()["body_timeouts"] == 1, 10, "the deadline counted")
    assert srv.tracking.counters["timeout"] == 1 and srv.tracking.counters["complete"] == 0
    assert srv.get("127.0.0.3", "big.bin").endswith((srv.root / "big.bin").read_bytes()), "a reader at speed is served"


def test_one_address_holds_at_most_its_share_of_connections(inproc):
    srv = inproc(per_address=3)
    held = [srv.connect("127.0.0.2") for _ in range(3)]       # silent: each holds a slot
    try:
        srv.wait_open(3)
        with srv.connect("127.0.0.2") as extra:
            assert read_all(extra) == b"", "a fourth connection from one address is closed at once"
        assert srv.get("127.0.0.3").startswith(b"HTTP/1.1 200"), "another address is not held back"
        assert srv.server.info()["refused_over_share"] == 1
    finally:
        for s in held:
            s.close()
    srv.wait_open(0)
    assert srv.get("127.0.0.2").startswith(b"HTTP/1.1 200"), "the share comes back when its connections close"


def test_room_is_kept_for_phones_and_strangers_past_their_room_get_503(inproc):
    from tests.conftest import fixed_table
    table = fixed_table("SCCP45.9-4-2SR4-3S", (("001b2c3d4e5f", "127.0.0.9", "CP-7965G"),))
    srv = inproc(table, max_connections=6, phone_reserve=2, per_address=8)
    held = [srv.connect(f"127.0.0.{2 + i}") for i in range(4)]     # four strangers fill the strangers' room
    try:
        srv.wait_open(4)
        answer = srv.get("127.0.0.20")
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in answer, answer[:200]
        assert b"try again" in answer
        assert srv.get("127.0.0.9").startswith(b"HTTP/1.1 200"), "the phone's lease holder is served from the reserve"
        info = srv.server.info()
        assert info["refused_busy"] == 1 and info["others_open"] == 4
    finally:
        for s in held:
            s.close()


def test_a_phones_download_may_use_the_transfer_reserve_a_strangers_may_not(inproc):
    """The transfer budget (tftp/limits.py, shared with TFTP): the strangers' part full, a phone is still served."""
    from appliance.tftp.limits import Limits
    from tests.conftest import fixed_table
    table = fixed_table("SCCP45.9-4-2SR4-3S", (("001b2c3d4e5f", "127.0.0.9", "CP-7965G"),))
    limits = Limits(2, 10, phone_reserve=1)
    srv = inproc(table, limits)
    assert limits.acquire("127.0.0.50")                       # a stranger's transfer holds the strangers' room
    try:
        assert srv.get("127.0.0.2").startswith(b"HTTP/1.1 503"), "a stranger waits for room"
        assert srv.get("127.0.0.9").startswith(b"HTTP/1.1 200"), "a phone's download uses the reserve"
    finally:
        limits.release("127.0.0.50")
