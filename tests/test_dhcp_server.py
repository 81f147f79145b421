"""DHCP server state machine, lease book persistence and rogue-server guard, sans-I/O (no network)."""
from __future__ import annotations

import random
import struct

import pytest

from appliance import events as ev
from appliance.dhcp import codec
from appliance.dhcp import guard as guardmod
from appliance.dhcp import leases as leasesmod
from appliance.dhcp.codec import Message
from appliance.dhcp.guard import Guard
from appliance.dhcp.leases import LeaseBook, is_phone, share_count
from appliance.dhcp.server import Server, ServerSettings
from appliance.store import Store

STATION = "10.9.0.1"
SETTINGS = ServerSettings(address=STATION, netmask="255.255.255.0", pool_start="10.9.0.10",
                          pool_end="10.9.0.14", lease_seconds=600, dns=(STATION,), domain="recovery.lan",
                          tftp_servers=(STATION, "10.9.0.2"))   # others_share "100%": the state machine alone
PHONE_VC = b"Cisco Systems, Inc. IP Phone CP-7965G\x00"


def mac(n: int) -> bytes:
    return bytes.fromhex(f"00aabbcc00{n:02x}")


def discover(n: int, opts: dict | None = None) -> Message:
    return Message(xid=n, chaddr=mac(n), options={53: bytes([codec.DISCOVER]), **(opts or {})})


def request(n: int, ip: str | None = None, server: str | None = STATION, ciaddr: str = "0.0.0.0",
            flags: int = 0, opts: dict | None = None) -> Message:
    options = {53: bytes([codec.REQUEST])}
    if ip:
        options[50] = codec.ip_bytes(ip)
    if server:
        options[54] = codec.ip_bytes(server)
    options.update(opts or {})
    return Message(xid=n, chaddr=mac(n), ciaddr=ciaddr, flags=flags, options=options)


def handle(srv: Server, msg: Message, now: float = 1000.0):
    return srv.handle(codec.serialize(msg), now, peer="test")


def reply(out) -> Message:
    assert len(out.replies) == 1, out
    return codec.parse(out.replies[0].data)


def dora(srv: Server, n: int, now: float = 1000.0) -> str:
    offer = reply(handle(srv, discover(n), now))
    ack = reply(handle(srv, request(n, offer.yiaddr), now))
    assert ack.msg_type == codec.ACK
    return ack.yiaddr


@pytest.fixture
def srv() -> Server:
    return Server(SETTINGS)


def test_discover_gets_offer_with_every_phone_option_even_unrequested(srv):
    out = handle(srv, discover(1, {55: bytes([1, 3])}))
    offer = reply(out)
    assert offer.msg_type == codec.OFFER and offer.op == codec.BOOTREPLY and offer.xid == 1
    assert offer.yiaddr == "10.9.0.10"
    assert offer.siaddr == STATION
    assert offer.options[150] == codec.ip_bytes(STATION) + codec.ip_bytes("10.9.0.2")
    assert offer.options[66] == STATION.encode()
    assert offer.ip_option(54) == STATION and offer.ip_option(1) == "255.255.255.0"
    assert offer.options[6] == codec.ip_bytes(STATION) and offer.options[15] == b"recovery.lan"
    assert struct.unpack("!I", offer.options[51])[0] == 600
    assert struct.unpack("!I", offer.options[58])[0] == 300 and struct.unpack("!I", offer.options[59])[0] == 525
    assert 3 not in offer.options  # no router configured
    assert out.replies[0].address == "255.255.255.255" and out.replies[0].port == 68
    assert not out.replies[0].durable


def test_options_follow_parameter_request_list_order(srv):
    offer = reply(handle(srv, discover(1, {55: bytes([150, 66, 15, 6, 1])})))
    assert list(offer.options)[:7] == [53, 54, 150, 66, 15, 6, 1]


def test_router_sent_when_configured():
    s = Server(ServerSettings(**{**SETTINGS.__dict__, "router": "10.9.0.254"}))
    assert reply(handle(s, discover(1))).ip_option(3) == "10.9.0.254"


