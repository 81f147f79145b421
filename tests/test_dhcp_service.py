"""The DHCP loop's group commit (appliance/dhcp/service.py `Exchanges`), with a real store and no network.

What must hold however the packets of a pass are batched: an OFFER leaves at once, an ACK never leaves
before its lease (and the pass's events) are committed, a failed commit sends no ACK and tells the
tracker nothing of it, and one client's facts and replies keep their order.
"""
from __future__ import annotations

import sqlite3

import pytest

from appliance import events as ev
from appliance.batch import BatchWriter
from appliance.dhcp import codec
from appliance.dhcp.server import Reply, Server
from appliance.dhcp.service import Exchanges
from appliance.recovery.facts import Lease
from appliance.store import Store
from tests.test_dhcp_server import SETTINGS, discover, mac, request


class Wire:
    """Records, in one list, each reply sent and each fact told, with what the store held at that moment."""

    def __init__(self, store: Store):
        self.store = store
        self.log: list[tuple] = []

    def send(self, reply: Reply) -> None:
        msg = codec.parse(reply.data)
        row = self.store.leases.of(msg.mac)
        self.log.append(("send", reply.kind, msg.mac, msg.yiaddr, row["state"] if row else None))

    def tell(self, fact: Lease) -> None:
        self.log.append(("tell", "ACK" if fact.acked else "DISCOVER", fact.mac, fact.ip))

    def sent(self, kind: str) -> list[tuple]:
        return [entry for entry in self.log if entry[0] == "send" and entry[1] == kind]


@pytest.fixture
def parts(tmp_path):
    store = Store(tmp_path / "station.db")
    server = Server(SETTINGS)
    events: BatchWriter[tuple] = BatchWriter("test-events", store.events.append, 60.0)
    wire = Wire(store)
    errors: list[str] = []
    return server, store, events, wire, Exchanges(server, store, events, wire.send, wire.tell, errors.append), errors


def handle(exchanges: Exchanges, events: BatchWriter, msg: codec.Message, now: float = 1000.0):
    """What the loop does per datagram: decide, and queue the outcome's events."""
    out = exchanges.handle(codec.serialize(msg), now)
    events.add((now, "dhcp", kind, m, data) for kind, m, data in out.events)
    return out


def offered(server: Server, exchanges: Exchanges, events: BatchWriter, n: int) -> str:
    out = handle(exchanges, events, discover(n))
    exchanges.finish()
    return codec.parse(out.replies[0].data).yiaddr


def test_an_offer_leaves_at_once_and_an_ack_only_after_its_lease_is_committed(parts):
    server, store, events, wire, exchanges, errors = parts
    ip = offered(server, exchanges, events, 1)
    assert wire.sent("OFFER") == [("send", "OFFER", mac(1).hex(), ip, None)]    # nothing stored for an offer

    handle(exchanges, events, request(1, ip))
    handle(exchanges, events, discover(2))          # another client, same pass: its OFFER does not wait
    assert wire.sent("ACK") == [] and store.leases.of(mac(1).hex()) is None
    assert [e[1:3] for e in wire.sent("OFFER")] == [("OFFER", mac(1).hex()), ("OFFER", mac(2).hex())]
    assert ("tell", "ACK", mac(1).hex(), ip) not in wire.log

    assert exchanges.finish()
    # The lease was bound in the store when the ACK left, and its fact was told before it.
    assert wire.sent("ACK") == [("send", "ACK", mac(1).hex(), ip, "bound")]
    assert wire.log.index(("tell", "ACK", mac(1).hex(), ip)) < wire.log.index(wire.sent("ACK")[0])
    # The pass's events rode in the same commit (the writer's timer has not run).
    kinds = [row["kind"] for row in store.events.after(0)]
    assert kinds.count(ev.DHCP_ACK) == 1 and kinds.count(ev.DHCP_DISCOVER) == 2
    assert errors == []


def test_a_failed_commit_sends_no_ack_and_keeps_the_change_for_the_next(parts, monkeypatch):
    server, store, events, wire, exchanges, errors = parts
    ips = [offered(server, exchanges, events, n) for n in (1, 2)]

    def broken(changes):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.leases, "save_changes", broken)
    for n, ip in zip((1, 2), ips, strict=True):
        handle(exchanges, events, request(n, ip))
    handle(exchanges, events, discover(3))
    assert not exchanges.finish()
    assert wire.sent("ACK") == [] and not [e for e in wire.log if e[:2] == ("tell", "ACK")]
    assert [e[2] for e in wire.sent("OFFER")] == [mac(n).hex() for n in (1, 2, 3)]   # offers still go
    assert server.counters["persist_failures"] == 1 and "ACKs withheld" in errors[0]
    assert store.leases.all() == [] and len(server.book.pending) == 2

    monkeypatch.undo()
    assert exchanges.commit()           # the next commit stores what the failed one could not
    assert {row["mac"] for row in store.leases.all()} == {mac(1).hex(), mac(2).hex()}


def test_a_client_with_a_held_ack_has_its_later_packets_held_behind_it(parts):
    server, store, events, wire, exchanges, errors = parts
    ip = offered(server, exchanges, events, 1)
    wire.log.clear()
    handle(exchanges, events, request(1, ip))
    handle(exchanges, events, discover(1))          # the same phone again, in the same pass
    handle(exchanges, events, discover(2))          # someone else: not held
    assert [e[:3] for e in wire.log] == [("tell", "DISCOVER", mac(2).hex()), ("send", "OFFER", mac(2).hex())]

    exchanges.finish()
    phone = mac(1).hex()
    assert [e[:3] for e in wire.log[2:]] == [("tell", "ACK", phone), ("send", "ACK", phone),
                                             ("tell", "DISCOVER", phone), ("send", "OFFER", phone)]


def test_a_pass_with_nothing_to_store_commits_nothing(parts, monkeypatch):
    server, store, events, wire, exchanges, errors = parts
    monkeypatch.setattr(store, "atomic", lambda: pytest.fail("no transaction for a pass of offers"))
    handle(exchanges, events, discover(1))
    assert exchanges.finish()
    assert len(wire.sent("OFFER")) == 1
