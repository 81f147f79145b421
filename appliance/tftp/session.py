"""Sans-I/O TFTP read session: datagrams and clock ticks in, datagrams out.

Replaces tftpy's TftpContextServer/TftpStates, which negotiate only blksize and
tsize, open any path for writing, and keep no absolute block counter.  This one
does RFC 2347 negotiation acknowledging only the options the client asked for
(blksize capped at `[tftp] max_blksize`, tsize also for generated files,
timeout up to `[tftp] max_timeout`, RFC 7440 windowsize), counts blocks as
integers so files past 65535 blocks roll the 16-bit number over to 0 as
tftp-hpa, curl and atftp expect, retransmits the unacknowledged window on
timeout a bounded number of times, and never on a duplicate ACK (the
Sorcerer's Apprentice bug of RFC 1350).

Every session has a bounded life (`lifetime`): a client that asks for
`timeout=255` and never ACKs, or ACKs one block just before each timeout,
would otherwise hold its slot for minutes (issue 24: a couple of hundred such
sessions locked every phone out for about 25 minutes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import packets as pk

MIN_BLKSIZE = 8
MAX_WINDOW = 64


@dataclass(frozen=True)
class Settings:
    max_blksize: int = 1468
    timeout: float = 2.0
    retries: int = 5
    max_window: int = MAX_WINDOW
    # The largest RFC 2349 `timeout` acknowledged; above it the option is left out of the OACK (RFC 2347
    # lets a server do so) and `timeout` applies.  Phones send no timeout option at all.
    max_timeout: int = 5
    # Seconds each block adds to a session's life (see `lifetime`).
    lifetime_per_block: float = 0.5           # [tftp] lifetime_ms_per_block: room for a lossy link


def lifetime(settings: Settings, timeout: float, blocks: int) -> float:
    """The longest a session of `blocks` blocks may last, in seconds: every retry of one block plus an
    allowance per block.  The default allowance (0.1 s a block, 5 KB/s at 512-byte blocks) is about a
    hundred times what a phone on a busy bench needs, and still ends a client that ACKs just before each
    timeout long before the minutes such a client held a slot before."""
    return (settings.retries + 1) * timeout + blocks * settings.lifetime_per_block


def negotiate(asked: dict[str, str], size: int, settings: Settings) -> tuple[dict[str, str], int, float, int]:
    """-> (options to acknowledge, blksize, timeout, windowsize).  Unparseable values are ignored, not fatal."""
    reply: dict[str, str] = {}
    blksize, timeout, window = 512, settings.timeout, 1
    if "blksize" in asked:
        try:
            value = int(asked["blksize"])
        except ValueError:
            value = 0
        if value >= MIN_BLKSIZE:
            blksize = min(value, settings.max_blksize)
            reply["blksize"] = str(blksize)
    if "tsize" in asked:
        reply["tsize"] = str(size)
    if "timeout" in asked:
        try:
            value = int(asked["timeout"])
        except ValueError:
            value = 0
        if 1 <= value <= min(255, settings.max_timeout):
            timeout = float(value)
            reply["timeout"] = str(value)
    if "windowsize" in asked:
        try:
            value = int(asked["windowsize"])
        except ValueError:
            value = 0
        if 1 <= value <= 65535:
            window = min(value, settings.max_window)
            reply["windowsize"] = str(window)
    return reply, blksize, timeout, window


class ReadSession:
    """One file going to one client.  `read(offset, length)` returns the bytes there (the file source).

    Results: "complete", "aborted" (client sent ERROR), "timeout" (retries spent, or the session outlived
    `lifetime`: then the client is told so with an ERROR).  `timeout_declined`: the client asked for a
    `timeout` the station does not grant.  `progress_at`: when the client last confirmed a new block (or
    the start), which `idle` measures from.
    """

    def __init__(self, size: int, read: Callable[[int, int], bytes], options: dict[str, str],
                 settings: Settings, now: float):
        self.size = size
        self.read = read
        self.settings = settings
        self.oack, self.blksize, self.timeout, self.window = negotiate(options, size, settings)
        self.last_block = size // self.blksize + 1      # a final short (possibly empty) block ends it
        self.acked = 0                                   # highest block the client confirmed
        self.sent = 0                                    # highest block sent
        self.tries = 0
        self.deadline = now + self.timeout
        self.result: str | None = None
        self.started = now
        self.ended: float | None = None
        self.timeout_declined = "timeout" in options and "timeout" not in self.oack
        self.expires = now + lifetime(settings, self.timeout, self.last_block)
        self.progress_at = now

    @property
    def done(self) -> bool:
        return self.result is not None

    def idle(self, now: float) -> float:
        """Seconds since the client last confirmed a new block (or since the start)."""
        return now - self.progress_at

    def next_deadline(self) -> float:
        """When `on_timeout` has something to do: a retransmit, or the end of the session's life."""
        return min(self.deadline, self.expires)

    @property
    def bytes_acked(self) -> int:
        return min(self.acked * self.blksize, self.size)

    def start(self, now: float) -> list[bytes]:
        """The first datagrams of the transfer: the OACK when options were accepted, else the first window."""
        if self.oack:
            return [pk.encode_oack(self.oack)]
        return self._window(now)

    def _block(self, n: int) -> bytes:
        offset = (n - 1) * self.blksize
        return pk.DATA_HEADERS[n & 0xFFFF] + self.read(offset, self.blksize)

    def _window(self, now: float) -> list[bytes]:
        first = self.acked + 1
        last = min(self.acked + self.window, self.last_block)
        self.sent = last
        self.deadline = now + self.timeout
        return [self._block(n) for n in range(first, last + 1)]

    def on_packet(self, data: bytes, now: float) -> list[bytes]:
        """Datagrams to send in answer to one packet from the client's transfer port.

        Args:
            data: the packet (ACK, ERROR, or anything else the client sent).
            now: monotonic seconds; the retransmit deadline is set from it.
        Returns:
            DATA blocks to send ([] for a duplicate or stray ACK: never resend on one). `result` becomes
            "complete" on the last ACK, "aborted" on the client's ERROR or an illegal packet (answered
            with an ERROR).
        Raises:
            Nothing for bad input.
        """
        if self.result is not None or len(data) < 4:
            return []
        opcode, number = pk.unpack_hh(data)
        if opcode == 4 and self.window == 1:
            block = self.sent                          # lock-step fast path: the ACK we wait for
            if number == block & 0xFFFF and 0 < block < self.last_block:
                self.acked = block
                self.tries = 0
                self.progress_at = now
                self.sent = n = block + 1
                self.deadline = now + self.timeout
                return [pk.DATA_HEADERS[n & 0xFFFF] + self.read(block * self.blksize, self.blksize)]
        if opcode == pk.ACK:
            if self.sent == 0:
                return self._window(now) if number == 0 else []   # ACK 0 confirms our OACK
            base = self.acked
            block = base + ((number - base) & 0xFFFF)
            if block <= base or block > self.sent:
                return []                              # duplicate or stray ACK: never resend on it
            self.acked = block
            self.tries = 0
            self.progress_at = now
            if block >= self.last_block:
                self.result, self.ended = "complete", now
                return []
            if block < self.sent and self.window > 1:
                return self._window(now)               # RFC 7440: client saw a gap, restart after `block`
            if block == self.sent:
                return self._window(now)
            return []
        if opcode == pk.ERROR:
            self.result, self.ended = "aborted", now
            return []
        if opcode in (pk.RRQ, pk.WRQ):
            return []                                  # a retransmitted request on the data port
        self.result, self.ended = "aborted", now
        return [pk.encode_error(pk.ERR_ILLEGAL, "illegal TFTP operation")]

    def on_timeout(self, now: float) -> list[bytes]:
        """The retransmission due at `now` (the OACK or the unacknowledged window), or []; after
        `retries` tries `result` becomes "timeout".  Past `expires` the session ends ("timeout") with an
        ERROR to the client, whatever its progress."""
        if self.result is not None:
            return []
        if now >= self.deadline and self.tries >= self.settings.retries:
            self.tries += 1
            self.result, self.ended = "timeout", now       # the client went silent: nobody to tell
            return []
        if now >= self.expires:
            self.result, self.ended = "timeout", now
            return [pk.encode_error(pk.ERR_UNDEFINED, "transfer too slow: ended by the server")]
        if now < self.deadline:
            return []
        self.tries += 1
        if self.oack and self.acked == 0 and self.sent == 0:
            self.deadline = now + self.timeout
            return [pk.encode_oack(self.oack)]
        return self._window(now)
