"""Synthetic firmware written byte for byte as Cisco ships it, for the phone model's own tests.

Independent of the product's synth: the header is tag 1 `01 00 02 01 01`, tag 2
(header length), tag 3 signer block nesting 4 (signer), 5 (serial), 6 (CA),
tag 7 nesting 8 (digest 1 = SHA-1) and 9 (nesting 10 and 11 = 2), tag 12 with
256 signature bytes, tag 14 the file's own name + NUL, optional tag 15, then
single 0x0d padding bytes to a multiple of 4 (cisco-phones.md §0.0 item 1, §4.2).
Signer and CA names keep the real ones' lengths (38 and 34 characters), so a
24-character name such as SCCP45.9-4-2SR4-3S.loads gives the real 412-byte
header.  Manifest text is CRLF and starts exactly at the header length.
"""
from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

from .loadid import P003, LoadId, jar_name, parse_load
from .models import MODELS

SIGNER = b"CN=phonesimSigner;OU=simulator;O=noOrg"     # 38 characters, as the real signer name
CA = b"CN=phonesimCA;OU=simulator;O=noOrg"             # 34, as the real CA name
SERIAL = bytes.fromhex("1234567890abcdef")
SIGNATURE_LEN = 256
INTRO = ("#\r\n# This file contains a list of archive image files that will be requested by the\r\n"
         "# RELEASE load version {version}\r\n#\r\n#HARDWARE_COMP_1 5\r\n\r\n")


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def header(name: str, timestamp: int | None = None) -> bytes:
    """The signature header of a file signed as `name`."""
    sig = hashlib.shake_256(b"phonesim:" + name.encode()).digest(SIGNATURE_LEN)
    body = (tlv(3, tlv(4, SIGNER + b"\0") + tlv(5, SERIAL) + tlv(6, CA + b"\0"))
            + tlv(7, tlv(8, b"\x01") + tlv(9, tlv(10, b"\x00") + tlv(11, b"\x02")))
            + tlv(12, sig) + tlv(14, name.encode("ascii") + b"\0"))
    if timestamp is not None:
        body += tlv(15, struct.pack(">I", timestamp))
    bare = 10 + len(body)
    total = bare + (-bare % 4)
    return tlv(1, b"\x01\x01") + tlv(2, struct.pack(">H", total)) + body + b"\x0d" * (total - bare)


def components(load: LoadId) -> list[str]:
    """Component names shaped like the real ones: jar/cnu/apps/dsp/cvm for 79x1/2/5, .sbn + .sb2 for 7940/60."""
    if load.family in (P003, "P0S3"):
        return [f"{load.text}.sbn", f"{load.text}.sb2"]
    v, nn, proto = load.tnp_version, load.family, load.protocol
    return [jar_name(load), f"cnu{nn}.{v}.sbn", f"apps{nn}.{v}.sbn", f"dsp{nn}.{v}.sbn", f"cvm{nn}{proto}.{v}.sbn"]


def manifest(load: LoadId, signed_as: str | None = None, names: list[str] | None = None) -> bytes:
    """`<ID>.loads` (or a term file when signed_as names one): header, then the CRLF list of components."""
    names = components(load) if names is None else names
    if load.family in (P003, "P0S3"):
        text = "".join(f"{n}\r\n" for n in names) + "LA_VERSION=PAS30831\r\n"     # §4.2 P0030801SR02.loads
    else:
        text = INTRO.format(version=load.tnp_version) + "".join(f"{n}\r\n" for n in names)
    return header(signed_as or f"{load.text}.loads") + text.encode("ascii")


def component(name: str, size: int = 4096) -> bytes:
    """A component signed as its own name, padded with deterministic bytes to about `size`."""
    head = header(name)
    return head + random.Random(name).randbytes(max(1, size - len(head)))


def term_files(load: LoadId) -> list[str]:
    """The term files of the models that run this load's family (§2.2: term65 and term45 for SCCP45)."""
    return sorted({m.term for m in MODELS.values() if m.term and m.loads == load.family})


def load_files(load_id: str, size: int = 4096, term: bool = False) -> dict[str, bytes]:
    """{name: bytes} for one load: its manifest, every component, and its term files if asked."""
    load = parse_load(load_id)
    if load is None:
        raise ValueError(f"not a load ID the simulator knows: {load_id!r}")
    files = {f"{load.text}.loads": manifest(load)}
    if term:
        files.update({t: manifest(load, signed_as=t) for t in term_files(load)})
    files.update({n: component(n, size) for n in components(load)})
    return files


def write_load(dest: Path | str, load_id: str, size: int = 4096, term: bool = False) -> list[Path]:
    """The load's files in `dest` (created); returns their paths, the manifest first."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in load_files(load_id, size, term).items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    return paths
