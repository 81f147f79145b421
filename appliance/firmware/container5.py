"""The 5th-generation signed container (7800, and by inference 8800), sans-I/O: bytes in, a Header5 or Container5Error out.

Layout measured on a real `sip78xx.11-0-1-11.loads` and four real components
(reference phone-families.md §1.2; staskobzar/cisco_prov `sip/`, HEAD 21e3f0e),
all integers little-endian:

    0x00  CD 34 12 AB          magic (u32 0xAB1234CD)
    0x04  u32 header length    where the payload starts (0x150 = 336; 340 for `sboot2.78xx...`)
    0x08  u32 0
    0x0C  u32 payload length   = file size - header length
    0x10  u32 0
    0x14  32 bytes             SHA-256 of the payload
    0x34  u32 name length
    0x38  the file's own name, NUL-padded to a multiple of 4 (24 characters take 24 bytes, no NUL)
    ...   256 bytes            signature (RSA-2048 presumed, UNCONFIRMED; the station has no key to check it)
    header length: payload     INI text for a `.loads`, a U-Boot image (`27 05 19 56`) for kern/sboot

The two zero words are read as the high halves of 64-bit lengths: zero in every real file either way,
and under that reading a non-zero one makes a length no file can have, which the bounds refuse by name
(robust to both readings).  Third-party notes (low authority, UNCONFIRMED) report the same container with
0x154/0x158 headers for longer names, which this layout gives.  88xx files following it is inference:
no real 88xx signed file is public (§7).

The station cannot verify the signature, but it can prove a file intact: the payload length and the
SHA-256 in the header.  Errors carry a `problem` code (one per kind of bad input) and name the byte.
"""
from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

MAGIC = b"\xcd\x34\x12\xab"
OFF_HEADER_LEN = 0x04
OFF_PAYLOAD_LEN = 0x0C
OFF_SHA256 = 0x14
OFF_NAME_LEN = 0x34
OFF_NAME = 0x38
SHA256_LEN = 32
SIGNATURE_LEN = 256
MAX_NAME = 255
MAX_HEADER = 4096            # real headers are 336-344 bytes; a name of MAX_NAME gives 568
MIN_HEADER = OFF_NAME + 4 + SIGNATURE_LEN
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+\-~]*$")

# problem codes: one per way a file can be bad, so callers and tests name them without parsing words
TRUNCATED = "truncated"              # shorter than its own header
HEADER_PAST_END = "header past end"  # the header length runs past the end of the file
BAD_FIELD = "bad field"              # a header field breaks a bound (magic, name length, name text)
LENGTH_MISMATCH = "length mismatch"  # the payload length disagrees with the file's size
DIGEST_MISMATCH = "digest mismatch"  # the payload's SHA-256 is not the one in the header: the file is damaged
NAME_MISMATCH = "name mismatch"      # signed as another file


class Container5Error(ValueError):
    """The container is malformed, damaged or misnamed; str() says what and at which byte, `problem` which kind."""

    def __init__(self, problem: str, message: str):
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class Header5:
    length: int             # header length: the payload starts here
    payload_length: int     # as the header claims it
    sha256: bytes           # of the payload, as the header claims it
    filename: str           # the name the signer gave the file (its identity, like TLV tag 14)
    signature: bytes        # the 256 bytes after the padded name
    extra: int = 0          # header bytes after the signature (none in real files)

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


def is_container5(data: bytes) -> bool:
    """True if `data` starts with the 5th-generation magic; the catalog recognises files by this, never by name."""
    return bytes(data[:4]) == MAGIC


def _u64(data: bytes, at: int) -> int:
    low, high = struct.unpack_from("<II", data, at)
    return low | high << 32


def parse_header(data: bytes) -> Header5:
    """Parse the header at the start of a 5th-generation file.

    Args:
        data: the file's first bytes, at least the whole header (MAX_HEADER bytes always suffice).
    Returns:
        the Header5; the payload is data[header.length:].  The payload is not checked here (see check_size,
        check_digest, verify).
    Raises:
        Container5Error: not this container (BAD_FIELD), shorter than its header (TRUNCATED), a header length
        past the data (HEADER_PAST_END) or a field out of bounds (BAD_FIELD); the message names the byte.
    """
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        found = data[:4].hex(" ") or "nothing"
        raise Container5Error(BAD_FIELD, f"no 5th-generation magic CD 34 12 AB at byte 0 (found {found})")
    if len(data) < OFF_NAME:
        raise Container5Error(TRUNCATED, f"truncated: {len(data)} bytes, the fixed header fields alone take {OFF_NAME}")
    header_len = _u64(data, OFF_HEADER_LEN)
    if header_len < MIN_HEADER or header_len > MAX_HEADER:
        raise Container5Error(BAD_FIELD, f"header length {header_len} (at byte {OFF_HEADER_LEN}) is outside "
                                         f"{MIN_HEADER}..{MAX_HEADER}")
    payload_len = _u64(data, OFF_PAYLOAD_LEN)
    (name_len,) = struct.unpack_from("<I", data, OFF_NAME_LEN)
    if not 1 <= name_len <= MAX_NAME:
        raise Container5Error(BAD_FIELD, f"name length {name_len} (at byte {OFF_NAME_LEN}) is outside 1..{MAX_NAME}")
    name_end = OFF_NAME + name_len + (-name_len % 4)
    if name_end + SIGNATURE_LEN > header_len:
        raise Container5Error(BAD_FIELD, f"name ({name_len} bytes at byte {OFF_NAME}) and a {SIGNATURE_LEN}-byte "
                                         f"signature do not fit in the header length {header_len}")
    if header_len > len(data):
        # the header length the name implies tells a file cut short from a header length field that lies
        if header_len == name_end + SIGNATURE_LEN:
            raise Container5Error(TRUNCATED, f"truncated: the file ends at byte {len(data)}, inside its "
                                             f"{header_len}-byte header")
        raise Container5Error(HEADER_PAST_END, f"header length {header_len} (at byte {OFF_HEADER_LEN}) runs past "
                                               f"the end of the file at byte {len(data)}")
    raw = data[OFF_NAME:OFF_NAME + name_len].rstrip(b"\0")
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise Container5Error(BAD_FIELD, f"name at byte {OFF_NAME} is not ASCII text") from None
    if not _NAME.match(name) or name in (".", ".."):
        raise Container5Error(BAD_FIELD, f"name at byte {OFF_NAME} is not a plain file name: {name[:60]!r}")
    return Header5(length=header_len, payload_length=payload_len, sha256=data[OFF_SHA256:OFF_SHA256 + SHA256_LEN],
                   filename=name, signature=data[name_end:name_end + SIGNATURE_LEN],
                   extra=header_len - name_end - SIGNATURE_LEN)


