"""TFTP wire codec (RFC 1350, 2347 options).

What is kept from tftpy 0.8.7: its error-code vocabulary (`TftpErrors`) and its
OACK/ERROR encoders, which only ever see values we produce.  What is replaced:
its decoders.  `TftpPacketInitial.decode` calls `.decode("ascii")` on the name
and options, so one RRQ with a non-ASCII byte raises UnicodeDecodeError out of
`TftpServer.listen()` and the whole server stops; it also logs at debug level
several times per packet, which is a large part of its ~46 µs per block.  The
parser below raises only `Malformed`, and the ACK path is one `unpack_from`.
"""
from __future__ import annotations

import struct

from tftpy.TftpPacketTypes import TftpPacketERR, TftpPacketOACK
from tftpy.TftpShared import TftpErrors

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
ERR_UNDEFINED = TftpErrors.NotDefined
ERR_NOT_FOUND = TftpErrors.FileNotFound
ERR_ACCESS = TftpErrors.AccessViolation
ERR_ILLEGAL = TftpErrors.IllegalTftpOp
ERR_UNKNOWN_TID = TftpErrors.UnknownTID
ERR_OPTIONS = TftpErrors.FailedNegotiation

_HH = struct.Struct("!HH")
unpack_hh = _HH.unpack_from
MAX_OPTIONS = 16

# Precomputed DATA headers, indexed by the 16-bit block number: no per-block packing.
DATA_HEADERS: tuple[bytes, ...] = tuple(_HH.pack(DATA, n) for n in range(65536))


class Malformed(ValueError):
    """A packet that is not valid TFTP; the caller drops and logs it."""


def parse_request(data: bytes) -> tuple[int, bytes, str, dict[str, str]]:
    """RRQ/WRQ -> (opcode, raw filename bytes, mode, options with lower-case names).

    The filename stays bytes: whether it is a servable name is paths.servable_name's call,
    so a non-UTF-8 name becomes "not found", not an exception.
    """
    if len(data) < 4:
        raise Malformed("too short")
    opcode = data[0] << 8 | data[1]
    if opcode not in (RRQ, WRQ):
        raise Malformed(f"opcode {opcode} is not a request")
    fields = data[2:].split(b"\0")
    if len(fields) < 3 or fields[-1] != b"":
        raise Malformed("request fields not NUL-terminated")
    fields = fields[:-1]
    filename, mode = fields[0], fields[1]
    if not filename:
        raise Malformed("empty filename")
    try:
        mode_text = mode.decode("ascii").lower()
    except UnicodeDecodeError:
        raise Malformed("mode is not ASCII") from None
    if mode_text not in ("octet", "netascii", "mail"):
        raise Malformed(f"unknown mode {mode_text[:20]!r}")
    options: dict[str, str] = {}
    rest = fields[2:]
    if len(rest) % 2:
        rest = rest[:-1]
    for i in range(0, min(len(rest), 2 * MAX_OPTIONS), 2):
        try:
            key, value = rest[i].decode("ascii").lower(), rest[i + 1].decode("ascii")
        except UnicodeDecodeError:
            continue
        if key and key not in options:
            options[key] = value
    return opcode, filename, mode_text, options


def encode_error(code: int, message: str = "") -> bytes:
    if message:
        return _HH.pack(ERROR, code) + message.encode("ascii", "replace")[:200] + b"\0"
    packet = TftpPacketERR()
    packet.errorcode = code
    return bytes(packet.encode().buffer)


def encode_oack(options: dict[str, str]) -> bytes:
    packet = TftpPacketOACK()
    packet.options = options
    return bytes(packet.encode().buffer)


def encode_ack(block: int) -> bytes:
    return _HH.pack(ACK, block & 0xFFFF)
