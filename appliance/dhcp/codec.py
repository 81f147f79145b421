"""DHCPv4 wire format (RFC 2131 / 2132 / 3396), sans-I/O.

Written by hand because the codec is small and the Python DHCP libraries are
stale (see docs/peers survey).  `parse()` is the only place untrusted bytes are
read: anything that does not fit the format raises `MalformedPacket` with a
reason, never another exception, so the socket loop can drop, count and log it.
"""
from __future__ import annotations

import json
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


def ip_bytes(text: str) -> bytes:
    """Dotted quad only (as inet_pton, unlike inet_aton: no leading zeros, no short forms); ValueError otherwise."""
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0")
                                  and int(p) <= 255 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bytes(int(p) for p in parts)


def ip_text(raw: bytes) -> str:
    if len(raw) != 4:
        raise ValueError(f"an IPv4 address is 4 bytes, not {len(raw)}")
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


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
    chunks: dict[int, list[bytes]] = {}
    _scan_options(data, MIN_PACKET, len(data), chunks, "options")
    overload = b"".join(chunks.get(OPT_OVERLOAD, []))
    if overload:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise MalformedPacket(f"bad overload option {overload.hex()}")
        # RFC 3396 order: options field, then file, then sname.
        if overload[0] & 1:
            _scan_options(file, 0, len(file), chunks, "file field")
        if overload[0] & 2:
            _scan_options(sname, 0, len(sname), chunks, "sname field")
    options = {code: b"".join(parts) for code, parts in chunks.items()}
    if len(options.get(OPT_PRL, b"")) > MAX_PRL:
        raise MalformedPacket(f"parameter request list too long ({len(options[OPT_PRL])} codes)")
    msg_type = options.get(OPT_MSG_TYPE)
    if msg_type is not None and (len(msg_type) != 1 or not 1 <= msg_type[0] <= 18):
        raise MalformedPacket(f"bad message type {msg_type.hex()}")
    return Message(
        op=op, htype=htype, hlen=hlen, hops=hops, xid=xid, secs=secs, flags=flags,
        ciaddr=ip_text(ciaddr), yiaddr=ip_text(yiaddr), siaddr=ip_text(siaddr), giaddr=ip_text(giaddr),
        chaddr=chaddr[:hlen] if hlen else chaddr[:6],
        sname=b"" if overload and overload[0] & 2 else sname.split(b"\x00", 1)[0],
        file=b"" if overload and overload[0] & 1 else file.split(b"\x00", 1)[0],
        options=options,
    )


def _scan_options(buf: bytes, pos: int, end: int, chunks: dict[int, list[bytes]], where: str) -> None:
    """Collect (code -> value parts) from buf[pos:end]; repeated codes concatenate (RFC 3396)."""
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
        chunks.setdefault(code, []).append(buf[start:start + length])
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


def serialize(msg: Message, max_size: int | None = None, keep: frozenset[int] | set[int] = frozenset()) -> bytes:
    """Message -> bytes.  Options go in dict order; with `max_size` (option 57), options not in
    `keep` are dropped from the end until the message fits (message type and server id always stay).
    """
    header = HEADER.pack(
        msg.op, msg.htype, msg.hlen, msg.hops, msg.xid & 0xFFFFFFFF, msg.secs & 0xFFFF, msg.flags & 0xFFFF,
        ip_bytes(msg.ciaddr), ip_bytes(msg.yiaddr), ip_bytes(msg.siaddr), ip_bytes(msg.giaddr),
        msg.chaddr[:16].ljust(16, b"\x00"), msg.sname[:64].ljust(64, b"\x00"), msg.file[:128].ljust(128, b"\x00"),
    )
    encoded = [(code, encode_option(code, value)) for code, value in msg.options.items() if code not in (PAD, END)]
    if max_size is not None:
        limit = max(max_size, DEFAULT_MAX_SIZE) - 28  # IP + UDP headers count against option 57
        must = {OPT_MSG_TYPE, OPT_SERVER_ID} | set(keep)
        total = MIN_PACKET + 1 + sum(len(e) for _, e in encoded)
        for idx in range(len(encoded) - 1, -1, -1):
            if total <= limit:
                break
            code, enc = encoded[idx]
            if code not in must:
                total -= len(enc)
                encoded[idx] = (code, b"")
    body = header + MAGIC + b"".join(e for _, e in encoded) + bytes((END,))
    if len(body) < BOOTP_MIN_SIZE:
        body += b"\x00" * (BOOTP_MIN_SIZE - len(body))
    return body
