"""`appliance serve dns`: the UDP socket loop around `Resolver`.

Forwarded queries get a fresh random id so a spoofed upstream reply must
guess it; pending forwards are bounded in number and age, and replies are
accepted only from the configured upstream address.
"""
from __future__ import annotations

import argparse
import logging
import random
import select
import signal
import socket
import time

from dnslib import DNSRecord

from ..config import Config
from ..service import ServiceContext
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

    def run(self, stopping) -> None:
        sockets = [s for s in (self.sock, self.up) if s is not None]
        while not stopping.is_set():
            ready, _, _ = select.select(sockets, [], [], 1.0)
            for sock in ready:
                try:
                    data, peer = sock.recvfrom(MAX_PACKET)
                except OSError as exc:
                    log.debug("recv: %s", exc)
                    continue
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
            self.expire(time.monotonic())


def serve(cfg: Config, args: argparse.Namespace | None = None) -> int:
    ctx = ServiceContext("dns", cfg)
    server = DnsServer(cfg, ctx)
    signal.signal(signal.SIGTERM, lambda *_: ctx.stopping.set())
    if not cfg.dns.enabled:
        log.info("DNS disabled in config; idling")
        ctx.start_heartbeat(lambda: {"enabled": False})
        ctx.stopping.wait()
        return 0
    try:
        server.open()
    except OSError as exc:
        ctx.error(f"cannot listen on {cfg.network.address} udp/{cfg.dns.port}: {exc}")
        return 1
    ctx.start_heartbeat(server.info)
    log.info("DNS on %s udp/%d: %s%s", cfg.network.address, cfg.dns.port,
             ", ".join(f"{k}={v}" for k, v in sorted(cfg.dns.names.items())),
             f", forwarding others to {cfg.dns.upstream}" if server.upstream else ", NXDOMAIN for others")
    try:
        server.run(ctx.stopping)
    except KeyboardInterrupt:
        pass
    ctx.stop()
    return 0
