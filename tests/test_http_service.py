"""HTTP :6970 of `appliance serve tftp` with curl, and generated configs over both protocols."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
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
    import socket

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
