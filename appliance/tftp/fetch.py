"""A blocking TFTP read over a UDP socket, driving the sans-I/O `client.ReadClient`."""
from __future__ import annotations

import socket
import time

from .client import ReadClient, TftpError


def fetch(host: str, port: int, name: str, *, timeout: float = 1.0, retries: int = 5, blksize: int | None = None,
          tsize: bool = False, max_bytes: int = 64 << 20, deadline_s: float = 60.0) -> bytes:
    """The file's bytes.

    Args:
        host, port: the server's request port.
        name: the file to read.
        timeout, retries: per-datagram wait and retransmissions before giving up.
        blksize, tsize: RFC 2348/2349 options to ask for (None/False: a plain RRQ).
        max_bytes, deadline_s: bounds on size and on the whole read.
    Raises:
        TftpError: the server refused, answered nonsense, or went silent (OSError from the socket too).
    """
    client = ReadClient(name, blksize=blksize, tsize=tsize, timeout=timeout, retries=retries, max_bytes=max_bytes)
    end = time.monotonic() + deadline_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        peer: tuple | None = None
        for packet in client.start(time.monotonic()):
            sock.sendto(packet, (host, port))
        while not client.done:
            now = time.monotonic()
            if now > end:
                raise TftpError(f"read of {name} not done in {deadline_s:g} s")
            sock.settimeout(max(0.01, client.next_timeout(now)))
            try:
                packet, addr = sock.recvfrom(65536)
            except socket.timeout:
                out = client.poll(time.monotonic())
            else:
                if peer is None and addr[0] == host or addr == peer:
                    peer = addr
                    out = client.receive(packet, time.monotonic())
                else:
                    out = []                  # another host's datagram: not our transfer
            for packet in out:
                sock.sendto(packet, peer or (host, port))
    return bytes(client.data)
