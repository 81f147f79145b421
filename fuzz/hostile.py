"""Malformed-packet corpora replayed against running services, grouped by kind.

Why builders and not only files: a flood and oversized packets are cheap to
describe and large to store; the fixed seeds in fuzz/corpus/<target>/ are
appended so a past finding is replayed every run.
"""
from __future__ import annotations

import pathlib
import random
import struct

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def _seeds(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / target).glob("*")) if p.is_file()]


def _dns_query(name: bytes, qtype: int = 1, qclass: int = 1, qdcount: int = 1, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(part)]) + part for part in name.split(b".") if part) + b"\x00"
    return struct.pack("!HHHHHH", 0x1234, flags, qdcount, 0, 0, 0) + labels + struct.pack("!HH", qtype, qclass)


def dns(rng: random.Random) -> dict[str, list[bytes]]:
    good = _dns_query(b"recovery")
    return {
        "truncated": [good[:n] for n in range(len(good))],
        "oversized": [good + b"\x00" * 4000, _dns_query(b"a" * 63 + b"." + b"b" * 63) + bytes(60000)],
        "bad_options": [
            struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 1) + b"\x00\x00\x01\x00\x01" + b"\x00\x00\x29\x10\x00",
            struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
            struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"x" * 10,            # label past the end
            struct.pack("!HHHHHH", 1, 0x8100, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",        # a response, not a query
        ],
        "non_utf8_names": [_dns_query(b"caf\xe9\xff"), _dns_query(b"\x00\x80\xfe.recovery"),
                           _dns_query(b"<script>alert(1)</script>")],
        "out_of_range": [_dns_query(b"recovery", qtype=65535), _dns_query(b"recovery", qclass=65535),
                         _dns_query(b"recovery", qdcount=65535), _dns_query(b"recovery", flags=0x7800),
                         _dns_query(b"recovery", qtype=0)],
        "random": [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))) for _ in range(50)],
        "corpus": _seeds("dns_packets"),
    }


def tftp(rng: random.Random, big_name: str) -> dict[str, list[bytes]]:
    good = b"\x00\x01" + big_name.encode() + b"\x00octet\x00blksize\x001428\x00tsize\x000\x00"
    return {
        "truncated": [good[:n] for n in range(0, len(good), 3)],
        "oversized": [b"\x00\x01" + b"A" * 70000 + b"\x00octet\x00", good + b"x" * 8000],
        "bad_options": [good[:-1] + b"blksize\x00abc\x00", good + b"windowsize\x00-1\x00",
                        good + b"blksize\x00", good + b"tsize\x00" + b"9" * 400 + b"\x00",
                        b"\x00\x01" + big_name.encode() + b"\x00bogusmode\x00"],
        "non_utf8_names": [b"\x00\x01caf\xe9\xff.bin\x00octet\x00", b"\x00\x01\xc0\xaf\xc0\xae.bin\x00octet\x00"],
        "out_of_range": [good[:-1] + b"blksize\x001\x00", good[:-1] + b"blksize\x0099999999999999\x00",
                         b"\x00\x09x\x00octet\x00", b"\xff\xff", b"\x00\x04\xff\xff", b"\x00\x05\x00\x63oops\x00"],
        "random": [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400))) for _ in range(50)],
        "corpus": _seeds("tftp_packets"),
    }


def traversal_names(root_name: str) -> list[bytes]:
    """Names that try to leave the root; `root_name` is the root directory's own name (for ../root/.. tricks)."""
    plain = ["../secret.txt", "../../secret.txt", "..\\secret.txt", "..\\..\\secret.txt", "/../secret.txt",
             "/etc/passwd", "//etc/passwd", "\\etc\\passwd", "../" * 40 + "etc/passwd",
             f"../{root_name}/../secret.txt", "./../secret.txt", "sub/../../secret.txt",
             "escape.txt", "escdir/secret.txt", "escdir/../../secret.txt",
             "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt", "..%2fsecret.txt", "%2E%2E%5Csecret.txt",
             "..%252fsecret.txt", "..%c0%afsecret.txt", "....//secret.txt", "..;/secret.txt",
             "A" * 4096, "a/" * 2000 + "x", "ready.txt/../../secret.txt"]
    names = [n.encode() for n in plain]
    names += [b"../secret.txt\x00ready.txt", b"ready.txt\x00../secret.txt", b"..\xc0\xafsecret.txt"]
    return names


def _dhcp(options: bytes, op: int = 1, htype: int = 1, hlen: int = 6, mac: bytes = b"\x02\xde\xad\xbe\xef\x01",
          cookie: bytes = b"\x63\x82\x53\x63") -> bytes:
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, htype, hlen, 0, 0x12345678, 0, 0x8000, bytes(4), bytes(4),
                       bytes(4), bytes(4), mac.ljust(16, b"\x00"), bytes(64), bytes(128))
    return head + cookie + options


def dhcp(rng: random.Random) -> dict[str, list[bytes]]:
    discover = b"\x35\x01\x01\x37\x03\x01\x03\x96"
    good = _dhcp(discover + b"\xff")
    return {
        "truncated": [good[:n] for n in range(0, len(good), 7)],
        "oversized": [good[:-1] + b"\x2b\xff" + b"\x00" * 255 + b"\xff" + bytes(6000),
                      _dhcp(discover + b"\x0c\xff" + b"A" * 255 + b"\xff")],
        "bad_options": [_dhcp(b"\x35\x05\x01"), _dhcp(discover + b"\x0c\x00\xff"), _dhcp(discover + b"\x3d\xfe\x01"),
                        _dhcp(b"\x35\x01\x01" * 200 + b"\xff"), _dhcp(discover + b"\x34\x01\x03\xff"),
                        _dhcp(discover + b"\xff", cookie=b"\x00\x00\x00\x00"), _dhcp(b"\x37\x00\xff")],
        "non_utf8_names": [_dhcp(discover + b"\x0c\x06caf\xe9\xff\xfe\xff"),
                           _dhcp(discover + b"\x3c\x05\xc0\xaf\x80\x81\x00\xff"),
                           _dhcp(discover + b"\x0c\x19<script>alert(1)</script>\xff")],
        "out_of_range": [_dhcp(b"\x35\x01\xff\xff"), _dhcp(b"\x35\x01\x00\xff"), _dhcp(discover + b"\xff", op=7),
                         _dhcp(discover + b"\xff", htype=0, hlen=0), _dhcp(discover + b"\xff", hlen=200),
                         _dhcp(discover + b"\x33\x04\xff\xff\xff\xff\x32\x04\xff\xff\xff\xff\xff"),
                         _dhcp(b"\x35\x01\x03\x32\x04\x0a\x4d\x00\x01\x36\x04\x0a\x4d\x00\x01\xff")],
        "random": [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 700))) for _ in range(40)]
        + [_dhcp(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))) for _ in range(40)],
        "corpus": _seeds("dhcp_codec"),
    }
