"""Real-format CDPv2 and LLDP-MED frames, as Cisco phones send them at link-up and every 60 s, for tests.

CDP (Cisco's CDP spec, as Wireshark's packet-cdp.c and lldpd's cdp.c read it): an 802.3 frame to
01:00:0c:cc:cc:cc with an LLC/SNAP header (DSAP/SSAP 0xAA, control 0x03, OUI 00-00-0C, PID 0x2000),
then version 2, TTL, the checksum (RFC 1071 with Cisco's odd-length quirk) and type/length/value
TLVs whose length counts the 4-byte header: Device ID 0x0001 ("SEP001F9EAB59F1"), Port ID 0x0003,
Capabilities 0x0004, Software Version 0x0005, Platform 0x0006 ("Cisco IP Phone 7965").
LLDP (IEEE 802.1AB, ANSI/TIA-1057 for MED): ethertype 0x88cc to 01:80:c2:00:00:0e, 7-bit type +
9-bit length TLVs: chassis ID, port ID, TTL, system name, then organisation TLVs (127) with the
TIA OUI 00-12-BB: capabilities (1), software revision (7), model name (10); End (0).

Commands (root, inside a namespace), for tests/test_neighbours.py:
  python -m tests.lldp_frames send IFACE SPEC|-     send the frames SPEC lists (JSON: [{"kind": "cdp"|"lldp"|"raw", ...}])
  python -m tests.lldp_frames sniff IFACE           print every CDP/LLDP frame seen on IFACE (in or out), one per line
  python -m tests.lldp_frames lease IFACE MAC MODEL one DHCP exchange as that phone (tools.phonesim's client); JSON lease
  python -m tests.lldp_frames config SERVER IP MAC  put IP on lan0, TFTP SEP<MAC>.cnf.xml from SERVER; JSON answer
  python -m tests.lldp_frames get SERVER IP NAME... TFTP those files from IP; JSON {name: bytes or error}
"""
from __future__ import annotations

import json
import socket
import struct
import sys

CDP_DST = bytes.fromhex("01000ccccccc")
LLDP_DST = bytes.fromhex("0180c200000e")
SNAP_CDP = b"\xaa\xaa\x03\x00\x00\x0c\x20\x00"
PHONE_CAPS = 0x00000490          # host, IGMP, VoIP phone, two-port MAC relay


def cdp_checksum(data: bytes) -> int:
    """RFC 1071 over the CDP PDU; an odd last byte is added as Cisco does (sign-extended, lldpd frame.c)."""
    s = 0
    for i in range(0, len(data) - 1, 2):
        s += (data[i] << 8) | data[i + 1]
    if len(data) & 1:
        v = data[-1]
        s += (0xff00 + v - 1) if v & 0x80 else v
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def cdp_tlv(kind: int, value: bytes, length: int | None = None) -> bytes:
    return struct.pack("!HH", kind, len(value) + 4 if length is None else length) + value


def cdp(src: bytes, device: str | bytes, version: str | bytes | None, platform: str | bytes | None,
        port: str = "Port 1", ttl: int = 180, extra: bytes = b"", checksum: int | None = None) -> bytes:
    """One CDPv2 frame from `src` (6 bytes)."""
    def enc(v: str | bytes) -> bytes:
        return v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")

    body = cdp_tlv(0x0001, enc(device)) + cdp_tlv(0x0003, port.encode()) + cdp_tlv(0x0004, struct.pack("!I", PHONE_CAPS))
    if version is not None:
        body += cdp_tlv(0x0005, enc(version))
    if platform is not None:
        body += cdp_tlv(0x0006, enc(platform))
    body += extra
    pdu = bytes([2, ttl]) + b"\0\0" + body
    pdu = pdu[:2] + struct.pack("!H", cdp_checksum(pdu) if checksum is None else checksum) + pdu[4:]
    payload = SNAP_CDP + pdu
    return CDP_DST + src + struct.pack("!H", len(payload)) + payload


def lldp_tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", (kind << 9) | len(value)) + value


def med_tlv(subtype: int, value: bytes) -> bytes:
    return lldp_tlv(127, b"\x00\x12\xbb" + bytes([subtype]) + value)