def test_request_selecting_is_acked_durably_with_events(srv):
    out = handle(srv, discover(1, {60: PHONE_VC, 12: b"SEP00AABBCC0001", 55: bytes([1, 66, 6, 3, 15, 150, 35])}))
    kinds = [k for k, _, _ in out.events]
    assert kinds == [ev.DHCP_DISCOVER, ev.DHCP_OFFER]
    data = out.events[0][2]
    assert data["vendor_class"] == "Cisco Systems, Inc. IP Phone CP-7965G"  # trailing NUL stripped
    assert data["hostname"] == "SEP00AABBCC0001" and data["prl"] == [1, 66, 6, 3, 15, 150, 35]
    assert "7965" in data["model"]
    out = handle(srv, request(1, "10.9.0.10", opts={60: PHONE_VC}))
    ack = reply(out)
    assert ack.msg_type == codec.ACK and ack.yiaddr == "10.9.0.10"
    assert out.replies[0].durable
    assert out.events[-1][0] == ev.DHCP_ACK and out.events[-1][1] == "00aabbcc0001"
    assert out.events[-1][2]["state"] == "selecting" and out.events[-1][2]["ip"] == "10.9.0.10"
    pending = srv.book.take_pending()
    assert pending and pending[0][0] == "upsert" and pending[0][1][0].state == "bound"


def test_request_for_address_offered_to_someone_else_is_naked(srv):
    first = reply(handle(srv, discover(1))).yiaddr
    reply(handle(srv, discover(2)))
    out = handle(srv, request(2, first))
    nak = reply(out)
    assert nak.msg_type == codec.NAK and nak.broadcast
    assert out.replies[0].address == "255.255.255.255"
    assert out.events[-1][0] == ev.DHCP_NAK


def test_init_reboot_off_network_is_naked_and_on_network_is_acked(srv):
    assert reply(handle(srv, request(1, "192.168.1.50", server=None))).msg_type == codec.NAK
    ack = reply(handle(srv, request(2, "10.9.0.12", server=None)))
    assert ack.msg_type == codec.ACK and ack.yiaddr == "10.9.0.12"


def test_renewing_is_unicast_and_rebinding_broadcast(srv):
    ip = dora(srv, 1)
    out = handle(srv, request(1, server=None, ciaddr=ip), now=1300.0)
    assert reply(out).msg_type == codec.ACK and (out.replies[0].address, out.replies[0].port) == (ip, 68)
    assert out.events[-1][2]["state"] == "renewing"
    out = handle(srv, request(1, server=None, ciaddr=ip, flags=codec.BROADCAST_FLAG), now=1500.0)
    assert reply(out).msg_type == codec.ACK and out.replies[0].address == "255.255.255.255"
    assert out.events[-1][2]["state"] == "rebinding"
    assert srv.book.by_mac["00aabbcc0001"].expires == 1500.0 + 600


def test_renewing_someone_elses_address_is_naked(srv):
    ip = dora(srv, 1)
    assert reply(handle(srv, request(2, server=None, ciaddr=ip))).msg_type == codec.NAK


def test_request_naming_another_server_frees_offer_and_reports_it(srv):
    offered = reply(handle(srv, discover(1))).yiaddr
    out = handle(srv, request(1, "10.9.0.99", server="10.9.0.200"))
    assert not out.replies and out.foreign_server == "10.9.0.200"
    assert reply(handle(srv, discover(2))).yiaddr == offered


def test_decline_quarantines_address(srv):
    ip = dora(srv, 1)
    out = handle(srv, Message(xid=9, chaddr=mac(1), options={53: bytes([codec.DECLINE]), 50: codec.ip_bytes(ip),
                                                             54: codec.ip_bytes(STATION)}))
    assert out.events[-1][0] == ev.DHCP_DECLINE and not out.replies
    assert srv.book.conflicted(ip, 1001.0)
    assert ("conflict", (ip, 1000.0 + 3600, "declined by client", "00aabbcc0001")) in srv.book.take_pending()
    assert reply(handle(srv, discover(1), now=1002.0)).yiaddr != ip
    assert reply(handle(srv, discover(3), now=1002.0)).yiaddr != ip


