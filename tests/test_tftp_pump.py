"""The C block pump (appliance/tftp/_pump.c) on loopback sockets, and a Server using it against a client
that loses ACKs, so the hand-offs between the pump and the Python session are exercised."""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.tftp import loop as srvmod
from appliance.tftp.files import Files
from appliance.tftp.limits import Limits
from appliance.tftp.loop import LoopConfig, TransferLoop
from appliance.tftp.session import Settings

pump_mod = pytest.importorskip("appliance.tftp._pump", reason="the C pump was not built (no compiler)")
Pump = pump_mod.Pump


def ack(n: int) -> bytes:
    return struct.pack("!HH", 4, n & 0xFFFF)


class Pair:
    """A connected loopback UDP pair: `srv` is the transfer's socket on the epoll set, `cli` the phone."""

    def __init__(self, path, data: bytes, blksize: int = 512):
        self.cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.cli.bind(("127.0.0.1", 0))
        self.cli.settimeout(2)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.connect(self.cli.getsockname())
        self.srv.setblocking(False)
        self.cli.connect(self.srv.getsockname())
        path.write_bytes(data)
        self.file = os.open(path, os.O_RDONLY)
        self.epoll = select.epoll()
        self.epoll.register(self.srv.fileno(), select.EPOLLIN)
        self.pump = Pump(self.epoll.fileno(), 1468)
        self.fd = self.srv.fileno()
        self.size, self.blksize = len(data), blksize

    def attach(self, acked: int, sent: int, deadline: float = 0.0, timeout: float = 2.0) -> None:
        self.pump.attach(self.fd, self.file, self.size, self.blksize, acked, sent, deadline, timeout)

    def poll_until(self, want=lambda out: True, seconds: float = 2.0) -> list:
        end, out = time.monotonic() + seconds, []
        while time.monotonic() < end:
            out += self.pump.poll(0.05)
            if want(out):
                break
        return out

    def close(self) -> None:
        self.epoll.close()
        self.srv.close()
        self.cli.close()
        os.close(self.file)


@pytest.fixture
def pair(tmp_path):
    data = os.urandom(5 * 512 + 100)
    p = Pair(tmp_path / "load.bin", data)
    p.data = data
    yield p
    p.close()


def test_the_awaited_ack_gets_the_next_block_and_moves_the_counters(pair):
    pair.attach(acked=0, sent=1)
    pair.cli.send(ack(1))
    assert pair.poll_until(lambda out: pair.pump.blocks == 1, 1.0) == []
    packet = pair.cli.recv(2048)
    assert packet == struct.pack("!HH", 3, 2) + pair.data[512:1024]
    acked, sent, deadline = pair.pump.state(pair.fd)
    assert (acked, sent) == (1, 2) and deadline > time.monotonic() + 1.5


def test_the_final_short_block_is_pumped_and_its_ack_is_handed_back(pair):
    pair.attach(acked=4, sent=5)
    pair.cli.send(ack(5))
    assert pair.poll_until(lambda out: pair.pump.blocks == 1, 1.0) == []
    assert pair.cli.recv(2048) == struct.pack("!HH", 3, 6) + pair.data[5 * 512:]
    pair.cli.send(ack(6))
    assert pair.poll_until(bool) == [(pair.fd, ack(6))]     # the end of a transfer is the session's call
    assert pair.pump.state(pair.fd)[:2] == (5, 6)


@pytest.mark.parametrize("datagram", [ack(1), ack(3), b"\x00\x05\x00\x00oops\x00", b"\x00\x04", b"\xff" * 700])
def test_anything_but_the_awaited_ack_is_handed_back_untouched(pair, datagram):
    pair.attach(acked=1, sent=2, deadline=12.5)
    pair.cli.send(datagram)
    assert pair.poll_until(bool) == [(pair.fd, datagram)]
    assert pair.pump.state(pair.fd) == (1, 2, 12.5) and pair.pump.blocks == 0


def test_ack_zero_of_an_oack_goes_to_python(pair):
    pair.attach(acked=0, sent=0)
    pair.cli.send(ack(0))
    assert pair.poll_until(bool) == [(pair.fd, ack(0))]


def test_block_numbers_roll_over(tmp_path):
    p = Pair(tmp_path / "big.bin", b"", blksize=8)
    try:
        p.size = 65537 * 8 + 3               # sparse is enough: the pump preads what is there
        with open(tmp_path / "big.bin", "wb") as fh:
            fh.truncate(p.size)
        p.attach(acked=65534, sent=65535)
        p.cli.send(ack(65535))
        assert p.poll_until(lambda out: p.pump.blocks == 1, 1.0) == []
        assert p.cli.recv(2048)[:4] == struct.pack("!HH", 3, 0)
        p.cli.send(ack(0))
        assert p.poll_until(lambda out: p.pump.blocks == 2, 1.0) == []
        assert p.cli.recv(2048)[:4] == struct.pack("!HH", 3, 1)
        assert p.pump.state(p.fd)[:2] == (65536, 65537)
    finally:
        p.close()


def test_a_file_that_shrank_is_handed_back_for_python_to_end(pair, tmp_path):
    pair.attach(acked=1, sent=2)
    os.truncate(tmp_path / "load.bin", 700)
    pair.cli.send(ack(2))
    assert pair.poll_until(bool) == [(pair.fd, ack(2))]
    assert pair.pump.state(pair.fd)[:2] == (1, 2) and pair.pump.blocks == 0


