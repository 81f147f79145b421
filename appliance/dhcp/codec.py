"""DHCPv4 wire format (RFC 2131 / 2132 / 3396), sans-I/O.

Written by hand because the codec is small and the Python DHCP libraries are
stale (see docs/peers survey).  `parse()` is the only place untrusted bytes are
read: anything that does not fit the format raises `MalformedPacket` with a
reason, never another exception, so the socket loop can drop, count and log it.
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
HEADER_LEN = HEADER.size  # 236
MIN_PACKET = HEADER_LEN + len(MAGIC)
BOOTP_MIN_SIZE = 300      # RFC 1542: some relays and clients drop shorter BOOTP messages
DEFAULT_MAX_SIZE = 576    # RFC 2131: every client accepts a message this long
MAX_PRL = 255             # more codes than exist: a "huge option 55" is hostile, not a client

BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
TYPE_NAMES = {DISCOVER: "DISCOVER", OFFER: "OFFER", REQUEST: "REQUEST", DECLINE: "DECLINE", ACK: "ACK",
              NAK: "NAK", RELEASE: "RELEASE", INFORM: "INFORM"}
BROADCAST_FLAG = 0x8000

PAD, END = 0, 255
END_BYTE = bytes((END,))
OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN = 1, 3, 6, 12, 15
OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD, OPT_MSG_TYPE, OPT_SERVER_ID = 50, 51, 52, 53, 54
OPT_PRL, OPT_MESSAGE, OPT_MAX_SIZE, OPT_T1, OPT_T2 = 55, 56, 57, 58, 59
OPT_VENDOR_CLASS, OPT_CLIENT_ID, OPT_TFTP_NAME, OPT_TFTP_SERVERS = 60, 61, 66, 150

KNOWN_OPTIONS: dict[int, str] = {
    int(code): name for code, name in
    json.loads((Path(__file__).with_name("options.json")).read_text())["known"].items()
}


class MalformedPacket(ValueError):
    """The bytes are not a DHCP message we can trust; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Message:
    op: int = BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    chaddr: bytes = b"\x00" * 6
    sname: bytes = b""
    file: bytes = b""
    options: dict[int, bytes] = field(default_factory=dict)

    # -- typed accessors (never raise on odd values: the server decides) --------------
    @property
    def msg_type(self) -> int | None:
        value = self.options.get(OPT_MSG_TYPE)
        return value[0] if value and len(value) == 1 else None

    @property
    def mac(self) -> str:
        return self.chaddr[:6].hex()

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    def ip_option(self, code: int) -> str | None:
        value = self.options.get(code)
        return ip_text(value) if value is not None and len(value) == 4 else None

    def text_option(self, code: int) -> str | None:
        value = self.options.get(code)
        if value is None:
            return None
        return value.rstrip(b"\x00").decode("utf-8", "replace")

    @property
    def prl(self) -> list[int]:
        return list(self.options.get(OPT_PRL, b""))

    @property
    def max_size(self) -> int:
        value = self.options.get(OPT_MAX_SIZE)
        if value is None or len(value) != 2:
            return DEFAULT_MAX_SIZE
        return max(DEFAULT_MAX_SIZE, struct.unpack("!H", value)[0])

    def unknown_options(self) -> list[int]:
        return sorted(code for code in self.options if code not in KNOWN_OPTIONS)


_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# One C-level match instead of a Python check per octet: addresses are converted several times per
# packet (header fields, pool arithmetic), and the per-octet checks were the DHCP hot path's largest cost.
_DOTTED_QUAD = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def ip_bytes(text: str) -> bytes:
    """Dotted quad only (as inet_pton, unlike inet_aton: no leading zeros, no short forms); ValueError otherwise."""
    if not isinstance(text, str) or _DOTTED_QUAD.fullmatch(text) is None:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bytes(map(int, text.split(".")))


def ip_text(raw: bytes) -> str:
    if len(raw) != 4:
        raise ValueError(f"an IPv4 address is 4 bytes, not {len(raw)}")
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


ZERO_IP = "0.0.0.0"
_ZERO_BYTES = bytes(4)
# Addresses a reply's header repeats (zero, the station, a relay), packed once each; bounded, first come.
_PACKED: dict[str, bytes] = {ZERO_IP: _ZERO_BYTES}
_PACKED_MAX = 64


def _header_ip_text(raw: bytes) -> str:
    """ip_text for a header field, most of which are zero in any given message."""
    return ZERO_IP if raw == _ZERO_BYTES else ip_text(raw)


def _header_ip_bytes(text: str) -> bytes:
    """ip_bytes for a header field that repeats from message to message."""
    packed = _PACKED.get(text)
    if packed is None:
        packed = ip_bytes(text)
        if len(_PACKED) < _PACKED_MAX:
            _PACKED[text] = packed
    return packed


def ip_int(text: str) -> int:
    return int.from_bytes(ip_bytes(text), "big")


def int_ip(number: int) -> str:
    return ip_text(number.to_bytes(4, "big"))


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac)


