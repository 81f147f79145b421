"""The phone's reader of the 5th-generation signed container (7800; the 8800 by inference), and its checks.

Layout measured on a real sip78xx.11-0-1-11.loads and four real components
(phone-families.md §1.2, staskobzar/cisco_prov [F2]); every integer little-endian:

    0x00  magic CD 34 12 AB (u32 0xAB1234CD)
    0x04  u32 header length (0x150 = 336 for a 23-character name, 340 for sboot2's 25)
    0x08  u32 0
    0x0C  u32 payload length (= file size - header length)
    0x10  u32 0
    0x14  32 bytes: SHA-256 of the payload
    0x34  u32 name length
    0x38  the file's own name, NUL-padded to 4 bytes
    ...   256 bytes, the signature (RSA-2048 presumed, UNCONFIRMED), ending at the header length
    header length: the payload

Both real sizes equal 0x38 + name rounded up to 4 + 256, so the signature is read as the header's last
256 bytes and what lies between the name and it must be NUL padding.  The two zero words are not checked:
only 0 was ever seen, and whether a phone refuses anything else is UNCONFIRMED.

What the phone model refuses (the phone cannot be asked; these are the checks a phone that trusts the
header would make): anything shorter than the fixed fields, a wrong magic, a header length outside the
file or too short for name and signature, a payload length that disagrees with the file, a payload whose
SHA-256 is not the header's ("Checksum Error", cisco-phones.md §8.1: "a downloaded file's checksum
failed"), a name that is not the file asked for (as the TLV header's tag 14, §1.2: "serve under that exact
name").  The signature itself is not checked (no key): truth.py decides what a phone accepts.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from .signed import name_matches

MAGIC = 0xAB1234CD
MAGIC_BYTES = struct.pack("<I", MAGIC)            # CD 34 12 AB
FIXED = 0x38                                      # magic .. name length
SIGNATURE_LEN = 256
MAX_NAME = 255                                    # longest real name seen is 25 characters; a bound, not a fact


class ContainerError(ValueError):
    """A container the phone refuses; `checksum` when the payload's length or digest is wrong (the screen
    is then "Checksum Error"), else the header itself is unreadable."""

    def __init__(self, message: str, checksum: bool = False):
        super().__init__(message)
        self.checksum = checksum


@dataclass(frozen=True)
class Container:
    header_length: int
    payload_length: int
    sha256: bytes
    name: str
    signature: bytes
    payload: bytes


def is_container(data: bytes) -> bool:
    return data[:4] == MAGIC_BYTES


def parse(data: bytes) -> Container:
    """The container's fields, its payload proven intact; ContainerError for anything a phone refuses."""
    if len(data) < FIXED:
        raise ContainerError(f"{len(data)} bytes: shorter than the container's fixed fields ({FIXED})")
    magic, hlen, _zero1, plen, _zero2 = struct.unpack_from("<5I", data, 0)
    if magic != MAGIC:
        raise ContainerError(f"magic {data[:4].hex(' ')} is not cd 34 12 ab")
    (nlen,) = struct.unpack_from("<I", data, 0x34)
    if not 1 <= nlen <= MAX_NAME:
        raise ContainerError(f"name length {nlen} out of bounds")
    least = FIXED + nlen + SIGNATURE_LEN
    if hlen < least:
        raise ContainerError(f"header length {hlen} leaves no room for a {nlen}-byte name and the signature")
    if hlen > len(data):
        raise ContainerError(f"header length {hlen} runs past the end of the file ({len(data)} bytes)")
    raw = data[FIXED:FIXED + nlen]
    if b"\0" in raw or not raw.isascii():
        raise ContainerError("the name is not ASCII without NULs")
    if data[FIXED + nlen:hlen - SIGNATURE_LEN].strip(b"\0"):
        raise ContainerError("bytes other than NUL between the name and the signature")
    if plen != len(data) - hlen:
        raise ContainerError(f"payload length {plen} but the file holds {len(data) - hlen} bytes after the header",
                             checksum=True)
    payload = data[hlen:]
    digest = data[0x14:0x34]
    if hashlib.sha256(payload).digest() != digest:
        raise ContainerError("the payload's SHA-256 is not the one in the header", checksum=True)
    return Container(hlen, plen, digest, raw.decode("ascii"), data[hlen - SIGNATURE_LEN:hlen], payload)


def verify(asked: str, data: bytes) -> tuple[Container | None, ContainerError | None]:
    """(container, None) when the phone takes the file, else (None, why).  The name rule is the TLV
    header's (signed.name_matches: case, one leading '/', directories ignored)."""
    try:
        box = parse(data)
    except ContainerError as exc:
        return None, exc
    if not name_matches(asked, box.name):
        return None, ContainerError(f"signed as {box.name!r}, asked for {asked!r}")
    return box, None
