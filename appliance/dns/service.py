"""`appliance serve dns`: the UDP socket loop around `Resolver`.

Forwarded queries get a fresh random id so a spoofed upstream reply must
guess it; pending forwards are bounded in number and age, and replies are
accepted only from the configured upstream address.
"""
from __future__ import annotations

import argparse
import logging
import random
import socket
import time

from dnslib import DNSRecord

from ..config import Config
from ..service import PollLoop, ServiceContext, run_service
from .resolver import Forward, Resolver

log = logging.getLogger("dns")

MAX_PENDING = 1024
FORWARD_TIMEOUT = 5.0
MAX_PACKET = 4096


def parse_upstream(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.partition(":")
    return host, int(port or 53)


class DnsServer:
    def __init__(self, cfg: Config, ctx: ServiceContext | None = None):
        self.cfg = cfg
        self.ctx = ctx
        self.upstream = parse_upstream(cfg.dns.upstream)
        self.resolver = Resolver(cfg.dns.names, cfg.dhcp.domain, forward=self.upstream is not None)
        self.pending: dict[int, tuple[tuple[str, int], int, float]] = {}
        self.sock: socket.socket | None = None
        self.up: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.cfg.network.address, self.cfg.dns.port))
        if self.upstream:
            self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.up.bind(("0.0.0.0", 0))

    def info(self) -> dict:
        return {"port": self.cfg.dns.port, "address": self.cfg.network.address, "names": sorted(self.cfg.dns.names),
                "upstream": self.cfg.dns.upstream, "pending": len(self.pending), **self.resolver.stats}

    def handle_query(self, data: bytes, peer: tuple[str, int]) -> None:
        decision = self.resolver.decide(data)
        if isinstance(decision, Forward):
            self.forward(decision.query, peer)
        elif decision is not None:
            self.sock.sendto(decision, peer)

    def forward(self, query: DNSRecord, peer: tuple[str, int]) -> None:
        self.expire(time.monotonic())
        if len(self.pending) >= MAX_PENDING:
            reply = query.reply()
            reply.header.rcode = 2  # SERVFAIL: we are saturated, the client retries
            self.sock.sendto(reply.pack(), peer)
            return
        new_id = random.randrange(65536)
        while new_id in self.pending:
            new_id = random.randrange(65536)
        self.pending[new_id] = (peer, query.header.id, time.monotonic() + FORWARD_TIMEOUT)
        query.header.id = new_id
        self.up.sendto(query.pack(), self.upstream)

    def handle_upstream(self, data: bytes, peer: tuple[str, int]) -> None:
        if (peer[0], peer[1]) != self.upstream or len(data) < 12:
            return
        qid = int.from_bytes(data[:2], "big")
        entry = self.pending.pop(qid, None)
        if entry is None:
            return
        client, client_id, _ = entry
        self.sock.sendto(client_id.to_bytes(2, "big") + data[2:], client)

    def expire(self, now: float) -> None:
        for qid in [q for q, (_, _, deadline) in self.pending.items() if deadline < now]:
            del self.pending[qid]

    def read(self, sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(MAX_PACKET)
        except OSError as exc:
            log.debug("recv: %s", exc)
            return
        try:
            if sock is self.sock:
                self.handle_query(data, peer)
            else:
                self.handle_upstream(data, peer)
        except Exception as exc:  # one bad packet must never stop the service
            msg = f"dropped packet from {peer[0]}: {type(exc).__name__}: {exc}"
            if self.ctx:
                self.ctx.error(msg)
            else:
                log.warning(msg)

    def run(self) -> int:
        """Serve until the context stops; 1 when the port cannot be bound."""
        ctx = self.ctx
        assert ctx is not None
        try:
            self.open()
        except OSError as exc:
            return ctx.cannot_listen("udp", self.cfg.dns.port, exc, "set [dns] enabled = false",
                                     self.cfg.network.address)
        ctx.start_heartbeat(self.info)
        log.info("DNS on %s udp/%d: %s%s", self.cfg.network.address, self.cfg.dns.port,
                 ", ".join(f"{k}={v}" for k, v in sorted(self.cfg.dns.names.items())),
                 f", forwarding others to {self.cfg.dns.upstream}" if self.upstream else ", NXDOMAIN for others")
        loop = PollLoop(ctx.stopping, ctx.error)
        for sock in (self.sock, self.up):
            if sock is not None:
                sock.setblocking(False)
                loop.add_reader(sock, lambda sock=sock: self.read(sock))
        loop.every(1.0, lambda now: self.expire(time.monotonic()))
        try:
            loop.run()
        finally:
            for sock in (self.sock, self.up):
                if sock is not None:
                    sock.close()
        return 0


def serve(cfg: Config, args: argparse.Namespace | None = None) -> int:
    """`appliance serve dns`: the exit status (1 when the port cannot be bound)."""
    return run_service("dns", cfg, lambda ctx: DnsServer(cfg, ctx), enabled=cfg.dns.enabled)
