"""Cisco's signed-file header, sans-I/O: bytes in, a SignedHeader or HeaderError out.

Every `.loads` manifest, every component (`.sbn`, `.sb2`, `.zz.sgn`, ...) and
the front of every `.cop.sgn` / `.cop.sha512` starts with it (reference
cisco-phones.md §0.0 item 1, checked against real files; field numbers as in
usecallmanager's `sgnfile`):

    01 00 02 01 01        tag 1, length 2: header format version 1.1 (always first)
    02 00 02 01 9c        tag 2, length 2: header length (412), where the payload starts
    03 LL LL ...          signer block, nesting 4 (signer name), 5 (serial), 6 (CA name)
    07 LL LL ...          signature info, nesting 8 (digest algorithm) and 9 (10, 11)
    0c 01 00 ...          tag 12: the RSA signature (256 bytes for a 2048-bit key)
    0e LL LL name\\0       tag 14: the file's own name, as signed
    0f 00 04 ...          tag 15: timestamp (optional)
    0d 0d 0d              tag 13: padding, ONE byte each, no length field, up to the header length

The header length is a multiple of 4 in every real file seen.  Reading tag 13
as a TLV (as this station once did) refuses 101 of 127 real files.  Nothing
here is trusted: every length is checked against the header length and the
file, and errors name the byte offset.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

TAG_VERSION = 1
TAG_HEADER_LEN = 2
TAG_SIGNER = 3
TAG_SIGNER_NAME = 4
TAG_SERIAL = 5
TAG_CA_NAME = 6
TAG_SIGNATURE_INFO = 7
TAG_DIGEST = 8
TAG_SIGNATURE_ALGORITHM_INFO = 9
TAG_SIGNATURE = 12
TAG_PADDING = 13
TAG_FILENAME = 14
TAG_TIMESTAMP = 15

CONTAINERS = frozenset({TAG_SIGNER, TAG_SIGNATURE_INFO, TAG_SIGNATURE_ALGORITHM_INFO})
FIXED_LEN = 10            # tag 1 and tag 2 fields
MAX_NAME = 255
MAGIC = b"\x01\x00\x02"   # tag 1 with its length: how a signed file starts


class HeaderError(ValueError):
    """The header is malformed or truncated; str() says at which byte and what was wrong."""


@dataclass(frozen=True)
class SignedHeader:
    length: int                     # header length: the payload starts here
    version: str                    # tag 1, e.g. "1.1"
    filename: str | None            # tag 14: the name the signer gave the file
    signer: str | None = None       # tag 4
    ca: str | None = None           # tag 6
    digest: int | None = None       # tag 8: 1 = SHA-1, 2 = SHA-256
    signature_len: int = 0          # bytes in tag 12
    timestamp: int | None = None    # tag 15, seconds since the epoch
    padding: int = 0                # tag 13 bytes
    tags: tuple[int, ...] = ()      # every field in file order, nested ones included (for diagnosis and tests)


def is_signed(data: bytes) -> bool:
    """True if `data` starts like a signed file (tag 1 with length 2)."""
    return bytes(data[:3]) == MAGIC


def _text(value: bytes, tag: int, pos: int) -> str:
    text = value.split(b"\0", 1)[0]
    try:
        return text.decode("ascii")[:MAX_NAME]
    except UnicodeDecodeError:
        raise HeaderError(f"field {tag} at byte {pos} is not ASCII text") from None


def parse_signed_header(data: bytes) -> SignedHeader:
    """Parse the header at the start of a signed file.

    Args:
        data: the file's first bytes; at least the whole header (its length is in bytes 8-9).
    Returns:
        the SignedHeader; the payload is data[header.length:].
    Raises:
        HeaderError: not a signed file, truncated, or a field that breaks a bound; the message names the byte.
    """
    data = bytes(data)
    if len(data) < FIXED_LEN:
        raise HeaderError(f"truncated signature header: {len(data)} bytes, the fixed fields alone take {FIXED_LEN}")
    tag, length = data[0], struct.unpack_from(">H", data, 1)[0]
    if tag != TAG_VERSION or length != 2:
        raise HeaderError(f"signature header starts with field {tag} (length {length}) at byte 0, expected 1 (version, length 2)")
    version = f"{data[3]}.{data[4]}"
    tag, length = data[5], struct.unpack_from(">H", data, 6)[0]
    if tag != TAG_HEADER_LEN or length != 2:
        raise HeaderError(f"field {tag} (length {length}) at byte 5, expected 2 (header length, length 2)")
    (header_len,) = struct.unpack_from(">H", data, 8)
    if header_len < FIXED_LEN:
        raise HeaderError(f"header length {header_len} (at byte 8) is shorter than its own fixed fields")
    if header_len > len(data):
        raise HeaderError(f"truncated: header length {header_len} (at byte 8), but the file has {len(data)} bytes")

    values: dict[int, tuple[int, bytes]] = {}
    tags: list[int] = [TAG_VERSION, TAG_HEADER_LEN]
    open_: list[tuple[int, int]] = []       # (container tag, end offset)
    padding = 0
    pos = FIXED_LEN
    while pos < header_len:
        while open_ and open_[-1][1] == pos:
            open_.pop()
        tag = data[pos]
        if tag == TAG_PADDING:
            padding += 1
            tags.append(tag)
            pos += 1
            continue
        if pos + 3 > header_len:
            raise HeaderError(f"field {tag} at byte {pos} has no room for its length before the header length {header_len}")
        (length,) = struct.unpack_from(">H", data, pos + 1)
        end = pos + 3 + length
        if end > header_len:
            raise HeaderError(f"field {tag} at byte {pos} claims {length} bytes, past the header length {header_len}")
        if open_ and end > open_[-1][1]:
            raise HeaderError(f"field {tag} at byte {pos} runs past the end of field {open_[-1][0]} (byte {open_[-1][1]})")
        if tag in (TAG_VERSION, TAG_HEADER_LEN):
            raise HeaderError(f"field {tag} at byte {pos} repeats a fixed field")
        tags.append(tag)
        if tag in CONTAINERS:
            open_.append((tag, end))
            pos += 3
            continue
        # Fields this parser does not know (none seen in real files) are skipped by their length, not refused.
        values.setdefault(tag, (pos, data[pos + 3:end]))
        pos = end

    def text(t: int) -> str | None:
        if t not in values:
            return None
        at, value = values[t]
        return _text(value, t, at) or None

    digest = None
    if TAG_DIGEST in values:
        at, value = values[TAG_DIGEST]
        if len(value) != 1:
            raise HeaderError(f"digest field at byte {at} has {len(value)} bytes, expected 1")
        digest = value[0]
    timestamp = None
    if TAG_TIMESTAMP in values:
        at, value = values[TAG_TIMESTAMP]
        if len(value) != 4:
            raise HeaderError(f"timestamp field at byte {at} has {len(value)} bytes, expected 4")
        (timestamp,) = struct.unpack(">I", value)
    return SignedHeader(
        length=header_len, version=version, filename=text(TAG_FILENAME), signer=text(TAG_SIGNER_NAME),
        ca=text(TAG_CA_NAME), digest=digest, signature_len=len(values.get(TAG_SIGNATURE, (0, b""))[1]),
        timestamp=timestamp, padding=padding, tags=tuple(tags))


def signed_name_matches(signed: str | None, served: str) -> bool:
    """Whether a file signed as `signed` may be served as `served` (reference §0.0 item 2: tag 14 is identity).

    Case is ignored: phones ask in any case and the lookup is case-insensitive.  For `.sgn` files the
    signer may have named the file before its `.sgn` was added (usecallmanager's sgnfile does); which
    Cisco does is UNCONFIRMED, so both are accepted.
    """
    if not signed:
        return False
    s, n = signed.lower(), served.rsplit("/", 1)[-1].lower()
    return s == n or (n.endswith(".sgn") and s == n[:-4])