def test_a_vanished_client_is_an_errno_and_detached_sockets_are_pythons(pair):
    pair.attach(acked=0, sent=1)
    port = pair.cli.getsockname()
    pair.cli.close()
    pair.srv.send(b"\x00\x03\x00\x01x")          # the ICMP port unreachable makes the socket readable
    assert pair.poll_until(bool) == [(pair.fd, errno.ECONNREFUSED)]
    pair.pump.detach(pair.fd)
    with pytest.raises(KeyError):
        pair.pump.state(pair.fd)
    pair.cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pair.cli.bind(port)
    pair.cli.sendto(ack(1), pair.srv.getsockname())
    assert pair.poll_until(bool) == [(pair.fd, None)]


def test_bad_arguments_are_errors_not_crashes(pair):
    with pytest.raises(ValueError):
        Pump(pair.epoll.fileno(), 4)
    with pytest.raises(ValueError):
        pair.pump.attach(-1, pair.file, 10, 512, 0, 0, 0.0, 1.0)
    with pytest.raises(ValueError):
        pair.pump.attach(pair.fd, pair.file, 10, 4096, 0, 0, 0.0, 1.0)   # over this pump's max_blksize
    with pytest.raises(KeyError):
        pair.pump.set(pair.fd + 1000, 0, 0, 0.0)
    with pytest.raises(TypeError):
        pair.pump.poll("soon")


def _serve(tmp_path, pump: str):
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(300 * 512 + 17)
    (root / "load.sbn").write_bytes(data)

    class Quiet:
        def begin(self, *a):
            return type("T", (), {"port": a[2], "bytes": 0, "dirty": False})()

        def end(self, *a):
            self.ended = a[1]

        def failed(self, *a):
            pass

        def malformed(self, *a):
            pass

    tracking = Quiet()
    cfg = LoopConfig(port=0, address="127.0.0.1", settings=Settings(timeout=1.0, retries=3), pump=pump)
    server = TransferLoop(cfg, Files(root), tracking, Limits(10, 4))
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop.is_set,), daemon=True)
    thread.start()
    return server, stop, thread, data, tracking


@pytest.mark.parametrize("pump", ["native", "python"])
def test_lost_acks_and_a_duplicate_are_recovered_through_python_and_back(tmp_path, pump):
    server, stop, thread, data, tracking = _serve(tmp_path, pump)
    port = server.sock.getsockname()[1]
    got, seen_retransmit = bytearray(), 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli:
            cli.settimeout(5)
            cli.sendto(b"\x00\x01load.sbn\x00octet\x00blksize\x00512\x00", ("127.0.0.1", port))
            oack, peer = cli.recvfrom(2048)
            assert oack[:2] == b"\x00\x06"
            cli.sendto(ack(0), peer)
            expected, dropped = 1, set()
            while True:
                packet = cli.recv(2048)
                number = struct.unpack("!H", packet[2:4])[0]
                if number != expected & 0xFFFF:
                    continue
                if expected in (50, 200) and expected not in dropped:
                    dropped.add(expected)          # lose our ACK: the server must resend this block
                    continue
                if expected in dropped:
                    seen_retransmit += 1
                    cli.sendto(ack(expected - 1), peer)   # and a duplicate, which must not be answered
                got += packet[4:]
                cli.sendto(ack(expected), peer)
                expected += 1
                if len(packet) < 516:
                    break
        deadline = time.time() + 3
        # the server drops the session from `active` before it reports the end: wait for the report
        while (server.active or getattr(tracking, "ended", None) is None) and time.time() < deadline:
            time.sleep(0.05)
        assert bytes(got) == data and seen_retransmit == 2
        assert getattr(tracking, "ended", None) == "complete" and not server.active
        if pump == "native":
            assert server.pumped_blocks >= 290       # all but the OACK's first block and the hand-offs
        else:
            assert server.pumped_blocks == 0
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_without_the_c_part_the_server_says_so_and_serves_from_python(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(srvmod, "Pump", None)
    server, stop, thread, data, _ = _serve(tmp_path, "native")
    try:
        assert server.pump is None
        assert "was not built" in caplog.text
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _datagrams():
    acks = st.integers(0, 0xFFFF).map(ack)
    near = st.integers(-2, 2)
    return st.lists(st.one_of(st.tuples(st.just("near"), near), st.tuples(st.just("raw"), acks),
                              st.tuples(st.just("raw"), st.binary(max_size=40))), min_size=1, max_size=30)


def test_the_pump_keeps_its_contract_for_any_datagrams(tmp_path):
    """Model-based: every datagram either is the awaited ACK (one block out, counters moved by one, the
    bytes of the file) or comes back to Python with the counters untouched."""
    data = os.urandom(40 * 64 + 9)
    p = Pair(tmp_path / "load.bin", data, blksize=64)
    last = len(data) // 64 + 1
    try:
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(start=st.one_of(st.sampled_from([1, last - 1, last]), st.integers(1, last)), steps=_datagrams())
        def check(start, steps):
            p.attach(acked=start - 1, sent=start, deadline=1.0)
            for kind, value in steps:
                acked, sent, _ = p.pump.state(p.fd)
                datagram = ack(sent + value) if kind == "near" else value
                blocks = p.pump.blocks
                p.cli.send(datagram)
                back = p.poll_until(lambda out, before=blocks: out or p.pump.blocks != before)
                awaited = datagram[:2] == b"\x00\x04" and len(datagram) >= 4 and \
                    datagram[2:4] == struct.pack("!H", sent & 0xFFFF) and sent < last
                if awaited:
                    assert back == [] and p.pump.blocks == blocks + 1
                    assert p.pump.state(p.fd)[:2] == (sent, sent + 1)
                    assert p.cli.recv(2048) == struct.pack("!HH", 3, (sent + 1) & 0xFFFF) + data[sent * 64:(sent + 1) * 64]
                else:
                    assert back == [(p.fd, datagram)] and p.pump.blocks == blocks
                    assert p.pump.state(p.fd)[:2] == (acked, sent)
            p.pump.detach(p.fd)

        check()
    finally:
        p.close()
