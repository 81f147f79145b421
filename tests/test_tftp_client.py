"""The station's sans-I/O TFTP client: the state machine on its own, and `fetch` against tftpd-hpa."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time

import pytest

from appliance.tftp import packets as pk
from appliance.tftp.client import ReadClient, TftpError
from appliance.tftp.fetch import fetch
from tests.conftest import needs_tool
from tests.test_dns import free_udp_port


def data(n: int, payload: bytes) -> bytes:
    return struct.pack("!HH", pk.DATA, n) + payload


def test_rrq_then_acks_each_block_and_ends_on_a_short_one():
    c = ReadClient("SEP001B2C3D4E5F.cnf.xml")
    assert c.start(0.0) == [b"\x00\x01SEP001B2C3D4E5F.cnf.xml\x00octet\x00"]
    assert c.receive(data(1, b"a" * 512), 0.1) == [pk.encode_ack(1)]
    assert c.receive(data(1, b"a" * 512), 0.2) == [pk.encode_ack(1)]    # a duplicate is acked again, kept once
    assert c.receive(data(3, b"c"), 0.2) == []                          # out of order: ignored
    assert c.receive(data(2, b"b" * 10), 0.3) == [pk.encode_ack(2)]
    assert c.done and bytes(c.data) == b"a" * 512 + b"b" * 10


def test_options_are_asked_and_the_oack_acknowledged_with_block_0():
    c = ReadClient("big.sbn", blksize=1428, tsize=True)
    (rrq,) = c.start(0.0)
    assert rrq.endswith(b"blksize\x001428\x00tsize\x000\x00")
    assert c.receive(pk.encode_oack({"blksize": "1428", "tsize": "2000"}), 0.1) == [pk.encode_ack(0)]
    assert c.size == 2000
    c.receive(data(1, b"x" * 1428), 0.2)
    assert not c.done
    c.receive(data(2, b"x" * 572), 0.3)
    assert c.done and len(c.data) == 2000


@pytest.mark.parametrize("packet,match", [
    (pk.encode_error(pk.ERR_NOT_FOUND, "file not found"), "TFTP error 1: file not found"),
    (pk.encode_oack({"windowsize": "8"}), "not asked for"),
])
def test_errors_and_unasked_options_end_the_read(packet, match):
    c = ReadClient("x")
    c.start(0.0)
    with pytest.raises(TftpError, match=match):
        c.receive(packet, 0.1)


def test_silence_retransmits_then_gives_up():
    c = ReadClient("x", timeout=1.0, retries=2)
    (rrq,) = c.start(0.0)
    assert c.poll(0.5) == []
    assert c.poll(1.0) == [rrq] and c.poll(2.0) == [rrq]
    with pytest.raises(TftpError, match="no answer after 2 retries"):
        c.poll(3.0)


def test_size_is_bounded():
    c = ReadClient("x", max_bytes=1000)
    c.start(0.0)
    c.receive(data(1, b"a" * 512), 0.0)
    with pytest.raises(TftpError, match="over 1000 bytes"):
        c.receive(data(2, b"a" * 512), 0.0)


@pytest.fixture
def tftpd_hpa(tmp_path):
    """tftpd-hpa in the foreground on a free loopback port, serving tmp_path; stopped by PID."""
    if shutil.which("in.tftpd") is None:
        pytest.skip("in.tftpd (tftpd-hpa) not installed (make test installs it)")
    if os.geteuid() != 0:
        pytest.skip("in.tftpd needs root to drop privileges")
    port = free_udp_port()
    proc = subprocess.Popen(["in.tftpd", "--foreground", "--address", f"127.0.0.1:{port}", "--secure",
                             "--blocksize", "1468", "--user", "root", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    yield port
    proc.terminate()
    proc.wait(5)


@needs_tool("in.tftpd")
@pytest.mark.parametrize("blksize", [None, 1428])
def test_fetch_against_tftpd_hpa(tftpd_hpa, tmp_path, blksize):
    body = os.urandom(512 * 7 + 100)
    (tmp_path / "SCCP45.9-4-2SR4-3S.loads").write_bytes(body)
    (tmp_path / "exact.bin").write_bytes(b"x" * 1024)         # a multiple of the block: an empty last DATA
    assert fetch("127.0.0.1", tftpd_hpa, "SCCP45.9-4-2SR4-3S.loads", blksize=blksize, tsize=True) == body
    assert fetch("127.0.0.1", tftpd_hpa, "exact.bin", blksize=blksize) == b"x" * 1024
    with pytest.raises(TftpError, match="TFTP error 1"):
        fetch("127.0.0.1", tftpd_hpa, "missing.loads")