def test_release_then_return_gets_same_address(srv):
    ip = dora(srv, 1)
    out = handle(srv, Message(xid=5, chaddr=mac(1), ciaddr=ip, options={53: bytes([codec.RELEASE]),
                                                                      54: codec.ip_bytes(STATION)}))
    assert out.events[-1] == (ev.DHCP_RELEASE, "00aabbcc0001", {"ip": ip})
    assert srv.book.by_mac["00aabbcc0001"].state == "released"
    assert reply(handle(srv, discover(1), now=1100.0)).yiaddr == ip


def test_inform_gets_options_without_lease(srv):
    out = handle(srv, Message(xid=7, chaddr=mac(7), ciaddr="10.9.0.77", options={53: bytes([codec.INFORM])}))
    ack = reply(out)
    assert ack.msg_type == codec.ACK and ack.yiaddr == "0.0.0.0" and 51 not in ack.options and 150 in ack.options
    assert out.replies[0].address == "10.9.0.77"


def test_reservation_wins_and_other_clients_never_get_it():
    s = Server(ServerSettings(**{**SETTINGS.__dict__, "reservations": (("00aabbcc0005", "10.9.0.10"),)}))
    assert reply(handle(s, discover(1))).yiaddr != "10.9.0.10"
    assert reply(handle(s, discover(5))).yiaddr == "10.9.0.10"
    assert reply(handle(s, request(5, "10.9.0.11"))).msg_type == codec.NAK


def test_pool_exhaustion_is_reported(srv):
    ips = {dora(srv, n) for n in range(1, 6)}
    assert len(ips) == 5
    out = handle(srv, discover(6))
    assert not out.replies and out.events[-1][0] == ev.DHCP_EXHAUSTED
    status = srv.pool_status(1000.0)
    assert status["exhausted"] and status["used"] == 5 and status["size"] == 5
    # Once leases expire, addresses are reused, the longest-expired first.
    assert reply(handle(srv, discover(6), now=1000.0 + 601)).yiaddr in ips


def test_relay_reply_goes_to_giaddr_server_port(srv):
    msg = discover(1)
    msg.giaddr = "10.9.0.254"
    out = handle(srv, msg)
    assert (out.replies[0].address, out.replies[0].port) == ("10.9.0.254", 67)


def test_unicast_to_configured_client_without_broadcast_flag(srv):
    ip = dora(srv, 1)
    out = handle(srv, request(1, server=None, ciaddr=ip))
    assert out.replies[0].address == ip


def test_max_message_size_is_honoured():
    many_dns = tuple(f"10.9.1.{i}" for i in range(1, 120))
    s = Server(ServerSettings(**{**SETTINGS.__dict__, "dns": many_dns}))
    data = handle(s, discover(1, {57: struct.pack("!H", 576)})).replies[0].data
    assert len(data) <= 576 - 28
    offer = codec.parse(data)
    assert 150 in offer.options and 1 in offer.options and 6 not in offer.options


def test_clients_asking_differently_each_get_their_own_answer_from_one_server():
    """Replies are built once per (type, option 55, lease time, option 57) and reused: reuse must not leak
    one client's option order or size limit into another's reply, nor one client's addresses."""
    many_dns = tuple(f"10.9.1.{i}" for i in range(1, 120))
    s = Server(ServerSettings(**{**SETTINGS.__dict__, "dns": many_dns, "pool_end": "10.9.0.40"}))
    asks = {1: {55: bytes([150, 66])}, 2: {55: bytes([1, 3, 15])}, 3: {55: bytes([150, 66])},
            4: {55: bytes([150, 66]), 57: struct.pack("!H", 1500)}, 5: {55: bytes([150, 66])}}
    first = {n: reply(handle(s, discover(n, opts))) for n, opts in asks.items()}
    assert list(first[1].options)[:4] == [53, 54, 150, 66] == list(first[3].options)[:4]
    assert list(first[2].options)[:4] == [53, 54, 1, 15]           # 3 (router) is not configured
    assert 6 in first[4].options and 6 not in first[1].options      # only the client with room gets all
    assert 6 not in first[5].options
    assert len({m.yiaddr for m in first.values()}) == 5 and all(m.xid == n for n, m in first.items())
    acks = {n: reply(handle(s, request(n, first[n].yiaddr, opts=asks[n]))) for n in asks}
    assert all(m.msg_type == codec.ACK and m.yiaddr == first[n].yiaddr and m.chaddr[:6] == mac(n)
               for n, m in acks.items())
    assert list(acks[2].options)[:4] == [53, 54, 1, 15] and 6 in acks[4].options and 6 not in acks[5].options


