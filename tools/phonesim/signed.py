"""The phone's reader of the Cisco signed-file header, and its check of the signed name.

Layout from a real SCCP45.9-4-2SR4-3S.loads (cisco-phones.md §0.0 item 1, §4.2):
TLVs of a 1-byte tag and a 2-byte big-endian length; tag 1 (version, length 2)
first, tag 2 (header length, length 2) second; tags 3, 7 and 9 are containers of
nested TLVs; tag 12 the signature, tag 14 the file's own name NUL-terminated,
optional tag 15 a 4-byte timestamp; tag 13 is ONE padding byte with no length
field, repeated up to the header length.  The payload starts at the header
length.  A phone refuses a file whose header does not parse or whose tag 14 is
not the name it asked for (§0.0 item 2).  The signature itself is not checked:
the simulator decides verifiability by signing era (truth.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

TAG_VERSION, TAG_LENGTH, TAG_SIGNATURE, TAG_PADDING, TAG_NAME, TAG_TIME = 1, 2, 12, 13, 14, 15
CONTAINERS = frozenset({3, 7, 9})
MAX_DEPTH = 3


class HeaderError(ValueError):
    """Malformed header; `offset` is where reading stopped."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True)
class Header:
    version: tuple[int, int]
    length: int                  # header length = payload offset
    name: str                    # tag 14 without its NUL
    signature_length: int
    timestamp: int | None
    tags: tuple[int, ...]        # top-level tags in file order, padding excluded
    padding: int                 # count of tag-13 bytes


def _tlv(data: bytes, off: int, end: int) -> tuple[int, bytes, int]:
    if off + 3 > end:
        raise HeaderError("truncated TLV", off)
    tag, length = data[off], struct.unpack_from(">H", data, off + 1)[0]
    if off + 3 + length > end:
        raise HeaderError(f"tag {tag} length {length} runs past the header", off)
    return tag, data[off + 3:off + 3 + length], off + 3 + length


def _nested(value: bytes, base: int, depth: int) -> None:
    """A container's value must be whole TLVs (containers inside containers up to MAX_DEPTH)."""
    if depth > MAX_DEPTH:
        raise HeaderError("containers nested too deep", base)
    off = 0
    while off < len(value):
        tag, inner, nxt = _tlv(value, off, len(value))
        if tag in CONTAINERS:
            _nested(inner, base + off + 3, depth + 1)
        off = nxt


def parse_header(data: bytes) -> Header:
    """The header of a signed file; HeaderError for anything a phone would refuse to read."""
    if len(data) < 10:
        raise HeaderError("shorter than tags 1 and 2", len(data))
    if data[0] != TAG_VERSION or data[1:3] != b"\x00\x02":
        raise HeaderError("tag 1 (version, length 2) does not come first", 0)
    if data[5] != TAG_LENGTH or data[6:8] != b"\x00\x02":
        raise HeaderError("tag 2 (header length, length 2) does not come second", 5)
    length = struct.unpack_from(">H", data, 8)[0]
    if length < 10 or length > len(data):
        raise HeaderError(f"header length {length} outside the file ({len(data)} bytes)", 8)
    off, tags, padding = 10, [], 0
    name = timestamp = None
    sig_len = -1
    while off < length:                       # each pass moves off forward by at least one byte
        if data[off] == TAG_PADDING:
            off, padding = off + 1, padding + 1
            continue
        start = off
        tag, value, off = _tlv(data, off, length)
        tags.append(tag)
        if tag in CONTAINERS:
            _nested(value, start + 3, 1)
        elif tag == TAG_SIGNATURE:
            sig_len = len(value)
        elif tag == TAG_NAME:
            if not value.endswith(b"\0") or b"\0" in value[:-1] or not value[:-1].isascii() or len(value) < 2:
                raise HeaderError("tag 14 is not a NUL-terminated ASCII name", start)
            name = value[:-1].decode("ascii")
        elif tag == TAG_TIME:
            if len(value) != 4:
                raise HeaderError("tag 15 timestamp is not 4 bytes", start)
            timestamp = struct.unpack(">I", value)[0]
        elif tag in (TAG_VERSION, TAG_LENGTH):
            raise HeaderError(f"tag {tag} repeated", start)
    if sig_len <= 0:
        raise HeaderError("no signature (tag 12)", length)
    if name is None:
        raise HeaderError("no signed file name (tag 14)", length)
    return Header((data[3], data[4]), length, name, sig_len, timestamp, tuple(tags), padding)


def name_matches(asked: str, signed: str) -> bool:
    """Whether the signed name is the file the phone asked for: case-insensitive, one leading '/' and any
    directory ignored.  For a name ending .sgn, tag 14 with or without the .sgn suffix is accepted:
    which of the two real files carry is UNCONFIRMED."""
    want = asked.replace("\\", "/").rsplit("/", 1)[-1].lower()
    got = signed.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if want == got:
        return True
    return want.endswith(".sgn") and got == want[:-4]


def verify(asked: str, data: bytes) -> tuple[Header | None, str | None]:
    """(header, None) when the phone takes the file's header and name, else (None, why)."""
    try:
        header = parse_header(data)
    except HeaderError as exc:
        return None, f"malformed header: {exc}"
    if not name_matches(asked, header.name):
        return None, f"signed as {header.name!r}, asked for {asked!r}"
    return header, None