def check_size(header: Header5, file_size: int) -> None:
    """Raise Container5Error unless the payload length is the file's size after its header: TRUNCATED when the
    file ends early, LENGTH_MISMATCH when it is longer than the header says."""
    actual = file_size - header.length
    if header.payload_length > actual:
        raise Container5Error(TRUNCATED, f"truncated: payload length {header.payload_length} (at byte "
                                         f"{OFF_PAYLOAD_LEN}) but the file ends after {actual} payload bytes")
    if header.payload_length != actual:
        raise Container5Error(LENGTH_MISMATCH, f"payload length {header.payload_length} (at byte {OFF_PAYLOAD_LEN}) "
                                               f"but the file has {actual} bytes after its {header.length}-byte header")


def check_digest(header: Header5, digest: bytes) -> None:
    """Raise Container5Error(DIGEST_MISMATCH) unless `digest` (SHA-256 of the payload) is the header's."""
    if bytes(digest) != header.sha256:
        raise Container5Error(DIGEST_MISMATCH, f"the payload's SHA-256 is {bytes(digest).hex()[:16]}..., the header "
                                               f"(byte {OFF_SHA256}) says {header.sha256.hex()[:16]}...: the file is damaged")


def name_matches(signed: str, served: str) -> bool:
    """Whether a file signed as `signed` may be served as `served` (its base name, case ignored: phones ask in any case)."""
    return bool(signed) and signed.lower() == served.replace("\\", "/").rsplit("/", 1)[-1].lower()


def check_name(header: Header5, served: str) -> None:
    """Raise Container5Error(NAME_MISMATCH) unless the signed name is the name the file is served under."""
    if not name_matches(header.filename, served):
        raise Container5Error(NAME_MISMATCH, f"signed as {header.filename!r} (at byte {OFF_NAME}), not {served[:MAX_NAME]!r}")


class PayloadHasher:
    """SHA-256 of a payload fed in pieces (the caller reads the file): feed() then check()."""

    def __init__(self, header: Header5):
        self.header = header
        self._h = hashlib.sha256()
        self.fed = 0

    def feed(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.fed += len(chunk)

    def check(self) -> None:
        """Raise Container5Error (LENGTH_MISMATCH, DIGEST_MISMATCH) unless what was fed is the header's payload."""
        if self.fed != self.header.payload_length:
            raise Container5Error(LENGTH_MISMATCH, f"payload length {self.header.payload_length} (at byte "
                                                   f"{OFF_PAYLOAD_LEN}) but {self.fed} payload bytes were read")
        check_digest(self.header, self._h.digest())


def verify(data: bytes, served: str | None = None) -> Header5:
    """Check a whole file held in memory: header, payload length, SHA-256, and the signed name when `served` is given.

    Args:
        data: the entire file.
        served: the name it is served under, or None to skip the name check.
    Returns:
        the Header5; the payload data[header.length:] is intact.
    Raises:
        Container5Error: the first problem found, in the order header, length, digest, name.
    """
    data = bytes(data)
    header = parse_header(data[:MAX_HEADER])
    check_size(header, len(data))
    check_digest(header, hashlib.sha256(data[header.length:]).digest())
    if served is not None:
        check_name(header, served)
    return header


def build(name: str, payload: bytes, signature: bytes) -> bytes:
    """A file in this layout: the header (as measured on real files) around `payload`.  For tests and synth.py."""
    raw = name.encode("ascii")
    if not 1 <= len(raw) <= MAX_NAME or len(signature) != SIGNATURE_LEN:
        raise ValueError("name must be 1..255 ASCII bytes and the signature 256 bytes")
    padded = raw + b"\0" * (-len(raw) % 4)
    header_len = OFF_NAME + len(padded) + SIGNATURE_LEN
    head = (MAGIC + struct.pack("<IIII", header_len, 0, len(payload), 0) + hashlib.sha256(payload).digest()
            + struct.pack("<I", len(raw)) + padded + signature)
    return head + payload


def fuzz_container(data: bytes) -> None:
    """Fuzz entry point: any bytes verify or raise Container5Error with a known problem code; anything else is a bug."""
    try:
        h = verify(data)
    except Container5Error as exc:
        assert exc.problem in (TRUNCATED, HEADER_PAST_END, BAD_FIELD, LENGTH_MISMATCH, DIGEST_MISMATCH, NAME_MISMATCH)
        return
    assert MIN_HEADER <= h.length <= min(len(data), MAX_HEADER) and h.length + h.payload_length == len(data)
    assert h.filename.isascii() and len(h.filename) <= MAX_NAME and "/" not in h.filename
    assert len(h.signature) == SIGNATURE_LEN and h.extra >= 0 and name_matches(h.filename, h.filename.upper())
