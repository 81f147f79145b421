"""Sans-I/O parts of the file service: name rules, codec, read session, caps."""
from __future__ import annotations

import os
import struct

import pytest

from appliance.tftp import admission
from appliance.tftp import packets as pk
from appliance.tftp.limits import Limits
from appliance.tftp.paths import DirResolver, servable_name
from appliance.tftp.session import ReadSession, Settings, lifetime, negotiate


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


def test_timeout_option_over_the_cap_is_left_out_and_the_default_applies():
    s = Settings(timeout=2.0, max_timeout=5)
    assert negotiate({"timeout": "5"}, 1, s)[0] == {"timeout": "5"} and negotiate({"timeout": "5"}, 1, s)[2] == 5.0
    reply, _, timeout, _ = negotiate({"timeout": "255", "blksize": "1024"}, 1, s)
    assert reply == {"blksize": "1024"} and timeout == 2.0          # RFC 2347: the server may leave it out
    session = _session(b"x" * 600, {"timeout": "255"}, max_timeout=5)
    assert session.timeout_declined and session.timeout == 1.0
    assert session.start(0.0)[0][:4] == struct.pack("!HH", pk.DATA, 1)     # nothing acknowledged: no OACK
    assert not _session(b"x", {"timeout": "3"}, max_timeout=5).timeout_declined


def test_a_silent_client_asking_timeout_255_is_gone_within_the_capped_retries():
    s = _session(b"x" * 600, {"timeout": "255"}, max_timeout=5)
    s.start(0.0)
    t = 0.0
    while s.result is None and t < 300:
        t += 0.5
        s.on_timeout(t)
    assert s.result == "timeout" and t <= (2 + 1) * 1.0          # retries=2 of the default 1 s, not of 255 s


def test_a_dripping_client_is_ended_at_its_lifetime_with_an_error():
    """ACKing each block just before its timeout resets the retries forever; the lifetime still ends it."""
    data = os.urandom(512 * 100)
    s = _session(data, lifetime_per_block=0.01)
    bound = lifetime(s.settings, s.timeout, s.last_block)
    assert bound == pytest.approx(3 * 1.0 + 101 * 0.01) and s.expires == pytest.approx(bound)
    s.start(0.0)
    t, block = 0.0, 1
    while s.result is None and t < 60:
        t += 0.9                                  # inside the 1 s timeout every time
        assert s.on_timeout(t) == [] or s.result is not None
        if s.result is None:
            s.on_packet(_ack(block), t)
            block += 1
    assert s.result == "timeout" and bound <= t < bound + 1 and block < 100
    s2 = _session(data, lifetime_per_block=0.01)
    s2.start(0.0)
    s2.on_packet(_ack(1), 3.9)
    out = s2.on_timeout(bound)
    assert out and out[0][:4] == struct.pack("!HH", pk.ERROR, pk.ERR_UNDEFINED) and s2.result == "timeout"


def test_progress_is_when_a_new_block_was_confirmed():
    s = _session(b"x" * 2000)
    s.start(0.0)
    s.on_packet(_ack(1), 0.4)
    s.on_packet(_ack(1), 0.9)                     # a duplicate is not progress
    assert s.progress_at == 0.4 and s.idle(1.0) == pytest.approx(0.6)


def test_limits_keep_the_reserve_and_evict_the_longest_idle_stranger():
    lim = Limits(max_sessions=4, per_client=2, phone_reserve=2)
    a1 = lim.admit("10.0.0.1", False, now=1.0)
    a2 = lim.admit("10.0.0.2", False, now=2.0)
    assert isinstance(a1, int) and isinstance(a2, int)
    assert lim.admit("10.0.0.3", False, now=3.0) is admission.BUSY_SHARE      # strangers: 4 - 2
    assert not lim.acquire("10.0.0.3")                                        # HTTP too
    p1 = lim.admit("10.0.0.9", True, now=3.0)
    assert isinstance(p1, int) and lim.acquire("10.0.0.8", phone=True)
    assert lim.active == 4
    lim.touch(a1, 5.0)                           # a1 moved on since; a2 has been idle longest
    p2 = lim.admit("10.0.0.7", True, now=6.0)
    assert isinstance(p2, int) and lim.evicted(a2) and not lim.evicted(a1) and lim.active == 4
    assert not lim.evicted(p1)
    p3 = lim.admit("10.0.0.6", True, now=6.0)
    assert isinstance(p3, int) and lim.evicted(a1)
    assert lim.admit("10.0.0.5", True, now=7.0) is admission.BUSY             # all four are phones now
    info = lim.info()
    assert (info["evicted"], info["refused_share"], info["refused_full"], info["phones_refused"]) == (2, 2, 1, 1)
    assert info["sessions"] == 4 and info["others"] == 0
    lim.leave(a2)                                # the owner saw the mark: the slot already went to a phone
    lim.leave(a1)
    assert lim.active == 4
    lim.leave(p1)
    lim.release("10.0.0.8", phone=True)
    assert lim.active == 2 and isinstance(lim.admit("10.0.0.1", False, now=8.0), int)


def test_limits_per_address_cap_holds_for_phones_too():
    lim = Limits(max_sessions=10, per_client=2, phone_reserve=5)
    assert isinstance(lim.admit("10.0.0.9", True, 0.0), int) and isinstance(lim.admit("10.0.0.9", True, 0.0), int)
    assert lim.admit("10.0.0.9", True, 0.0) is admission.BUSY_CLIENT
    assert lim.info()["refused_per_client"] == 1


def test_limits_are_shared_with_a_worker_process_which_sees_its_eviction():
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    lim = Limits(max_sessions=2, per_client=2, ctx=ctx, phone_reserve=1)
    held, seen = ctx.Event(), ctx.Event()

    def worker():                                # a TFTP worker: a stranger's session, held until evicted
        ticket = lim.admit("10.0.0.1", False, now=1.0)
        held.set()
        for _ in range(200):
            if lim.evicted(ticket):
                lim.leave(ticket)
                seen.set()
                return
            seen.wait(0.05)

    proc = ctx.Process(target=worker)
    proc.start()
    try:
        assert held.wait(10)
        assert lim.active == 1 and lim.admit("10.0.0.2", False, now=2.0) is admission.BUSY_SHARE
        assert isinstance(lim.admit("10.0.0.9", True, now=2.0), int)
        assert isinstance(lim.admit("10.0.0.9", True, now=2.0), int)          # takes the stranger's slot
        assert seen.wait(10) and lim.active == 2 and lim.info()["others"] == 0
    finally:
        proc.join(10)


def test_a_dead_workers_sessions_are_forgotten_and_the_others_kept():
    lim = Limits(max_sessions=5, per_client=5, phone_reserve=0)
    lim.admit("10.0.0.1", False, now=0.0, owner=111)
    lim.admit("10.0.0.1", True, now=0.0, owner=111)
    kept = lim.admit("10.0.0.2", False, now=0.0, owner=222)
    assert lim.acquire("10.0.0.3")
    assert lim.forget(111) == 2 and lim.active == 2 and lim.info()["others"] == 2
    lim.leave(kept)
    lim.release("10.0.0.3")
    assert lim.active == 0


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
