"""The core's one loop (appliance/recovery/hub.py): DHCP datagrams, workers' facts and posted events, in order;
the answer table pushed to every worker; hostile datagrams and worker messages dropped."""
from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.recovery.facts import FactError, FileAsked, FileSent, Forget, Lease, from_wire, to_wire
from appliance.recovery.hub import Channel, FactSender, Hub
from appliance.recovery.station import make_tracker
from appliance.store import Store

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
MAC, IP = "001b2c3d4e5f", "10.9.0.7"


@pytest.fixture
def hub(station_config):
    cfg = station_config
    for load in (STONE, TARGET):
        synth.write_zip(cfg.tftp.root, load, size_bytes=4_000)
    cat = Catalog.from_config(cfg)
    cat.scan()
    store = Store(cfg.db_path)
    folder = Path(tempfile.mkdtemp(prefix="hub-"))
    os.chmod(folder, 0o755)
    h = Hub(make_tracker(cat, cfg), store, folder / "tracker.sock")
    h.start()
    yield h, store
    h.stop()
    folder.rmdir()


def wait(cond, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def table_says(channel: Channel, mac: str, load: str) -> bool:
    channel.receive()
    row = channel.table.of_mac(mac)
    return row is not None and row.config == load


def test_a_lease_datagram_reaches_every_workers_table_before_it_asks_anything(hub):
    h, store = hub
    pairs = [h.worker_pair() for _ in range(2)]
    channels = [Channel(child) for _, child in pairs]
    for parent, _ in pairs:
        h.resync(parent)
    sender = FactSender(h.path)
    try:
        for i in range(50):                         # many phones: each one's row follows its own lease
            mac, ip = f"001b2c3d4e{i:02x}", f"10.9.1.{i + 1}"
            sender.send(Lease(time.time(), mac, ip, True, "CP-7965G"))   # faster than the core: some wait
        assert wait(lambda: sender.flush())
        for ch in channels:
            assert wait(lambda ch=ch: all(table_says(ch, f"001b2c3d4e{i:02x}", STONE) for i in range(50)))
            assert ch.table.at("10.9.1.50").mac == "001b2c3d4e31" and ch.table.default("CP-7965G") == STONE
        assert sender.failed == 0
        assert wait(lambda: (store.phones.get("001b2c3d4e31") or {}).get("state") == "seen")
    finally:
        sender.close()


def test_worker_facts_arrive_in_order_and_the_table_names_the_next_step(hub):
    h, _ = hub
    parent, child = h.worker_pair()
    channel = Channel(child)
    h.post(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    assert wait(lambda: table_says(channel, MAC, STONE))
    channel.send(FileAsked(time.time(), IP, f"SEP{MAC.upper()}.cnf.xml", served=STONE))
    for name in [f"{STONE}.loads", *synth.component_names(STONE)]:
        channel.send(FileSent(time.time(), IP, name))
    assert wait(lambda: table_says(channel, MAC, TARGET))
    h.post(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    channel.send(FileAsked(time.time(), IP, f"SEP{MAC.upper()}.cnf.xml", served=TARGET))
    assert wait(lambda: h.tracker.phones[MAC].current == STONE)


def test_a_restarted_worker_gets_the_whole_table(hub):
    h, _ = hub
    h.post(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    assert wait(lambda: h.table.of_mac(MAC) is not None)
    parent, child = h.worker_pair()                 # a worker that was not there when the lease came
    channel = Channel(child)
    channel.receive()
    assert channel.table.of_mac(MAC) is None
    h.resync(parent)
    assert wait(lambda: table_says(channel, MAC, STONE))


@pytest.mark.parametrize("data,words", [
    (b"x" * 5000, "datagram of 5000 bytes"),
    (b"\xff\xfe{", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"kind": "phone.retry", "ts": 1, "mac": "001b2c3d4e5f"}', "unknown kind"),
    (b'{"kind": "dhcp.ack", "ts": "soon", "mac": "001b2c3d4e5f"}', "field 'ts'"),
    (b'{"kind": "dhcp.ack", "ts": 1, "mac": "zz:zz"}', "12 lower-case hex"),
    (b'{"kind": "dhcp.ack", "ts": 1, "mac": "001b2c3d4e5f", "ip": "10.0.0.1; rm -rf"}', "not a dotted IPv4"),
    (b'{"kind": "dhcp.ack", "ts": 1}', "without a MAC"),
    (b'{"kind": "lease.forget", "ts": 1}', "without a MAC"),
    (b'{"kind": "file.done", "ts": 1, "ip": "10.0.0.1"}', "needs 'ip' and 'name'"),
    (b'{"kind": "file.done", "ts": 1, "ip": "10.0.0.1", "name": "a\\u0000b"}', "not printable"),
    (b'{"kind": "dhcp.ack", "ts": true, "mac": "001b2c3d4e5f"}', "field 'ts'"),
])
def test_malformed_facts_are_refused_by_the_codec(data, words):
    with pytest.raises(FactError) as exc:
        from_wire(data)
    assert words in str(exc.value)


def test_fact_codec_round_trip():
    for fact in (Lease(1.5, MAC, IP, True, "CP-7965G", "Cisco Systems, Inc. IP Phone CP-7965G"),
                 Lease(2.0, MAC, None, False), FileSent(3.0, IP, "a.sbn", "http", MAC, result="complete", bytes=10, total=20),
                 Lease(4.0, MAC, IP, True, expires=3604.0), Forget(5.0, MAC),
                 FileAsked(6.0, IP, f"SEP{MAC.upper()}.cnf.xml", served=STONE)):
        assert from_wire(to_wire(fact)) == fact


def test_forged_datagrams_are_dropped_and_the_tracker_goes_on(hub, caplog):
    h, _ = hub
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for data in (b"x" * 4000, b"{", b'{"kind":"dhcp.ack","ts":1,"mac":"nothex"}', json.dumps([1]).encode()):
            s.sendto(data, str(h.path))
        assert wait(lambda: h.counters["dropped"] >= 4)
        FactSender(h.path).send(Lease(time.time(), MAC, IP, True, "CP-7965G"))
        assert wait(lambda: MAC in h.tracker.phones)
        assert "dropped malformed fact datagram" in caplog.text
    finally:
        s.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to send as another user")
def test_datagram_from_another_user_is_dropped(hub):
    h, _ = hub
    os.chmod(h.path, 0o666)
    pid = os.fork()
    if pid == 0:                                   # child: become nobody and forge a lease
        try:
            os.setgid(65534)
            os.setuid(65534)
            FactSender(h.path).send(Lease(time.time(), MAC, IP, True, "CP-7965G"))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert wait(lambda: h.counters["dropped"] >= 1)
    assert MAC not in h.tracker.phones


def test_garbage_from_a_worker_is_dropped(hub):
    h, _ = hub
    parent, child = h.worker_pair()
    child.send(b"not json")
    child.send(json.dumps({"ask": "config", "id": 1, "ip": 5}).encode())
    child.send(json.dumps({"kind": "file.done", "ts": "x"}).encode())
    assert wait(lambda: h.counters["dropped"] >= 3)
    h.post(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    assert wait(lambda: table_says(Channel(child), MAC, STONE)), "the loop goes on"


def test_garbage_on_a_workers_table_socket_is_dropped_whole():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        channel = Channel(b)
        for data in (b"{", b'{"answers": {"v": 1, "rows": [[1]]}}', b'{"other": 1}'):
            a.send(data)
        assert channel.receive() == 0 and channel.bad == 3 and len(channel.table) == 0


def test_one_log_line_per_change_of_state(hub, caplog):
    h, _ = hub
    with caplog.at_level(logging.INFO, logger="recovery"):
        h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
        h.run_once(FileAsked(time.time(), IP, f"SEP{MAC.upper()}.cnf.xml", served=STONE))
        h.run_once(FileAsked(time.time(), IP, f"SEP{MAC.upper()}.cnf.xml", served=STONE))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"phone {MAC}")]
    assert lines[0] == f"phone {MAC} leased {IP} (CP-7965G)", lines          # the lines' words: test_narrate.py
    assert lines[1] == f"phone {MAC} seen" and lines[2].startswith(f"phone {MAC} plan: {STONE} (stepping stone)")
    assert lines[3:] == [f"phone {MAC} configured: step 1 of 2: {STONE}"], lines