def test_refused_by_guard_means_silence(srv):
    s = Server(SETTINGS, may_serve=lambda now: False)
    out = handle(s, discover(1))
    assert not out.replies and out.events[0][0] == ev.DHCP_DISCOVER
    assert not handle(s, request(1, "10.9.0.10")).replies
    assert s.counters["refused"] == 2


def test_malformed_and_unknown_options_become_events(srv):
    out = srv.handle(b"\x01" * 50, 1000.0, peer="10.9.0.50:68")
    assert not out.replies and out.malformed.startswith("truncated")
    assert out.events == [(ev.DHCP_MALFORMED, None, {"peer": "10.9.0.50:68", "reason": out.malformed, "size": 50})]
    out = handle(srv, discover(1, {224: b"x"}))
    assert (ev.DHCP_UNKNOWN_OPTIONS, "00aabbcc0001", {"codes": [224]}) in out.events
    assert srv.counters["malformed"] == 1


def test_replies_and_bootp_and_odd_hardware_are_ignored(srv):
    msg = discover(1)
    msg.op = codec.BOOTREPLY
    assert not handle(srv, msg).replies
    assert not handle(srv, Message(xid=1, chaddr=mac(1))).replies  # plain BOOTP, no message type
    odd = discover(2)
    odd.htype = 6
    assert not handle(srv, odd).replies


# -- fair shares: phones draw from the whole pool, other devices from their share -----------------------------
# 10 addresses, 2 of them for devices that are not phones.
SHARES = ServerSettings(**{**SETTINGS.__dict__, "pool_end": "10.9.0.19", "others_share": "20%",
                           "others_lease_seconds": 60})
LOADER_VC = b"Cisco Systems, Inc. IP Phone\x00"          # a 7940/60 loader: no model after it


def phone_opts(n: int) -> dict:
    return {60: PHONE_VC, 12: f"SEP{mac(n).hex().upper()}".encode()}


def dora_as(srv: Server, n: int, opts: dict | None = None, now: float = 1000.0) -> Message | None:
    """DISCOVER then REQUEST with the same options; the ACK, or None when no offer came."""
    out = handle(srv, discover(n, opts), now)
    if not out.replies:
        return None
    ack = reply(handle(srv, request(n, reply(out).yiaddr, opts=opts), now))
    assert ack.msg_type == codec.ACK, ack
    return ack


def test_a_phone_is_who_says_so_in_option_60_or_12():
    m = "00aabbcc0001"
    assert is_phone(m, "Cisco Systems, Inc. IP Phone CP-7965G\x00", None)
    assert is_phone(m, LOADER_VC.decode(), None)                          # the old loader sends no model
    assert is_phone(m, None, "SEP00AABBCC0001") and is_phone(m, None, "sep00aabbcc0001")
    assert not is_phone(m, None, "SEP00AABBCC0002")                        # another MAC's name
    assert not is_phone(m, "MSFT 5.0", "laptop") and not is_phone(m, "udhcp 1.35.0", None)
    assert not is_phone(m, None, None)