# -- parsing ----------------------------------------------------------------------------
def parse(data: bytes) -> Message:
    """Bytes -> Message, or MalformedPacket(reason)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedPacket("not bytes")
    data = bytes(data)
    if len(data) < MIN_PACKET:
        raise MalformedPacket(f"truncated: {len(data)} bytes, need at least {MIN_PACKET}")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
     file) = HEADER.unpack_from(data)
    if data[HEADER_LEN:MIN_PACKET] != MAGIC:
        raise MalformedPacket("bad magic cookie")
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedPacket(f"bad op {op}")
    if hlen > 16:
        raise MalformedPacket(f"hardware address length {hlen} > 16")
    options: dict[int, bytes] = {}
    _scan_options(data, MIN_PACKET, len(data), options, "options")
    overload = options.get(OPT_OVERLOAD, b"")
    if overload:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise MalformedPacket(f"bad overload option {overload.hex()}")
        # RFC 3396 order: options field, then file, then sname.
        if overload[0] & 1:
            _scan_options(file, 0, len(file), options, "file field")
        if overload[0] & 2:
            _scan_options(sname, 0, len(sname), options, "sname field")
    if len(options.get(OPT_PRL, b"")) > MAX_PRL:
        raise MalformedPacket(f"parameter request list too long ({len(options[OPT_PRL])} codes)")
    msg_type = options.get(OPT_MSG_TYPE)
    if msg_type is not None and (len(msg_type) != 1 or not 1 <= msg_type[0] <= 18):
        raise MalformedPacket(f"bad message type {msg_type.hex()}")
    return Message(
        op=op, htype=htype, hlen=hlen, hops=hops, xid=xid, secs=secs, flags=flags,
        ciaddr=_header_ip_text(ciaddr), yiaddr=_header_ip_text(yiaddr), siaddr=_header_ip_text(siaddr),
        giaddr=_header_ip_text(giaddr),
        chaddr=chaddr[:hlen] if hlen else chaddr[:6],
        sname=b"" if overload and overload[0] & 2 else sname.split(b"\x00", 1)[0],
        file=b"" if overload and overload[0] & 1 else file.split(b"\x00", 1)[0],
        options=options,
    )


def _scan_options(buf: bytes, pos: int, end: int, options: dict[int, bytes], where: str) -> None:
    """Collect code -> value from buf[pos:end] into `options`; repeated codes concatenate (RFC 3396)."""
    while pos < end:
        code = buf[pos]
        if code == PAD:
            pos += 1
            continue
        if code == END:
            return
        if pos + 1 >= end:
            raise MalformedPacket(f"option {code} in {where} has no length byte")
        length = buf[pos + 1]
        start = pos + 2
        if start + length > end:
            raise MalformedPacket(f"option {code} length {length} runs past the end of the {where}")
        if code == OPT_OVERLOAD and where != "options":
            pos = start + length
            continue
        value = buf[start:start + length]
        earlier = options.get(code)
        options[code] = value if earlier is None else earlier + value
        pos = start + length
    # A missing END is tolerated: some embedded clients omit it, and nothing is lost.


# -- serializing --------------------------------------------------------------------------
def encode_option(code: int, value: bytes) -> bytes:
    """One option; values over 255 bytes are split into several instances (RFC 3396)."""
    if len(value) <= 255:
        return bytes((code, len(value))) + value
    out = bytearray()
    for i in range(0, len(value), 255):
        part = value[i:i + 255]
        out += bytes((code, len(part))) + part
    return bytes(out)


def encode_options(options: dict[int, bytes], max_size: int | None = None,
                   keep: frozenset[int] | set[int] = frozenset()) -> bytes:
    """The options field (after the magic cookie, END included), options in dict order.

    With `max_size` (option 57), options not in `keep` are dropped from the end until the message
    fits (message type and server id always stay).
    """
    codes = [code for code in options if code not in (PAD, END)]
    encoded = [encode_option(code, options[code]) for code in codes]
    if max_size is not None:
        limit = max(max_size, DEFAULT_MAX_SIZE) - 28  # IP + UDP headers count against option 57
        total = MIN_PACKET + 1 + sum(map(len, encoded))
        if total > limit:
            must = {OPT_MSG_TYPE, OPT_SERVER_ID} | set(keep)
            for idx in range(len(encoded) - 1, -1, -1):
                if total <= limit:
                    break
                if codes[idx] not in must:
                    total -= len(encoded[idx])
                    encoded[idx] = b""
    encoded.append(END_BYTE)
    return b"".join(encoded)


def serialize(msg: Message, max_size: int | None = None, keep: frozenset[int] | set[int] = frozenset(),
              options_field: bytes | None = None) -> bytes:
    """Message -> bytes.  The options are `encode_options(msg.options, max_size, keep)`, or
    `options_field` when the caller already has that (a server answering many clients alike).
    """
    header = HEADER.pack(
        msg.op, msg.htype, msg.hlen, msg.hops, msg.xid & 0xFFFFFFFF, msg.secs & 0xFFFF, msg.flags & 0xFFFF,
        _header_ip_bytes(msg.ciaddr), ip_bytes(msg.yiaddr), _header_ip_bytes(msg.siaddr),
        _header_ip_bytes(msg.giaddr),
        msg.chaddr[:16].ljust(16, b"\x00"), msg.sname[:64].ljust(64, b"\x00"), msg.file[:128].ljust(128, b"\x00"),
    )
    if options_field is None:
        options_field = encode_options(msg.options, max_size, keep)
    body = header + MAGIC + options_field
    if len(body) < BOOTP_MIN_SIZE:
        body += b"\x00" * (BOOTP_MIN_SIZE - len(body))
    return body
