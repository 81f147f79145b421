"""DHCP codec: RFC 2131/2132/3396 details, strict bounds, and property tests (no network)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.dhcp import codec
from appliance.dhcp.codec import MalformedPacket, Message

MAC = bytes.fromhex("001b2c3d4e5f")


def packet(options: bytes, file: bytes = b"", sname: bytes = b"") -> bytes:
    header = codec.HEADER.pack(1, 1, 6, 0, 0x1234, 0, 0, bytes(4), bytes(4), bytes(4), bytes(4),
                               MAC.ljust(16, b"\x00"), sname.ljust(64, b"\x00"), file.ljust(128, b"\x00"))
    return header + codec.MAGIC + options


def test_round_trip_keeps_fields_and_option_order():
    msg = Message(xid=0xDEADBEEF, flags=codec.BROADCAST_FLAG, ciaddr="10.0.0.5", giaddr="10.0.0.254", chaddr=MAC,
                  options={53: b"\x01", 60: b"Cisco Systems, Inc. IP Phone CP-7965G\x00", 55: bytes([1, 66, 150])})
    back = codec.parse(codec.serialize(msg))
    assert back.xid == 0xDEADBEEF and back.broadcast and back.ciaddr == "10.0.0.5" and back.giaddr == "10.0.0.254"
    assert back.mac == "001b2c3d4e5f"
    assert list(back.options) == [53, 60, 55]
    assert back.text_option(60) == "Cisco Systems, Inc. IP Phone CP-7965G"
    assert back.prl == [1, 66, 150]


def test_serialized_reply_is_at_least_bootp_minimum():
    assert len(codec.serialize(Message(options={53: b"\x02"}))) == codec.BOOTP_MIN_SIZE


def test_pad_and_missing_end_are_tolerated():
    msg = codec.parse(packet(b"\x00\x00" + bytes([53, 1, 1]) + b"\x00" + bytes([12, 3]) + b"SEP"))
    assert msg.msg_type == codec.DISCOVER and msg.text_option(12) == "SEP"


def test_bytes_after_end_are_ignored():
    msg = codec.parse(packet(bytes([53, 1, 3, 255, 12, 200])))
    assert msg.msg_type == codec.REQUEST and 12 not in msg.options


def test_long_options_are_concatenated_rfc3396():
    opts = bytes([53, 1, 1, 43, 3]) + b"abc" + bytes([12, 2]) + b"xy" + bytes([43, 2]) + b"de" + b"\xff"
    assert codec.parse(packet(opts)).options[43] == b"abcde"


def test_long_option_is_split_on_output():
    value = bytes(range(256)) * 2  # 512 bytes
    data = codec.serialize(Message(options={53: b"\x02", 121: value}))
    assert data.count(bytes([121, 255])) == 2
    assert codec.parse(data).options[121] == value


@pytest.mark.parametrize("overload, where", [(1, "file"), (2, "sname"), (3, "both")])
def test_option_overload_reads_file_and_sname(overload, where):
    file = bytes([12, 4]) + b"SEPA" + b"\xff"
    sname = bytes([15, 3]) + b"lan" + b"\xff"
    msg = codec.parse(packet(bytes([53, 1, 1, 52, 1, overload]) + b"\xff", file=file, sname=sname))
    assert (msg.text_option(12) == "SEPA") == (where in ("file", "both"))
    assert (msg.text_option(15) == "lan") == (where in ("sname", "both"))
    if overload & 1:
        assert msg.file == b""


def test_overload_concatenation_order_is_options_file_sname():
    file = bytes([43, 2]) + b"cd" + b"\xff"
    sname = bytes([43, 2]) + b"ef" + b"\xff"
    msg = codec.parse(packet(bytes([53, 1, 1, 52, 1, 3, 43, 2]) + b"ab\xff", file=file, sname=sname))
    assert msg.options[43] == b"abcdef"


def test_unknown_options_are_kept_and_listed():
    msg = codec.parse(packet(bytes([53, 1, 1, 224, 2]) + b"hi" + bytes([150, 4, 10, 0, 0, 1]) + b"\xff"))
    assert msg.options[224] == b"hi"
    assert msg.unknown_options() == [224]


def test_max_size_option():
    msg = codec.parse(packet(bytes([53, 1, 1, 57, 2]) + struct.pack("!H", 1500) + b"\xff"))
    assert msg.max_size == 1500
    small = codec.parse(packet(bytes([53, 1, 1, 57, 2]) + struct.pack("!H", 100) + b"\xff"))
    assert small.max_size == codec.DEFAULT_MAX_SIZE


def test_serialize_respects_max_size_but_keeps_essentials():
    options = {53: b"\x05", 54: bytes(4), 1: bytes(4), 150: bytes(8), 224: b"x" * 255, 225: b"y" * 255}
    data = codec.serialize(Message(options=options), max_size=576, keep={150})
    assert len(data) <= 576 - 28
    back = codec.parse(data)
    assert {53, 54, 1, 150} <= set(back.options)


@pytest.mark.parametrize("data, reason", [
    (b"", "truncated"),
    (b"\x01" * 100, "truncated"),
    (packet(b"")[:239], "truncated"),
    (packet(b"")[:236] + b"\x01\x02\x03\x04", "magic cookie"),
    (packet(bytes([53, 1, 1, 60, 200]) + b"abc"), "past the end"),
    (packet(bytes([53, 1, 1, 60])), "no length byte"),
    (packet(bytes([53, 1, 1, 55, 255]) + bytes(255) + bytes([55, 255]) + bytes(255)), "parameter request list"),
    (packet(bytes([53, 2, 1, 1])), "message type"),
    (packet(bytes([53, 1, 99])), "message type"),
    (packet(bytes([53, 1, 1, 52, 1, 7])), "overload"),
    (packet(bytes([53, 1, 1, 52, 1, 1]), file=bytes([12, 200])), "file field"),
    (b"\x07" + packet(bytes([53, 1, 1]))[1:], "bad op"),
])
def test_malformed_packets_raise_malformed_packet_with_reason(data, reason):
    with pytest.raises(MalformedPacket) as info:
        codec.parse(data)
    assert reason in info.value.reason


def test_hardware_length_over_16_is_malformed():
    data = bytearray(packet(bytes([53, 1, 1])))
    data[2] = 17
    with pytest.raises(MalformedPacket, match="hardware address length"):
        codec.parse(bytes(data))


# -- properties ----------------------------------------------------------------------------------
option_codes = st.integers(min_value=1, max_value=254).filter(lambda c: c not in (52, 53, 55))
messages = st.builds(
    Message,
    op=st.sampled_from([1, 2]),
    xid=st.integers(min_value=0, max_value=2**32 - 1),
    secs=st.integers(min_value=0, max_value=65535),
    flags=st.sampled_from([0, codec.BROADCAST_FLAG]),
    ciaddr=st.ip_addresses(v=4).map(str),
    yiaddr=st.ip_addresses(v=4).map(str),
    chaddr=st.binary(min_size=6, max_size=6),
    options=st.dictionaries(option_codes, st.binary(min_size=1, max_size=600), max_size=8).map(
        lambda d: {53: b"\x01", **d}),
)


@given(messages)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_property_serialize_then_parse_is_identity(msg):
    back = codec.parse(codec.serialize(msg))
    assert back.options == msg.options
    assert (back.xid, back.flags, back.ciaddr, back.yiaddr, back.chaddr, back.op) == (
        msg.xid, msg.flags, msg.ciaddr, msg.yiaddr, msg.chaddr, msg.op)


@given(st.binary(max_size=1200))
@settings(max_examples=500)
def test_property_random_bytes_parse_or_raise_malformed_only(data):
    try:
        codec.parse(data)
    except MalformedPacket as exc:
        assert exc.reason


@given(messages, st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_property_corrupted_packets_never_raise_anything_else(msg, data):
    raw = bytearray(codec.serialize(msg))
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[pos] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    try:
        codec.parse(bytes(raw[:cut]))
    except MalformedPacket:
        pass