def test_others_get_only_their_share_and_short_leases_phones_the_whole_pool():
    srv = Server(SHARES)
    laptops = [dora_as(srv, n) for n in (1, 2)]
    assert all(laptops) and {struct.unpack("!I", a.options[51])[0] for a in laptops} == {60}
    out = handle(srv, discover(3))
    assert not out.replies and out.dropped[0] == "share" and srv.counters["others_refused"] == 1
    assert ev.DHCP_EXHAUSTED not in [k for k, _, _ in out.events]      # phones are still served: not exhausted
    status = srv.pool_status(1000.0)
    assert (status["others"], status["others_free"], status["others_full"], status["exhausted"]) == (2, 0, True, False)
    phones = [dora_as(srv, n, phone_opts(n)) for n in range(10, 18)]
    assert all(phones) and {struct.unpack("!I", a.options[51])[0] for a in phones} == {600}
    assert len({a.yiaddr for a in laptops + phones}) == 10
    out = handle(srv, discover(18, phone_opts(18)))
    assert not out.replies and out.events[-1][0] == ev.DHCP_EXHAUSTED and out.events[-1][2]["phone"]
    status = srv.pool_status(1000.0)
    assert (status["phones"], status["others"], status["free"], status["exhausted"]) == (8, 2, 0, True)
    # A laptop's lease ends after its short time; its address goes to whoever comes next.
    assert dora_as(srv, 18, phone_opts(18), now=1061.0).yiaddr in {a.yiaddr for a in laptops}


def test_a_loader_and_a_sep_name_are_phones_for_the_pool():
    srv = Server(ServerSettings(**{**SHARES.__dict__, "others_share": "0"}))
    assert handle(srv, discover(1)).replies == []
    assert dora_as(srv, 2, {60: LOADER_VC}) and dora_as(srv, 3, {12: b"SEP00AABBCC0003"})
    assert not handle(srv, discover(4, {12: b"SEP00AABBCC0003"})).replies       # not its own MAC's name


def test_init_reboot_of_a_device_past_its_share_is_naked():
    srv = Server(SHARES)
    assert dora_as(srv, 1) and dora_as(srv, 2)
    nak = reply(handle(srv, request(3, "10.9.0.15", server=None)))
    assert nak.msg_type == codec.NAK and b"share" in nak.options[56]
    assert reply(handle(srv, request(4, "10.9.0.15", server=None, opts=phone_opts(4)))).msg_type == codec.ACK
    # a device that holds a lease renews it whatever the share
    assert reply(handle(srv, request(1, server=None, ciaddr="10.9.0.10"), now=1030.0)).msg_type == codec.ACK


def test_unanswered_offers_to_others_are_taken_back_fast():
    srv = Server(SHARES)
    first = reply(handle(srv, discover(1))).yiaddr
    reply(handle(srv, discover(2), now=1000.5))
    assert not handle(srv, discover(3), now=1000.6).replies                   # both offers still young
    taken = reply(handle(srv, discover(3), now=1000.0 + leasesmod.OTHERS_OFFER_MIN_SECONDS + 0.1))
    assert taken.yiaddr == first                                              # the oldest went to the newcomer
    assert reply(handle(srv, request(1, first), now=1001.2)).msg_type == codec.NAK
    # unanswered, an offer to another device lapses after a few seconds (a phone's is held 30 s)
    assert srv.book.by_mac["00aabbcc0003"].expires == 1001.1 + leasesmod.OTHERS_OFFER_HOLD_SECONDS
    assert srv.pool_status(1000.6 + leasesmod.OTHERS_OFFER_HOLD_SECONDS + 1)["others"] == 0
    phone = reply(handle(srv, discover(9, phone_opts(9)), now=1002.0))
    assert srv.book.by_mac["00aabbcc0009"].expires == 1002.0 + leasesmod.OFFER_HOLD_SECONDS and phone.yiaddr


def decline(n: int, ip: str) -> Message:
    return Message(xid=n, chaddr=mac(n), options={53: bytes([codec.DECLINE]), 50: codec.ip_bytes(ip),
                                                  54: codec.ip_bytes(STATION)})


