"""Sans-I/O parts of the file service: name rules, codec, read session, caps."""
from __future__ import annotations

import os
import struct

import pytest

from appliance.tftp import packets as pk
from appliance.tftp.limits import Limits
from appliance.tftp.paths import DirResolver, servable_name
from appliance.tftp.session import ReadSession, Settings, negotiate


@pytest.mark.parametrize("raw,want", [
    ("SEP001122334455.cnf.xml", "SEP001122334455.cnf.xml"),
    ("/mk-sip.jar", "mk-sip.jar"),
    ("English_United_Kingdom\\x-sccp.jar", "English_United_Kingdom/x-sccp.jar"),
    ("//etc/passwd", "etc/passwd"),          # only one leading '/' is stripped: still relative to the root
    ("./a/./b", "a/b"),
    ("../etc/passwd", None),
    ("a/../../b", None),
    ("..\\..\\windows", None),
    ("C:\\boot.ini", None),
    ("a\0b", None),
    (b"caf\xe9.bin", None),                 # not UTF-8
    ("", None),
    ("/", None),
    ("x" * 2000, None),
])
def test_servable_name(raw, want):
    assert servable_name(raw) == want


def test_resolver_is_case_insensitive_and_stays_inside(tmp_path):
    root = tmp_path / "root"
    (root / "English_United_Kingdom").mkdir(parents=True)
    (root / "jar11sip.8-2-2ES4.sbn").write_bytes(b"jar")
    (root / "English_United_Kingdom" / "mk-sccp.jar").write_bytes(b"mk")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    (root / "escape.txt").symlink_to(outside)
    (root / "escdir").symlink_to(tmp_path)
    (root / "inner.txt").symlink_to(root / "jar11sip.8-2-2ES4.sbn")
    r = DirResolver(root)
    assert r.resolve("Jar11sip.8-2-2ES4.sbn").read_bytes() == b"jar"
    assert r.resolve("/english_united_kingdom/MK-SCCP.JAR").read_bytes() == b"mk"
    assert r.resolve("inner.txt").read_bytes() == b"jar"      # a link that stays inside is fine
    assert r.resolve("escape.txt") is None
    assert r.resolve("escdir/secret.txt") is None
    assert r.resolve("English_United_Kingdom") is None         # directories are never files
    assert r.resolve("../secret.txt") is None
    assert r.resolve("nothere") is None


def test_parse_request_never_raises_anything_but_malformed():
    assert pk.parse_request(b"\x00\x01f\x00octet\x00blksize\x001468\x00tsize\x000\x00") == \
        (pk.RRQ, b"f", "octet", {"blksize": "1468", "tsize": "0"})
    assert pk.parse_request(b"\x00\x01\xff\xfe\x00OCTET\x00")[1] == b"\xff\xfe"
    for bad in (b"", b"\x00", b"\x00\x01", b"\x00\x03\x00\x01", b"\x00\x01f\x00octet", b"\x00\x01\x00octet\x00",
                b"\x00\x01f\x00\xff\x00", b"\x00\x01f\x00bogus\x00", os.urandom(3)):
        with pytest.raises(pk.Malformed):
            pk.parse_request(bad)


def test_negotiation_acknowledges_only_what_was_asked():
    s = Settings(max_blksize=1468)
    assert negotiate({}, 10, s)[0] == {}
    assert negotiate({"tsize": "0"}, 1234, s)[0] == {"tsize": "1234"}
    reply, blksize, timeout, window = negotiate({"blksize": "65464", "windowsize": "8", "timeout": "3"}, 1, s)
    assert reply == {"blksize": "1468", "windowsize": "8", "timeout": "3"} and (blksize, timeout, window) == (1468, 3.0, 8)
    assert negotiate({"blksize": "abc", "timeout": "0", "windowsize": "-1", "foo": "1"}, 1, s)[0] == {}
    assert negotiate({"blksize": "4"}, 1, s)[1] == 512


def _ack(n):
    return struct.pack("!HH", pk.ACK, n & 0xFFFF)


def _session(data: bytes, options=None, **kw):
    settings = Settings(**{"timeout": 1.0, "retries": 2, **kw})
    return ReadSession(len(data), lambda off, n: data[off:off + n], options or {}, settings, 0.0)


