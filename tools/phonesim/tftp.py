"""The phone's TFTP read, sans-I/O: datagrams in, datagrams out (RFC 1350, options RFC 2347/2348).

Phones send plain RRQs without options (cisco-phones.md §0.0 item 10; whether any
load asks for blksize is UNCONFIRMED, §4.1), so options are off unless asked for.
Block numbers roll over past 65535, a duplicate block is ACKed again, and a
transfer larger than `max_bytes` is abandoned, so a hostile server cannot make
the phone grow without bound.
"""
from __future__ import annotations

import struct

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
DEFAULT_BLKSIZE = 512
MAX_BYTES = 256 * 1024 * 1024


def error_packet(code: int, text: str) -> bytes:
    return struct.pack("!HH", ERROR, code) + text.encode("ascii", "replace") + b"\0"


class TftpRead:
    """One download.  `request()` is the RRQ; feed each datagram to `receive()`, send what it returns.

    When `done`, either `error` is set or `data` holds the whole file."""

    def __init__(self, name: str, options: dict[str, int] | None = None, max_bytes: int = MAX_BYTES):
        self.name, self.options, self.max_bytes = name, dict(options or {}), max_bytes
        self.blksize = DEFAULT_BLKSIZE
        self.data = bytearray()
        self.block = 0            # last block taken, 16-bit
        self.started = False      # a DATA or OACK was seen
        self.done = False
        self.error: str | None = None

    def request(self) -> bytes:
        opts = b"".join(k.encode() + b"\0" + str(v).encode() + b"\0" for k, v in self.options.items())
        return struct.pack("!H", RRQ) + self.name.encode("latin-1") + b"\0octet\0" + opts

    def _fail(self, text: str, code: int | None = None) -> bytes | None:
        self.error, self.done = text, True
        return error_packet(code, text) if code is not None else None

    def receive(self, pkt: bytes) -> bytes | None:
        if self.done or len(pkt) < 4:
            return None
        op, num = struct.unpack_from("!HH", pkt)
        if op == ERROR:
            text = pkt[4:].split(b"\0", 1)[0].decode("ascii", "replace")
            return self._fail(text or f"TFTP error {num}")
        if op == OACK:
            return self._oack(pkt[2:])
        if op != DATA:
            return None
        if num == self.block and self.started:
            return struct.pack("!HH", ACK, num)          # our ACK was lost: say it again
        if num != (self.block + 1) & 0xFFFF:
            return None
        self.started, self.block = True, num
        chunk = pkt[4:]
        if len(chunk) > self.blksize:
            return self._fail(f"block {num} longer than {self.blksize} bytes", 4)
        if len(self.data) + len(chunk) > self.max_bytes:
            return self._fail(f"file larger than {self.max_bytes} bytes", 3)
        self.data += chunk
        if len(chunk) < self.blksize:
            self.done = True
        return struct.pack("!HH", ACK, num)

    def _oack(self, body: bytes) -> bytes | None:
        if self.options and self.started and self.block == 0 and not self.data:
            return struct.pack("!HH", ACK, 0)             # our ACK of the OACK was lost
        if self.started or not self.options:
            return self._fail("unexpected OACK", 8)
        parts = body.split(b"\0")
        for key, value in zip(parts[::2], parts[1::2], strict=False):
            if key.lower() == b"blksize":
                try:
                    size = int(value)
                except ValueError:
                    return self._fail("bad blksize in OACK", 8)
                if not 8 <= size <= self.options.get("blksize", DEFAULT_BLKSIZE):
                    return self._fail(f"OACK blksize {size} not what was asked", 8)
                self.blksize = size
        self.started = True
        return struct.pack("!HH", ACK, 0)