def test_decline_from_a_mac_the_address_was_not_given_to_is_dropped():
    srv = Server(SHARES)
    ip = dora_as(srv, 10, phone_opts(10)).yiaddr
    srv.book.take_pending()
    for n in (1, 2, 3):                                           # strangers, one of them never even asked
        if n < 3:
            handle(srv, discover(n))
        out = handle(srv, decline(n, ip))
        assert not out.events and out.dropped and "not offered or leased to it" in out.dropped[1]
    assert srv.counters["declines_dropped"] == 3 and srv.counters["declines"] == 0
    assert not srv.book.conflicted(ip, 1001.0) and not srv.book.take_pending()
    # the phone reboots (INIT-REBOOT) and keeps its address
    assert reply(handle(srv, request(10, ip, server=None, opts=phone_opts(10)), now=1100.0)).msg_type == codec.ACK
    # the phone itself may decline it (an ARP answer after the ACK): quarantined
    out = handle(srv, decline(10, ip), now=1101.0)
    assert out.events[-1][0] == ev.DHCP_DECLINE and srv.book.conflicted(ip, 1102.0)


def test_quarantines_a_device_causes_count_in_its_share_and_exhaustion_counts_quarantines():
    srv = Server(SHARES)
    declined = []
    for n in range(1, 6):                                  # declining address after address
        ack = dora_as(srv, n, now=1000.0 + n * 2)
        if ack is None:
            break
        handle(srv, decline(n, ack.yiaddr), now=1000.0 + n * 2)
        declined.append(ack.yiaddr)
    assert len(declined) == 2                              # its share, then nothing
    status = srv.pool_status(1020.0)
    assert (status["quarantined"], status["others_free"], status["free"]) == (2, 0, 8)
    phones = [dora_as(srv, n, phone_opts(n), now=1020.0) for n in range(10, 18)]
    assert all(phones) and not {a.yiaddr for a in phones} & set(declined)
    status = srv.pool_status(1020.0)
    assert status["exhausted"] and status["used"] == 8 and status["quarantined"] == 2    # used < size, yet exhausted
    assert srv.pool_status(1000.0 + leasesmod.CONFLICT_SECONDS + 30)["quarantined"] == 0


def test_an_answered_ping_quarantine_makes_the_pool_exhausted_for_phones():
    srv = Server(SETTINGS)
    for n in (1, 2, 3):
        dora_as(srv, n, phone_opts(n))
    for ip in ("10.9.0.13", "10.9.0.14"):
        assert srv.book.mark_conflict(ip, 1000.0, "answered a ping")
    status = srv.pool_status(1000.0)
    assert status["used"] == 3 and status["quarantined"] == 2 and status["free"] == 0 and status["exhausted"]
    assert handle(srv, discover(4, phone_opts(4))).events[-1][0] == ev.DHCP_EXHAUSTED


@pytest.mark.parametrize("text,size,count", [("25%", 200, 50), ("20%", 10, 2), ("1%", 5, 1), ("0%", 5, 0),
                                             ("0", 5, 0), ("40", 200, 40), ("100%", 7, 7), (" 12.5% ", 8, 1)])
def test_share_is_a_percentage_or_a_count(text, size, count):
    assert share_count(text, size) == count


@pytest.mark.parametrize("text", ["", "lots", "-5", "150%", "2.5", "201", "25 %%"])
def test_a_share_that_means_nothing_is_refused(text):
    with pytest.raises(ValueError):
        share_count(text, 200)


def test_a_restarted_book_knows_whose_leases_count_in_the_share(tmp_path):
    store = Store(tmp_path / "station.db")
    first = Server(SHARES)
    laptop = dora_as(first, 1).yiaddr
    dora_as(first, 10, phone_opts(10))
    store.leases.save_changes(first.book.take_pending())
    book = LeaseBook(SHARES.pool_start, SHARES.pool_end, excluded={STATION})
    book.load(*store.leases.book())
    second = Server(SHARES, book)
    assert second.pool_status(1010.0)["phones"] == 1 and second.pool_status(1010.0)["others"] == 1
    assert dora_as(second, 2, now=1010.0) and not handle(second, discover(3), now=1010.0).replies
    assert dora_as(second, 1, now=1010.0).yiaddr == laptop


