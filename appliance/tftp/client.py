"""A TFTP read as a state machine (RFC 1350, options RFC 2347/2348/2349): bytes and `now` in, bytes out.

The station's own reads (the container healthcheck, `appliance firmware`'s checks, tests) use it
through `fetch.py`; the phone model in tools/phonesim keeps its own client on purpose, so that the
product's reading of the protocol is never the test of itself.  Pure: no sockets, no clock.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import packets as pk

BLOCK = 512


class TftpError(OSError):
    """The read failed: an ERROR packet from the server, a bad reply, or no answer after the retries."""


@dataclass
class ReadClient:
    """One octet-mode read of `name`.

    Drive it with `start(now)`, then `receive(packet, now)` for each datagram from the server's
    transfer port and `poll(now)` when nothing came; each returns datagrams to send.  `done` and
    `data` (or `TftpError` from a call) say how it ended.
    """
    name: str
    blksize: int | None = None            # ask for RFC 2348 blksize; None sends a plain RRQ, as phones do
    tsize: bool = False                   # ask for RFC 2349 tsize (the server's answer lands in `size`)
    timeout: float = 1.0
    retries: int = 5
    max_bytes: int = 64 << 20
    done: bool = False
    size: int | None = None
    data: bytearray = field(default_factory=bytearray)
    _block: int = BLOCK
    _expected: int = 1
    _last_sent: bytes = b""
    _deadline: float = 0.0
    _tries: int = 0
    _received_any: bool = False

    def start(self, now: float) -> list[bytes]:
        """The RRQ to send to the server's port."""
        request = b"\x00\x01" + self.name.encode() + b"\x00octet\x00"
        if self.blksize:
            request += b"blksize\x00" + str(self.blksize).encode() + b"\x00"
        if self.tsize:
            request += b"tsize\x000\x00"
        return self._send(request, now)

    def _send(self, packet: bytes, now: float) -> list[bytes]:
        self._last_sent, self._deadline, self._tries = packet, now + self.timeout, 0
        return [packet]

    def receive(self, packet: bytes, now: float) -> list[bytes]:
        """Datagrams to answer `packet` with.

        Raises:
            TftpError: an ERROR packet, an OACK the client did not ask for, or a file over `max_bytes`.
        """
        if self.done or len(packet) < 4:
            return []
        opcode, number = struct.unpack_from("!HH", packet)
        if opcode == pk.ERROR:
            message = packet[4:].split(b"\0", 1)[0].decode("ascii", "replace")
            raise TftpError(f"TFTP error {number}: {message}")
        if opcode == pk.OACK and not self._received_any:
            self._received_any = True
            self._accept_options(packet[2:])
            return self._send(pk.encode_ack(0), now)
        if opcode != pk.DATA:
            return []
        self._received_any = True
        if number != self._expected & 0xFFFF:
            return [pk.encode_ack(number)] if number == (self._expected - 1) & 0xFFFF else []
        self.data += packet[4:]
        if len(self.data) > self.max_bytes:
            raise TftpError(f"file over {self.max_bytes} bytes")
        self._expected += 1
        if len(packet) - 4 < self._block:
            self.done = True
            return [pk.encode_ack(number)]
        return self._send(pk.encode_ack(number), now)

    def _accept_options(self, body: bytes) -> None:
        fields = body.split(b"\0")[:-1]
        options = {fields[i].decode("ascii", "replace").lower(): fields[i + 1].decode("ascii", "replace")
                   for i in range(0, len(fields) - 1, 2)}
        asked = {"blksize"} if self.blksize else set()
        if self.tsize:
            asked.add("tsize")
        if not set(options) <= asked:
            raise TftpError(f"server sent options not asked for: {sorted(set(options) - asked)}")
        try:
            if "blksize" in options:
                self._block = int(options["blksize"])
                if not 8 <= self._block <= (self.blksize or BLOCK):
                    raise TftpError(f"server chose blksize {self._block}, more than asked")
            if "tsize" in options:
                self.size = int(options["tsize"])
        except ValueError:
            raise TftpError(f"unreadable OACK {options}") from None

    def poll(self, now: float) -> list[bytes]:
        """Retransmit the last datagram if its answer is overdue.

        Raises:
            TftpError: no answer after `retries` retransmissions.
        """
        if self.done or now < self._deadline:
            return []
        self._tries += 1
        if self._tries > self.retries:
            raise TftpError(f"no answer after {self.retries} retries")
        self._deadline = now + self.timeout
        return [self._last_sent]

    def next_timeout(self, now: float) -> float:
        """Seconds until `poll` has something to do."""
        return max(0.0, self._deadline - now)
