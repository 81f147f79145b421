"""Sans-I/O DNS logic: request bytes in, reply bytes (or a forward decision) out.

The station answers only for its own names (`[dns] names`, bare and under the
DHCP domain) and their reverse (PTR) names.  Everything else is NXDOMAIN, or is
handed to the one configured upstream; it never recurses anywhere else, so it
cannot be used as an open resolver.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSError, DNSRecord
from dnslib.dns import CLASS

log = logging.getLogger("dns")

TTL = 60
CLASS_IN, CLASS_ANY = 1, 255
OPCODE_QUERY = 0


@dataclass(frozen=True)
class Forward:
    """Ask the upstream with this query; the socket loop maps the reply back by id."""

    query: DNSRecord


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def reverse_name(ip: str) -> str:
    return ipaddress.IPv4Address(ip).reverse_pointer + "."


class Resolver:
    def __init__(self, names: dict[str, str], domain: str = "", forward: bool = False):
        self.forward = forward
        self.a: dict[str, str] = {}
        self.ptr: dict[str, str] = {}
        for name, ip in names.items():
            ipaddress.IPv4Address(ip)
            variants = [_fqdn(name)]
            if domain and not _fqdn(name).endswith(_fqdn(domain)):
                variants.append(_fqdn(f"{name}.{domain.strip('.')}"))
            for fq in variants:
                self.a[fq] = ip
            self.ptr.setdefault(reverse_name(ip), variants[-1])
        self.stats = {"queries": 0, "answered": 0, "nxdomain": 0, "forwarded": 0, "refused": 0, "malformed": 0}

    def resolve(self, data: bytes) -> bytes | None:
        """The reply to `data` for a station without an upstream, or None to drop it (itself a reply)."""
        decision = self.decide(data)
        if isinstance(decision, Forward):
            return None
        return decision

    def decide(self, data: bytes) -> bytes | Forward | None:
        """What to do with one query.

        Args:
            data: the UDP payload of a DNS message.
        Returns:
            the reply bytes (an answer, NXDOMAIN, REFUSED, NOTIMP or FORMERR — FORMERR also for
            garbage with a readable id), Forward when the name is not the station's and an upstream
            is configured, or None to drop (a reply, or too short to answer).
        Raises:
            Nothing for bad input: dnslib's errors are caught and counted as malformed.
        """
        try:
            request = DNSRecord.parse(data)
        except (DNSError, Exception) as exc:  # dnslib raises assorted errors on garbage
            self.stats["malformed"] += 1
            log.debug("malformed query (%d bytes): %s", len(data), exc)
            return self._formerr(data)
        if request.header.qr:
            return None
        self.stats["queries"] += 1
        reply = request.reply()
        reply.header.ra = 0
        reply.header.aa = 0
        if request.header.opcode != OPCODE_QUERY:
            reply.header.rcode = RCODE.NOTIMP
            return reply.pack()
        if len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        q = request.q
        if q.qclass not in (CLASS_IN, CLASS_ANY):
            self.stats["refused"] += 1
            reply.header.rcode = RCODE.REFUSED
            return reply.pack()
        name = _fqdn(str(q.qname))
        if name in self.a:
            reply.header.aa = 1
            if q.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(q.qname, QTYPE.A, CLASS.IN, TTL, A(self.a[name])))
            self.stats["answered"] += 1
            return reply.pack()
        if name in self.ptr:
            reply.header.aa = 1
            if q.qtype in (QTYPE.PTR, QTYPE.ANY):
                reply.add_answer(RR(q.qname, QTYPE.PTR, CLASS.IN, TTL, PTR(self.ptr[name])))
            self.stats["answered"] += 1
            return reply.pack()
        if self.forward and q.qclass == CLASS_IN and q.qtype != QTYPE.ANY:
            self.stats["forwarded"] += 1
            return Forward(request)
        if self.forward:
            self.stats["refused"] += 1
            reply.header.rcode = RCODE.REFUSED
            return reply.pack()
        self.stats["nxdomain"] += 1
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()

    @staticmethod
    def _formerr(data: bytes) -> bytes | None:
        """FORMERR echoing the id when at least a header arrived and it was a query; else drop."""
        if len(data) < 12 or data[2] & 0x80:
            return None
        flags = 0x80 | (data[2] & 0x79)
        return data[:2] + bytes((flags, RCODE.FORMERR)) + b"\x00" * 8