# -- persistence ------------------------------------------------------------------------------------
def test_bound_leases_survive_a_restart_without_duplicates(tmp_path):
    store = Store(tmp_path / "station.db")
    first = Server(SETTINGS)
    ips = {n: dora(first, n) for n in (1, 2)}
    reply(handle(first, discover(3)))                      # an offer: not durable, not written
    store.leases.save_changes(first.book.take_pending())
    assert {r["ip"] for r in store.leases.all()} == set(ips.values())

    book = LeaseBook(SETTINGS.pool_start, SETTINGS.pool_end, excluded={STATION})
    book.load(*store.leases.book())
    second = Server(SETTINGS, book)
    newcomer = reply(handle(second, discover(9, {50: codec.ip_bytes(ips[1])}), now=1010.0)).yiaddr
    assert newcomer not in ips.values()
    assert reply(handle(second, request(9, ips[2], server=None), now=1010.0)).msg_type == codec.NAK
    assert reply(handle(second, discover(2), now=1010.0)).yiaddr == ips[2]
    assert dora(second, 1, now=1010.0) == ips[1]


def test_reusing_an_expired_address_replaces_the_old_row(tmp_path):
    store = Store(tmp_path / "station.db")
    small = ServerSettings(**{**SETTINGS.__dict__, "pool_end": "10.9.0.10"})
    srv = Server(small)
    ip = dora(srv, 1)
    later = 1000.0 + 601
    assert dora(srv, 2, now=later) == ip
    store.leases.save_changes(srv.book.take_pending())
    rows = store.leases.all()
    assert [(r["mac"], r["ip"]) for r in rows] == [("00aabbcc0002", ip)]


# -- guard ------------------------------------------------------------------------------------------
def offer_from(server: str, xid: int = 1) -> Message:
    return Message(op=codec.BOOTREPLY, xid=xid, chaddr=mac(1), yiaddr="10.9.0.50",
                   options={53: bytes([codec.OFFER]), 54: codec.ip_bytes(server)})


def test_guard_probe_is_a_discover_from_a_fresh_local_mac():
    g = Guard("refuse", STATION, 60, rng=random.Random(1))
    a = codec.parse(g.probe(0.0))
    b = codec.parse(g.probe(100.0))
    assert a.msg_type == codec.DISCOVER and a.broadcast
    assert a.chaddr[0] & 0x02 and not a.chaddr[0] & 0x01      # locally administered, unicast
    assert a.mac != b.mac and a.xid != b.xid
    assert g.is_probe(a) and not g.is_probe(discover(1))


def test_guard_refuses_until_first_window_then_serves_when_clear():
    g = Guard("refuse", STATION, 60)
    assert g.due(0.0) and not g.may_offer(0.0) and g.status_name(0.0) == "checking"
    g.probe(0.0)
    assert not g.due(1.0)
    g.tick(1.0)
    assert not g.may_offer(1.0)
    events = g.tick(guardmod.PROBE_WINDOW + 0.1)
    assert g.may_offer(5.0) and events[0][1]["status"] == "clear"
    assert not g.due(30.0) and g.due(60.0)


def test_guard_sees_other_server_and_refuses_or_warns():
    for mode, status, serving in (("refuse", "refusing", False), ("warn", "warning", True)):
        g = Guard(mode, STATION, 60)
        g.probe(0.0)
        events = g.observe_reply(offer_from("10.9.0.200"), "10.9.0.200", 1.0)
        assert events and events[0][1]["servers"] == ["10.9.0.200"] and events[0][1]["status"] == status
        g.tick(5.0)
        assert g.may_offer(5.0) is serving


def test_guard_ignores_own_offers_and_client_requests_count():
    g = Guard("refuse", STATION, 60)
    g.probe(0.0)
    assert g.observe_reply(offer_from(STATION), STATION, 1.0) == []
    g.tick(5.0)
    assert g.may_offer(5.0)
    assert g.observe_request("10.9.0.201", 6.0)[0][1]["servers"] == ["10.9.0.201"]
    assert not g.may_offer(6.0)


def test_guard_clears_when_probe_goes_unanswered():
    g = Guard("refuse", STATION, 10)
    g.probe(0.0)
    g.observe_reply(offer_from("10.9.0.200"), "10.9.0.200", 1.0)
    g.tick(5.0)
    assert not g.may_offer(5.0)
    g.observe_request("10.9.0.200", 6.0)                     # still a probe-confirmed server
    assert g.due(10.0)
    g.probe(10.0)
    events = g.tick(14.5)
    assert g.may_offer(14.5) and events[-1][1]["status"] == "clear"


