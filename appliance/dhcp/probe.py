"""Asynchronous conflict probe, sans-I/O: ping offered addresses *after* the OFFER has left.

dnsmasq and ISC ping before they offer, so 50 phones powered on together wait
for each other's ping timeouts.  The station offers at once and pings in
parallel: an echo reply from an address that is offered but not yet bound
means someone squats on it, so it is quarantined (the client's REQUEST for it
is NAKed and it restarts with a fresh address).  Only the bytes live here; the
socket loop owns the raw socket and time.
"""
from __future__ import annotations

import socket
import struct

ECHO_REQUEST, ECHO_REPLY = 8, 0
PROBES_PER_SECOND = 200        # bounds the extra traffic under a flood of new clients
REPROBE_SECONDS = 60.0
WAIT_SECONDS = 1.0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"recovery-station conflict probe") -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident & 0xFFFF,
                       seq & 0xFFFF) + payload


def parse_echo_reply(packet: bytes) -> tuple[str, int, int] | None:
    """IPv4 packet from a raw ICMP socket -> (source address, ident, seq) for an echo reply, else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if packet[0] >> 4 != 4 or ihl < 20 or len(packet) < ihl + 8:
        return None
    icmp_type, _, _, ident, seq = struct.unpack_from("!BBHHH", packet, ihl)
    if icmp_type != ECHO_REPLY:
        return None
    return socket.inet_ntoa(packet[12:16]), ident, seq


class Prober:
    """Which offered addresses to ping, and which replies mean a conflict."""

    def __init__(self, ident: int):
        self.ident = ident & 0xFFFF
        self.seq = 0
        self.outstanding: dict[str, float] = {}       # ip -> sent at
        self.last_probe: dict[str, float] = {}
        self.bucket = float(PROBES_PER_SECOND)
        self.bucket_at = 0.0

    def want(self, ip: str, now: float) -> bytes | None:
        """An echo request to send to `ip`, or None (recently probed, or over the rate budget)."""
        self.bucket = min(PROBES_PER_SECOND, self.bucket + (now - self.bucket_at) * PROBES_PER_SECOND)
        self.bucket_at = now
        if now - self.last_probe.get(ip, -REPROBE_SECONDS) < REPROBE_SECONDS or self.bucket < 1:
            return None
        self.bucket -= 1
        self.last_probe[ip] = now
        self.outstanding[ip] = now
        self.seq += 1
        return echo_request(self.ident, self.seq)

    def answered(self, packet: bytes, now: float) -> str | None:
        """The address that answered one of our probes in time, else None."""
        parsed = parse_echo_reply(packet)
        if parsed is None:
            return None
        source, ident, _ = parsed
        sent = self.outstanding.pop(source, None)
        if ident != self.ident or sent is None or now - sent > WAIT_SECONDS:
            return None
        return source

    def expire(self, now: float) -> None:
        for ip, sent in list(self.outstanding.items()):
            if now - sent > WAIT_SECONDS:
                del self.outstanding[ip]
        if len(self.last_probe) > 100_000:
            self.last_probe = {ip: t for ip, t in self.last_probe.items() if now - t < REPROBE_SECONDS}