def test_rollover_and_final_empty_block():
    blk = 8
    data = os.urandom(blk * 70000)              # 70000 full blocks + an empty final block: past 65535
    s = _session(data, {"blksize": "8"})
    assert s.start(0.0) == [pk.encode_oack({"blksize": "8"})]
    got = bytearray()
    out = s.on_packet(_ack(0), 0.0)
    numbers = []
    while out:
        (packet,) = out
        opcode, number = struct.unpack("!HH", packet[:4])
        assert opcode == pk.DATA
        numbers.append(number)
        got += packet[4:]
        out = s.on_packet(_ack(number), 0.0)
    assert bytes(got) == data and s.result == "complete"
    assert numbers[65534:65537] == [65535, 0, 1] and len(numbers) == 70001


def test_duplicate_ack_is_never_answered_and_timeouts_are_bounded():
    data = os.urandom(2000)
    s = _session(data)
    first = s.start(0.0)
    assert first[0][:4] == struct.pack("!HH", pk.DATA, 1)
    second = s.on_packet(_ack(1), 0.1)
    assert second[0][:4] == struct.pack("!HH", pk.DATA, 2)
    assert s.on_packet(_ack(1), 0.2) == []      # Sorcerer's Apprentice: a duplicate ACK sends nothing
    assert s.on_packet(_ack(77), 0.2) == []     # stray ACK of a block never sent
    assert s.on_timeout(0.5) == []              # not due yet
    assert s.on_timeout(1.2) == second          # retransmit
    assert s.on_timeout(2.3) == second
    assert s.on_timeout(3.4) == [] and s.result == "timeout"
    assert s.bytes_acked == 512


def test_windowsize_sends_a_window_and_restarts_after_a_gap():
    data = os.urandom(512 * 10 + 5)
    s = _session(data, {"windowsize": "4"})
    s.start(0.0)
    win = s.on_packet(_ack(0), 0.0)
    assert [struct.unpack("!HH", p[:4])[1] for p in win] == [1, 2, 3, 4]
    again = s.on_packet(_ack(2), 0.0)           # client lost block 3: resend from 3
    assert [struct.unpack("!HH", p[:4])[1] for p in again] == [3, 4, 5, 6]
    assert s.on_packet(_ack(2), 0.0) == []
    s.on_packet(_ack(6), 0.0)
    last = s.on_packet(_ack(10), 0.0)
    assert [struct.unpack("!HH", p[:4])[1] for p in last] == [11]
    assert last[0][4:] == data[-5:]
    s.on_packet(_ack(11), 0.0)
    assert s.result == "complete" and s.bytes_acked == len(data)


def test_client_error_aborts_and_garbage_is_answered_with_error():
    s = _session(b"x" * 600)
    s.start(0.0)
    assert s.on_packet(b"\x00\x05\x00\x00oops\x00", 0.1) == [] and s.result == "aborted"
    s = _session(b"x" * 600)
    s.start(0.0)
    assert s.on_packet(b"\x00\x01", 0.1) == []              # too short: dropped
    out = s.on_packet(b"\x00\x09\x00\x01", 0.1)
    assert out and out[0][:2] == b"\x00\x05" and s.result == "aborted"


def test_limits_overall_and_per_client():
    lim = Limits(max_sessions=3, per_client=2)
    assert lim.acquire("10.0.0.1") and lim.acquire("10.0.0.1")
    assert not lim.acquire("10.0.0.1")
    assert lim.acquire("10.0.0.2")
    assert not lim.acquire("10.0.0.3")
    lim.release("10.0.0.1")
    assert lim.acquire("10.0.0.3") and lim.active == 3


def test_firmware_is_read_from_the_file_and_a_shrunk_file_ends_the_transfer(tmp_path):
    """No copy in the worker's heap: what is on disk is what goes out; a file truncated under a running
    transfer raises instead of sending a short block that the client would take for the end."""
    from appliance.tftp.files import Files, Truncated
    (tmp_path / "load.bin").write_bytes(bytes(range(256)) * 16)
    name, src = Files(tmp_path).open(b"LOAD.BIN")
    try:
        assert (name, src.size, src.data) == ("LOAD.BIN", 4096, None)
        assert bytes(src.read(512, 512)) == (bytes(range(256)) * 16)[512:1024]
        assert bytes(src.read(4096, 512)) == b""                     # the final empty block is fine
        os.truncate(tmp_path / "load.bin", 1000)
        with pytest.raises(Truncated):
            src.read(512, 512)
    finally:
        src.close()
    assert src.fd is None
