"""Sans-I/O DHCP client of a simulated Cisco phone: DISCOVER/REQUEST bytes out, replies in.

Built on appliance.dhcp.codec so the station sees what a phone sends: its MAC,
option 60 vendor class, option 12 SEP<MAC>, a PRL asking for 150, and the
broadcast flag (phones have no address yet).
"""
from __future__ import annotations

import os
import socket
import struct
import time

from appliance.dhcp import codec

PRL = bytes([1, 3, 6, 15, 28, 42, 66, 150, 151])


class DhcpClient:
    def __init__(self, mac: str, vendor_class: str, hostname: str):
        self.mac, self.vc, self.hostname = mac, vendor_class, hostname
        self.xid = int.from_bytes(os.urandom(4), "big")
        self.state, self.offer, self.lease = "init", None, None

    def _msg(self, mtype: int, extra: dict[int, bytes]) -> bytes:
        opts = {53: bytes([mtype]), 61: b"\x01" + codec.mac_bytes(self.mac), 60: self.vc.encode("latin-1"),
                12: self.hostname.encode(), 55: PRL, 57: struct.pack("!H", 1500), **extra}
        return codec.serialize(codec.Message(xid=self.xid, flags=0x8000, chaddr=codec.mac_bytes(self.mac), options=opts))

    def discover(self) -> bytes:
        self.state = "selecting"
        return self._msg(1, {})

    def receive(self, data: bytes) -> bytes | None:
        """The next packet to send, or None; `lease` is set once ACKed, state 'nak' on NAK."""
        try:
            msg = codec.parse(data)
        except codec.MalformedPacket:
            return None
        if msg.xid != self.xid or msg.chaddr[:6] != codec.mac_bytes(self.mac):
            return None
        if self.state == "selecting" and msg.msg_type == 2:
            self.offer, self.state = msg, "requesting"
            return self._msg(3, {50: codec.ip_bytes(msg.yiaddr), 54: msg.options.get(54, b"")})
        if self.state == "requesting" and msg.msg_type == 5:
            self.state = "bound"
            self.lease = {"ip": msg.yiaddr, "tftp": msg.ip_option(150) or msg.ip_option(54) or msg.siaddr,
                          "mask": msg.ip_option(1) or "255.255.0.0"}
        elif self.state == "requesting" and msg.msg_type == 6:
            self.state = "nak"
        return None


def acquire(mac: str, vendor_class: str, hostname: str, interface: str | None, timeout: float = 10.0) -> dict | None:
    """One DORA on a socket bound to `interface` (inside the phone's namespace); None on timeout."""
    c = DhcpClient(mac, vendor_class, hostname)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if interface:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.bind(("0.0.0.0", 68))
        deadline = time.monotonic() + timeout
        out = c.discover()
        while time.monotonic() < deadline and c.state not in ("bound", "nak"):
            s.sendto(out, ("255.255.255.255", 67))
            s.settimeout(1.0)
            resend_at = time.monotonic() + 1.0
            while time.monotonic() < min(resend_at, deadline):
                try:
                    data = s.recv(4096)
                except socket.timeout:
                    break
                reply = c.receive(data)
                if reply is not None:
                    out = reply
                    break
                if c.state in ("bound", "nak"):
                    break
    return c.lease


def configure(interface: str, ip: str, mask: str, old: str | None = None) -> None:
    """Put the leased address on the (namespace's) interface, as the phone's own stack would."""
    import ipaddress
    import subprocess
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    if old and old != ip:
        subprocess.run(["ip", "addr", "del", f"{old}/{prefix}", "dev", interface], capture_output=True, timeout=10)
    subprocess.run(["ip", "addr", "replace", f"{ip}/{prefix}", "dev", interface], capture_output=True, timeout=10)