def test_guard_off_never_probes_or_refuses():
    g = Guard("off", STATION, 60)
    assert not g.due(0.0) and g.may_offer(0.0)
    assert g.observe_reply(offer_from("10.9.0.200"), "10.9.0.200", 1.0) == []
    with pytest.raises(ValueError):
        Guard("maybe", STATION, 60)


# -- property: whatever clients send, no address is ever bound to two clients -------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

POOL_IPS = [f"10.9.0.{n}" for n in range(10, 15)] + ["10.9.0.99", "192.168.0.5"]
operations = st.lists(st.tuples(
    st.sampled_from(["discover", "select", "init-reboot", "renew", "rebind", "decline", "release", "foreign"]),
    st.integers(min_value=1, max_value=8),            # which client
    st.sampled_from(POOL_IPS),
    st.floats(min_value=0, max_value=400),            # time step
), max_size=60)


@given(operations)
@settings(max_examples=300, deadline=None)
def test_property_no_address_is_ever_bound_to_two_clients(ops):
    srv = Server(SETTINGS)
    now = 1000.0
    acked: dict[str, tuple[str, float]] = {}           # ip -> (mac, expires) as seen on the wire
    for op, n, ip, step in ops:
        now += step
        if op == "discover":
            msg = discover(n, {50: codec.ip_bytes(ip)})
        elif op == "select":
            msg = request(n, ip)
        elif op == "init-reboot":
            msg = request(n, ip, server=None)
        elif op in ("renew", "rebind"):
            msg = request(n, server=None, ciaddr=ip, flags=codec.BROADCAST_FLAG if op == "rebind" else 0)
        elif op == "decline":
            msg = Message(xid=n, chaddr=mac(n), options={53: bytes([codec.DECLINE]), 50: codec.ip_bytes(ip)})
        elif op == "release":
            msg = Message(xid=n, chaddr=mac(n), ciaddr=ip, options={53: bytes([codec.RELEASE])})
        else:
            msg = request(n, ip, server="10.9.0.200")
        out = handle(srv, msg, now)
        for r in out.replies:
            m = codec.parse(r.data)
            if m.msg_type == codec.ACK and m.yiaddr != "0.0.0.0":
                holder = acked.get(m.yiaddr)
                assert holder is None or holder[0] == m.mac or holder[1] <= now, (m.yiaddr, holder, m.mac)
                assert srv.book.in_pool(m.yiaddr)
                acked = {k: v for k, v in acked.items() if v[0] != m.mac}
                acked[m.yiaddr] = (m.mac, now + SETTINGS.lease_seconds)
            if m.msg_type == codec.OFFER:
                holder = acked.get(m.yiaddr)
                assert holder is None or holder[0] == m.mac or holder[1] <= now
        if op == "release":
            acked = {k: v for k, v in acked.items() if not (v[0] == mac(n).hex() and k == ip)}
        if op == "decline":
            acked = {k: v for k, v in acked.items() if not (v[0] == mac(n).hex() and k == ip)}
        bound = [lease for lease in srv.book.by_mac.values() if lease.state == "bound" and lease.expires > now]
        assert len({lease.ip for lease in bound}) == len(bound)


def test_unreadable_lease_rows_are_skipped_on_load(tmp_path):
    store = Store(tmp_path / "station.db")
    with store._db.transaction() as conn:
        conn.execute("INSERT INTO leases(mac, ip, state, expires, updated) VALUES ('00aabbcc0001', 'garbage', "
                     "'bound', 99999, 0)")
        conn.execute("INSERT INTO leases(mac, ip, state, expires, updated) VALUES ('00aabbcc0002', '10.9.0.10', "
                     "'bound', 99999, 0)")
    book = LeaseBook(SETTINGS.pool_start, SETTINGS.pool_end, excluded={STATION})
    book.load(*store.leases.book())
    assert set(book.by_mac) == {"00aabbcc0002"}
    assert reply(handle(Server(SETTINGS, book), discover(3))).yiaddr == "10.9.0.11"
