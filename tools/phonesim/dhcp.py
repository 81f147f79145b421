"""The phone's DHCP client, sans-I/O: DISCOVER/REQUEST bytes out, OFFER/ACK/NAK bytes in.

What a Cisco phone sends (cisco-phones.md §1.1, §1.3): its MAC, option 60
vendor class (`Cisco Systems, Inc. IP Phone CP-7965G` + NUL), option 12
`SEP<MAC>`, a parameter list from a real fingerprint (1,66,6,3,15,150,35), and
the broadcast flag (it has no address yet).  The TFTP server it uses is option
150, else option 66 (as an address), else siaddr: that precedence is
UNCONFIRMED (§1.2), the order the evidence suggests.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
MAGIC = b"\x63\x82\x53\x63"
PRL = bytes((1, 66, 6, 3, 15, 150, 35))
BOOTP_MIN = 300
_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


@dataclass(frozen=True)
class Lease:
    ip: str
    mask: str
    tftp: str | None
    server_id: str | None
    options: dict | None = None      # every option of the ACK (code -> bytes): MPP phones read 66/160/159/150


def _ip(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw[:4]))


def parse_options(buf: bytes) -> dict[int, bytes]:
    """Options after the magic cookie; repeated codes are concatenated (RFC 3396); stops at END."""
    out: dict[int, bytes] = {}
    off = 0
    while off < len(buf):
        code = buf[off]
        if code == 0:
            off += 1
            continue
        if code == 255 or off + 1 >= len(buf):
            break
        length = buf[off + 1]
        out[code] = out.get(code, b"") + buf[off + 2:off + 2 + length]
        off += 2 + length
    return out


class DhcpClient:
    def __init__(self, mac: bytes, vendor_class: str, hostname: str, xid: int, prl: bytes = PRL):
        if len(mac) != 6:
            raise ValueError("MAC must be 6 bytes")
        self.mac, self.vendor_class, self.hostname, self.xid = mac, vendor_class, hostname, xid
        self.prl = prl
        self.state = "init"          # init -> selecting -> requesting -> bound | nak
        self.lease: Lease | None = None
        self._offer: tuple[bytes, bytes] | None = None    # (yiaddr, server id option)

    def _message(self, mtype: int, extra: list[tuple[int, bytes]]) -> bytes:
        fixed = _FIXED.pack(1, 1, 6, 0, self.xid, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4),
                            self.mac + bytes(10), bytes(64), bytes(128))
        opts = [(53, bytes((mtype,))), (61, b"\x01" + self.mac), (12, self.hostname.encode("ascii")),
                (60, self.vendor_class.encode("latin-1")), (55, self.prl), *extra]
        body = fixed + MAGIC + b"".join(bytes((c, len(v))) + v for c, v in opts) + b"\xff"
        return body + bytes(max(0, BOOTP_MIN - len(body)))

    def discover(self) -> bytes:
        self.state = "selecting"
        return self._message(DISCOVER, [])

    def request(self) -> bytes:
        """The REQUEST for the offer taken (sent again on retransmission)."""
        assert self._offer is not None
        yiaddr, server = self._offer
        return self._message(REQUEST, [(50, yiaddr)] + ([(54, server)] if server else []))

    def receive(self, data: bytes) -> bytes | None:
        """The next packet to send (a REQUEST after an OFFER), else None; `lease` is set on ACK."""
        if len(data) < _FIXED.size + 4 or data[_FIXED.size:_FIXED.size + 4] != MAGIC:
            return None
        op, _, _, _, xid, _, _, _, yiaddr, siaddr, _, chaddr, _, _ = _FIXED.unpack_from(data)
        if op != 2 or xid != self.xid or chaddr[:6] != self.mac:
            return None
        opts = parse_options(data[_FIXED.size + 4:])
        mtype = opts.get(53, b"\0")[:1]
        if self.state == "selecting" and mtype == bytes((OFFER,)):
            self._offer, self.state = (yiaddr, opts.get(54, b"")[:4]), "requesting"
            return self.request()
        if self.state == "requesting" and mtype == bytes((ACK,)):
            self.state = "bound"
            self.lease = Lease(_ip(yiaddr), _ip(opts[1]) if len(opts.get(1, b"")) >= 4 else "255.255.255.0",
                               self._tftp(opts, siaddr), _ip(opts[54]) if len(opts.get(54, b"")) >= 4 else None,
                               opts)
        elif self.state == "requesting" and mtype == bytes((NAK,)):
            self.state = "nak"
        return None

    @staticmethod
    def _tftp(opts: dict[int, bytes], siaddr: bytes) -> str | None:
        if len(opts.get(150, b"")) >= 4:
            return _ip(opts[150])
        try:
            return str(ipaddress.IPv4Address(opts.get(66, b"").rstrip(b"\0").decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            pass
        return _ip(siaddr) if siaddr != bytes(4) else None
