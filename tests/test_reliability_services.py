"""Hostile packets and path-traversal names replayed against RUNNING services on loopback.

Why: a parser that survives a fuzzer can still wedge the socket loop, leak a
worker or serve a file outside the root; only the real process shows that.
After each kind of bad input a real client (dig, curl) is still served by the
same PID.
"""
from __future__ import annotations

import os
import random
import socket
import subprocess
import time

import pytest

from fuzz import hostile
from tests.conftest import needs_tool
from tests.reliability_figures import record
from tests.test_dns import dig, free_udp_port, start_dns, stop, wait_ready
from tests.test_tftp_service import Station, tftp_get

FLOOD_PACKETS = 3000
FLOOD_SECONDS = 5.0
SECRET = b"SECRET-OUTSIDE-THE-ROOT-" + os.urandom(8).hex().encode()


def _flood(port: int, packet: bytes) -> int:
    """One source address, bounded in count and time; returns packets sent."""
    sent, deadline = 0, time.monotonic() + FLOOD_SECONDS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while sent < FLOOD_PACKETS and time.monotonic() < deadline:
            s.sendto(packet, ("127.0.0.1", port))
            sent += 1
    return sent


def _send(port: int, packets: list[bytes]) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        for p in packets:
            try:
                s.sendto(p, ("127.0.0.1", port))
            except OSError:     # over the UDP datagram limit: the kernel refuses, nothing reached the service
                pass
    return len(packets)


@needs_tool("dig")
def test_dns_service_answers_after_each_kind_of_hostile_packet(station_env):
    port = free_udp_port()
    proc = start_dns(station_env, port, "recovery=127.0.0.1")
    tried = {}
    try:
        wait_ready(port, proc)
        pid = proc.pid
        for kind, packets in hostile.dns(random.Random(8)).items():
            tried[kind] = _send(port, packets)
            assert dig(port, "+short", "recovery").split() == ["127.0.0.1"], kind
            assert proc.poll() is None and proc.pid == pid, kind
        tried["flood"] = _flood(port, hostile._dns_query(b"caf\xe9"))
        assert dig(port, "+short", "recovery").split() == ["127.0.0.1"]
        assert proc.poll() is None
    finally:
        stop(proc)
    record("dns_hostile", service="dns", packets=sum(tried.values()), by_kind=tried, good_client="dig", crashes=0)


@pytest.fixture(scope="module")
def files_station(tmp_path_factory):
    base = tmp_path_factory.mktemp("relfiles")
    st = Station(base, TFTP_TIMEOUT="1", TFTP_RETRIES="2")
    (base / "secret.txt").write_bytes(SECRET)
    (st.root / "big.bin").write_bytes(os.urandom(300_000))
    (st.root / "sub").mkdir()
    (st.root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (st.root / "escape.txt").symlink_to(base / "secret.txt")
    (st.root / "escdir").symlink_to(base)
    st.start()
    yield st
    st.stop()


def _curl_tftp(st: Station, name: str, out) -> bytes:
    subprocess.run(["curl", "-sS", "--max-time", "20", "-o", str(out), f"tftp://127.0.0.1:{st.port}/{name}"],
                   check=True)
    return out.read_bytes()


@needs_tool("curl")
def test_tftp_service_serves_curl_after_each_kind_of_hostile_packet(files_station, tmp_path):
    st, pid, tried = files_station, files_station.proc.pid, {}
    want = (st.root / "big.bin").read_bytes()
    for kind, packets in hostile.tftp(random.Random(8), "big.bin").items():
        tried[kind] = _send(st.port, packets)
        assert _curl_tftp(st, "big.bin", tmp_path / kind) == want, kind
        assert st.proc.poll() is None and st.proc.pid == pid, kind
    tried["flood"] = _flood(st.port, b"\x00\x01caf\xe9.bin\x00octet\x00")
    assert _curl_tftp(st, "big.bin", tmp_path / "after-flood") == want
    assert st.proc.poll() is None
    record("tftp_hostile", service="tftp", packets=sum(tried.values()), by_kind=tried, good_client="curl tftp://",
           crashes=0)


def _http_raw(port: int, target: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /" + target + b" HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if len(data) > 1 << 20:
                break
        return data


def test_traversal_over_tftp_and_http_serves_no_byte_outside_the_root(files_station):
    st = files_station
    names = hostile.traversal_names(st.root.name)
    leaked = served = 0
    for name in names:
        body = tftp_get(st.port, name, timeout=1)
        if body is not None:
            served += 1
            leaked += SECRET in body or b"root:" in body
        reply = _http_raw(st.http_port, name.replace(b"\x00", b"%00"))
        leaked += SECRET in reply or b"root:x:0:0" in reply
        status = reply.split(b"\r\n", 1)[0]
        assert b" 200 " not in status or SECRET not in reply, (name[:60], status)
    record("traversal", names=len(names), protocols=["tftp", "http"], requests=2 * len(names),
           bytes_outside_root=leaked * len(SECRET), answered=served)
    assert leaked == 0
    assert served == 0, "a traversal name was answered with a file"
    assert tftp_get(st.port, "sub/inner.txt") == b"inner\n"
    assert b"inner" in _http_raw(st.http_port, b"sub/inner.txt")


def test_write_requests_write_nothing(files_station, tmp_path):
    st = files_station
    before = {p: p.read_bytes() for p in st.base.rglob("*") if p.is_file() and not p.is_symlink()
              and "state" not in p.parts and p.suffix != ".log"}
    targets = [b"new.bin", b"big.bin", b"../planted.txt", b"escape.txt", b"escdir/planted.txt"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for name in targets:
            s.sendto(b"\x00\x02" + name + b"\x00octet\x00", ("127.0.0.1", st.port))
            reply, peer = s.recvfrom(1500)
            assert reply[:2] == b"\x00\x05", (name, reply[:20])
            s.sendto(b"\x00\x03\x00\x01" + b"planted", peer)
    for name in targets:
        with socket.create_connection(("127.0.0.1", st.http_port), timeout=5) as c:
            c.sendall(b"PUT /" + name + b" HTTP/1.0\r\nContent-Length: 7\r\n\r\nplanted")
            status = c.recv(200).split(b"\r\n", 1)[0]
            assert b" 2" not in status[:13], (name, status)
    after = {p: p.read_bytes() for p in st.base.rglob("*") if p.is_file() and not p.is_symlink()
             and "state" not in p.parts and p.suffix != ".log"}
    # the station's database records refused names ("../planted.txt"), so its files may hold the word;
    # anywhere else, and any file so named, would be a write that got through
    planted = [p for p in st.base.rglob("*") if p.is_file() and (p.name == "planted.txt" or (
        "state" not in p.parts and b"planted" in p.read_bytes()))]
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    record("writes", write_requests=2 * len(targets), files_written=len(changed | set(planted)))
    assert after == before
    assert not planted