def lldp_med(src: bytes, software: str, model: str = "CP-7965G", name: str | None = None, chassis_ip: str | None = None,
             ttl: int = 180) -> bytes:
    """An LLDP-MED frame as a Cisco phone sends it: chassis ID (its address, or its MAC), port ID "<MAC>:P1"."""
    if chassis_ip:
        chassis = lldp_tlv(1, b"\x05\x01" + socket.inet_aton(chassis_ip))    # network address, IPv4
    else:
        chassis = lldp_tlv(1, b"\x04" + src)                               # MAC address
    body = chassis + lldp_tlv(2, b"\x07" + (src.hex().upper() + ":P1").encode()) + lldp_tlv(3, struct.pack("!H", ttl))
    body += lldp_tlv(5, (name or "SEP" + src.hex().upper()).encode())
    body += lldp_tlv(7, struct.pack("!HH", 0x0024, 0x0024))                 # system capabilities: telephone, bridge
    body += med_tlv(1, struct.pack("!HB", 0x0033, 3))                       # MED capabilities, class III endpoint
    body += med_tlv(7, software.encode()) + med_tlv(10, model.encode()) + med_tlv(9, b"Cisco Systems, Inc.")
    body += lldp_tlv(0, b"")
    return LLDP_DST + src + b"\x88\xcc" + body


def frame(spec: dict) -> bytes:
    src = bytes.fromhex(spec["src"])
    if spec["kind"] == "cdp":       # "<field>_hex" gives a field as raw bytes (non-ASCII, NUL)
        def field(name: str):
            return bytes.fromhex(spec[name + "_hex"]) if name + "_hex" in spec else spec.get(name)
        extra = bytes.fromhex(spec.get("extra", ""))
        f = cdp(src, field("device"), field("version"), field("platform"), spec.get("port", "Port 1"),
                spec.get("ttl", 180), extra, spec.get("checksum"))
        return f[:spec["truncate"]] if "truncate" in spec else f
    if spec["kind"] == "lldp":
        return lldp_med(src, spec["software"], spec.get("model", "CP-7965G"), spec.get("name"), spec.get("chassis_ip"))
    return bytes.fromhex(spec["hex"])


def send(iface: str, specs: list[dict]) -> int:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    n = 0
    try:
        for spec in specs:
            for _ in range(int(spec.get("repeat", 1))):
                s.send(frame(spec)[:1514])
                n += 1
    finally:
        s.close()
    return n


def sniff(iface: str) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))    # ETH_P_ALL: in and out
    s.bind((iface, 0))
    print("listening", flush=True)
    while True:
        f = s.recv(65535)
        if f[:6] in (CDP_DST, LLDP_DST) or f[12:14] == b"\x88\xcc":
            print(f[6:12].hex(), f[:6].hex(), len(f), flush=True)


def lease(iface: str, mac: str, model: str) -> dict:
    import random

    from tools.phonesim.dhcp import DhcpClient
    from tools.phonesim.net import acquire
    client = DhcpClient(bytes.fromhex(mac), f"Cisco Systems, Inc. IP Phone {model}\0", f"SEP{mac.upper()}",
                        random.getrandbits(32))
    got = acquire(client, iface, timeout=15)
    return {"ip": got.ip, "mask": got.mask, "tftp": got.tftp} if got else {}


def get(server: str, ip: str, names: list[str], iface: str = "lan0") -> dict:
    import subprocess

    from tools.phonesim.net import tftp_get
    subprocess.run(["ip", "addr", "replace", f"{ip}/16", "dev", iface], check=True, capture_output=True, timeout=10)
    out: dict = {}
    for name in names:
        data, why = tftp_get(server, 69, name, source=ip, timeout=1.0, retries=5, limit_s=60)
        out[name] = {"bytes": len(data)} if data is not None else {"error": why}
        if data is not None and name.lower().endswith(".cnf.xml"):
            import re
            m = re.search(rb"<loadInformation[^>]*>([^<]*)</loadInformation>", data)
            out[name]["load"] = m.group(1).decode() if m else None
    return out


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "send":
        print(send(args[0], json.loads(args[1] if args[1] != "-" else sys.stdin.read())))
    elif cmd == "sniff":
        sniff(args[0])
    elif cmd == "lease":
        print(json.dumps(lease(*args)))
    elif cmd == "config":
        print(json.dumps(get(args[0], args[1], [f"SEP{args[2].upper()}.cnf.xml"], *args[3:4])))    # [IFACE]
    elif cmd == "get":
        print(json.dumps(get(args[0], args[1], args[2:])))
    else:
        raise SystemExit(f"unknown command {cmd}")
