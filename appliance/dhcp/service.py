"""`appliance serve dhcp`: the thin socket loop around the sans-I/O server and guard.

One thread (the service skeleton's PollLoop) drains the server socket in passes of up to
BURST datagrams.  Each datagram is decided by `Server` at once; what needs nothing stored
(an OFFER, a NAK) leaves at once, and what does (an ACK) waits for the pass's group commit:
the lease changes of the whole pass go to the store in one transaction, and only then do its
ACKs leave (`Exchanges`), so an ACK never leaves before its lease is durable, and a failed
commit sends none.  Events go to the batch writer, which this thread flushes inside that same
commit (or on a timer when nothing was stored), so the bus costs no transaction of its own under
load and never one per packet.  DHCP owns the leases: the API's LEASE_FORGET commands are executed
here.  Both sockets are bound to `[network] interface`, so a station with two NICs never answers
on the wrong one.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable

from .. import events as ev
from .. import netinfo
from ..batch import BatchWriter
from ..logs import RateLimitedLog
from ..recovery.facts import Forget, Lease
from ..recovery.hub import FactSender, socket_path
from ..service import CommandTail, PollLoop, ServiceContext, run_service
from ..store import Store
from . import codec
from .guard import Guard
from .leases import LeaseBook
from .probe import Prober
from .server import BROADCAST, CLIENT_PORT_OFFSET, Outcome, Reply, Server, ServerSettings

log = logging.getLogger("dhcp")

# Datagrams handled per pass, so per group commit.  Small enough that the ACKs of one pass leave as a
# short burst: 256 sent back to back overflowed a client's default 208 KiB receive buffer (~160
# datagrams) under perfdhcp at 4000 DORA/s; large enough that the commit is shared by many leases.
BURST = 64
TICK_SECONDS = 0.25
STATUS_SECONDS = 1.0
COMMANDS_SECONDS = 1.0
EVENT_FLUSH_SECONDS = 0.2
MALFORMED_LOG_PER_WINDOW = 5
MALFORMED_WINDOW = 10.0
DROPPED_LOG_PER_WINDOW = 5        # per kind (DECLINE from the wrong MAC, device past its share) and window


class DroppedLog(RateLimitedLog):
    """RateLimitedLog for requests dropped on purpose (a DECLINE from the wrong MAC, a device past its share)."""

    def __call__(self, now: float, message: str, *args) -> bool:
        if now - self.start > self.window and self.suppressed:
            self.log.warning("%d more dropped DHCP requests not logged", self.suppressed)
            self.suppressed = 0
        return super().__call__(now, message, *args)


def open_socket(interface: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    # Our own broadcasts must not loop back to us (it would double the receive load and
    # make the guard hear its own probe).
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    return sock


class Exchanges:
    """The server socket's passes: replies and tracker facts in order, ACKs only after a group commit.

    `handle` decides one datagram.  A reply that needs nothing stored (OFFER, NAK, INFORM's ACK)
    leaves at once, after its DISCOVER is told to the tracker; an ACK is held, with its fact, until
    `finish` has committed every lease change of the pass, and the events queued so far, in one
    transaction (group commit, `commit`), so no ACK leaves before its lease is durable.  A failed
    commit sends no held ACK and tells the tracker none of them.  Once a client has something held,
    its later replies and facts in the pass are held behind it, so each client's facts reach the
    tracker in the order they happened.

    Args:
        server: the sans-I/O server whose book's pending changes are committed.
        store: where leases and events go (`Store.atomic`, `leases.save_changes`).
        events: the bus writer; flushed here, inside each commit, on the calling thread.
        send: puts one reply on the wire; tell: gives one fact to the tracker.  Neither may raise.
        on_error: told why a commit failed.
    """

    def __init__(self, server: Server, store: Store, events: BatchWriter[tuple], send: Callable[[Reply], None],
                 tell: Callable[[Lease], object], on_error: Callable[[str], None]):
        self.server, self.store, self.events = server, store, events
        self.send, self.tell, self.on_error = send, tell, on_error
        self.server.counters.setdefault("persist_failures", 0)
        self._held: list[tuple[Outcome, float]] = []
        self._held_macs: set[str] = set()

    def handle(self, data: bytes, now: float, peer: str = "") -> Outcome:
        """Decide one datagram and send what may go now.

        Returns Server.handle's Outcome (its events are for the caller to queue on the bus).
        Raises whatever Server.handle raises on a bug; nothing is held for that datagram then.
        """
        out = self.server.handle(data, now, peer=peer)
        if out.mac in self._held_macs or any(reply.durable for reply in out.replies):
            self._held.append((out, now))
            if out.mac:
                self._held_macs.add(out.mac)
        else:
            self._release(out, now, durable_ok=True)
        return out

    def finish(self) -> bool:
        """End the pass: commit, then send what was held (its ACKs only if the commit succeeded)."""
        ok = self.commit()
        held, self._held = self._held, []
        self._held_macs.clear()
        for out, now in held:
            self._release(out, now, durable_ok=ok)
        return ok

    def commit(self) -> bool:
        """Store the book's pending lease changes, with the queued events, in one transaction.

        Returns True when nothing was pending or all of it is committed; False (the changes queued
        again for the next commit, `on_error` told) when the leases could not be stored.  Events that
        fail to insert are dropped and reported by the writer; they cost the leases only when their
        failure aborted the transaction, and then nothing was committed.
        """
        changes = self.server.book.take_pending()
        if not changes:
            return True
        try:
            with self.store.atomic():
                self.store.leases.save_changes(changes)
                self.events.flush()
            return True
        except Exception as exc:
            self.server.counters["persist_failures"] += 1
            self.server.book.pending[:0] = changes
            self.on_error(f"leases not persisted, ACKs withheld: {exc}")
            return False

    def _release(self, out: Outcome, now: float, durable_ok: bool) -> None:
        for kind, mac, data in out.events:
            if mac and (kind == ev.DHCP_DISCOVER or (kind == ev.DHCP_ACK and durable_ok)):
                self.tell(Lease(now, mac, data.get("ip"), kind == ev.DHCP_ACK, data.get("model"),
                                data.get("vendor_class"), expires=data.get("expires")))
        for reply in out.replies:
            if durable_ok or not reply.durable:
                self.send(reply)


class Loop:
    def __init__(self, ctx: ServiceContext, cfg):
        self.ctx, self.cfg, self.store = ctx, cfg, ctx.store
        settings = ServerSettings.from_config(cfg)
        self.guard = Guard(cfg.dhcp.guard, settings.address, float(cfg.dhcp.guard_interval))
        book = LeaseBook(settings.pool_start, settings.pool_end, reserved=dict(settings.reservations),
                         excluded={settings.address})
        book.load(*self.store.leases.book())
        self.server = Server(settings, book, may_serve=self.guard.may_offer, ignore=self.guard.is_probe)
        self.port = cfg.dhcp.port
        self.interface = cfg.network.interface
        # Flushed on the loop thread, never by the writer's own thread: inside each lease commit (see
        # `Exchanges.commit`) and by a timer when no lease was stored for a while.  A second thread
        # writing the same database held its lock for tens of milliseconds per batch (and the GIL
        # between statements) while ACKs waited to commit.
        self.events: BatchWriter[tuple] = BatchWriter(
            "dhcp-events", ctx.store.events.append, EVENT_FLUSH_SECONDS,
            on_error=lambda exc, n: ctx.error(f"dhcp events not recorded ({n}): {exc}"))
        self.facts = FactSender(socket_path(cfg))
        self.exchanges = Exchanges(self.server, self.store, self.events, self.send_reply, self.facts.send,
                                   ctx.error)
        self.malformed_log = RateLimitedLog(log, MALFORMED_LOG_PER_WINDOW, MALFORMED_WINDOW)
        # one budget per kind, so a flood of one never hides the other
        self.dropped_log = {kind: DroppedLog(log, DROPPED_LOG_PER_WINDOW, MALFORMED_WINDOW) for kind in ("share",
                                                                                                     "decline")}
        self.counters = self.server.counters
        self.counters.update({"send_failures": 0, "guard_probes": 0})
        self._last_status: dict | None = None
        self._guard_status: dict = self.guard.status(time.time())
        self._own_server_id = bytes((codec.OPT_SERVER_ID, 4)) + codec.ip_bytes(settings.address)
        self._last_status_at = 0.0
        self.sock: socket.socket | None = None
        self.client_sock: socket.socket | None = None
        self.icmp_sock: socket.socket | None = None
        self.prober = Prober(os.getpid())
        self.counters.update({"conflict_probes": 0, "conflicts_found": 0})
        self.commands = CommandTail(ctx, [ev.LEASE_FORGET])
        self._commands_at = 0.0

    # -- status --------------------------------------------------------------------------------
    def info(self) -> dict:
        # Runs on the heartbeat thread: read only snapshots the loop thread published.
        return {"counters": dict(self.counters), "guard": dict(self._guard_status),
                "pool": dict(self._last_status or {}), "interface": self.interface, "port": self.port,
                "facts": {"sent": self.facts.sent, "unsent": self.facts.failed},
                "serving": self._guard_status.get("serving"), "events_dropped": self.events.dropped}

    def publish_status(self, now: float, force: bool = False) -> None:
        status = self.server.pool_status(now)
        if force or status != self._last_status:
            last = self._last_status or {}
            if status["exhausted"] and not last.get("exhausted"):
                log.error("address pool exhausted, a new phone gets no address: %d leased to phones, %d to other "
                          "devices, %d quarantined, of %d (%s - %s)", status["phones"], status["others"],
                          status["quarantined"], status["size"], status["pool_start"], status["pool_end"])
            if status["others_full"] and not last.get("others_full") and not status["exhausted"]:
                log.warning("devices that are not phones hold their whole share (%d addresses); phones are still "
                            "served from the rest of the pool", status["others_share"])
            self._last_status = status
            try:
                self.store.kv.put("dhcp.status", status)
            except Exception as exc:
                self.ctx.error(f"dhcp status not recorded: {exc}")

    def publish_guard(self, now: float, status: dict) -> None:
        if status["servers"]:
            verb = "refusing to serve" if status["status"] == "refusing" else "serving anyway (guard = warn)"
            log.error("another DHCP server answers on %s: %s; %s", self.interface, ", ".join(status["servers"]),
                      verb)
        elif status["status"] == "unknown":
            log.error("guard: could not check %s for another DHCP server (probe not sent: %s); %s", self.interface,
                      status.get("not_probed"), "serving anyway" if status.get("serving") else "giving no addresses")
        else:
            log.info("guard: no other DHCP server on %s (%s)", self.interface, status["status"])
        try:
            self.store.kv.put("dhcp.guard", status)
        except Exception as exc:
            self.ctx.error(f"dhcp guard status not recorded: {exc}")
        self.events.add([(now, "dhcp", ev.GUARD_STATUS, None, status)])

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.sock = open_socket(self.interface, self.port)
        except OSError as exc:
            return self.ctx.cannot_listen("udp", self.port, exc, "set [dhcp] enabled = false")
        if self.guard.mode != "off":
            try:
                self.client_sock = open_socket(self.interface, self.port + CLIENT_PORT_OFFSET)
            except OSError as exc:
                self.ctx.error(f"guard cannot listen on udp/{self.port + CLIENT_PORT_OFFSET}: {exc}; "
                               "it will only notice REQUESTs naming other servers")
        try:
            self.icmp_sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            self.icmp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            self.icmp_sock.setblocking(False)
        except OSError as exc:
            self.icmp_sock = None
            log.info("no conflict probing (needs CAP_NET_RAW): %s; DECLINEs still quarantine addresses", exc)
        self.ctx.start_heartbeat(self.info)
        log.info("DHCP on %s udp/%d: pool %s - %s, TFTP %s, guard %s", self.interface, self.port,
                 self.server.s.pool_start, self.server.s.pool_end, ",".join(self.server.s.tftp_servers),
                 self.guard.mode)
        self.publish_status(time.time(), force=True)
        if self.guard.mode != "off" and self.client_sock is None:
            self.guard.cannot_probe(time.time(), "cannot listen for other servers' replies")
        self.store.kv.put("dhcp.guard", self.guard.status(time.time()))
        loop = PollLoop(self.ctx.stopping, self.ctx.error)
        loop.every(TICK_SECONDS, self.periodic)
        loop.every(EVENT_FLUSH_SECONDS, lambda now: self.events.flush())
        for sock, handler in ((self.sock, self.read_server), (self.client_sock, self.read_guard),
                              (self.icmp_sock, self.read_icmp)):
            if sock is not None:
                loop.add_reader(sock, handler)
        try:
            loop.run()
        finally:
            self.ctx.stop()
            self.events.stop()
            for s in (self.sock, self.client_sock, self.icmp_sock):
                if s is not None:
                    s.close()
            self.facts.close()
        return 0

    def periodic(self, now: float) -> None:
        self.facts.flush()         # a quiet segment must not leave the last leases untold
        for _, status in self.guard.tick(now):
            self.publish_guard(now, status)
        self._guard_status = self.guard.status(now)
        if self.guard.due(now) and self.client_sock is not None:
            try:
                probe = self.guard.probe(now)
                # Sent into an unplugged cable, a probe would "go unanswered": not a sign that no server is there.
                if netinfo.link_state(self.interface) != "up":
                    raise OSError(f"no link on {self.interface}")
                self.client_sock.sendto(probe, (BROADCAST, self.port))
                self.counters["guard_probes"] += 1
            except OSError as exc:
                for _, status in self.guard.not_sent(now, exc.strerror or str(exc)):
                    self.publish_guard(now, status)
        if now - self._last_status_at >= STATUS_SECONDS:
            self._last_status_at = now
            self.publish_status(now)
        if now - self._commands_at >= COMMANDS_SECONDS:
            self._commands_at = now
            self.execute_commands()

    def execute_commands(self) -> None:
        """Forget the leases the API was asked to forget: free each address and delete its row."""
        rows = self.commands.take()
        for row in rows:
            ip = self.server.book.drop(row["mac"] or "")
            if ip:
                log.info("lease of %s (%s) forgotten on request", row["mac"], ip)
                self.facts.send(Forget(time.time(), str(row["mac"]).lower()))   # the address speaks for nobody now
        if rows:
            self.persist()

    def read_icmp(self) -> None:
        now = time.time()
        for _ in range(BURST):
            try:
                packet = self.icmp_sock.recv(2048)
            except OSError:
                break
            ip = self.prober.answered(packet, now)
            if ip and self.server.book.mark_conflict(ip, now, "answered a ping before it was leased"):
                self.counters["conflicts_found"] += 1
                log.warning("address %s is in use by an unknown host: quarantined, its offer withdrawn", ip)
                self.events.add([(now, "dhcp", ev.DHCP_DECLINE, None, {"ip": ip, "reason": "answered ping"})])
        if self.server.book.pending:
            self.persist()

    def probe_offers(self, offered: list[str], now: float) -> None:
        if self.icmp_sock is None:
            return
        self.prober.expire(now)
        for ip in offered:
            packet = self.prober.want(ip, now)
            if packet is None:
                continue
            try:
                self.icmp_sock.sendto(packet, (ip, 0))
                self.counters["conflict_probes"] += 1
            except OSError:
                pass

    def read_guard(self) -> None:
        now = time.time()
        for _ in range(BURST):
            try:
                data, (src, _) = self.client_sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if self._own_server_id in data:
                continue   # our own broadcast reply looped back: skip the parse under load
            try:
                msg = codec.parse(data)
            except codec.MalformedPacket:
                continue
            for _, status in self.guard.observe_reply(msg, src, now):
                self.publish_guard(now, status)

    def read_server(self) -> None:
        now = time.time()
        rows = []
        for _ in range(BURST):
            try:
                data, (src, sport) = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.ctx.error(f"receive failed: {exc}")
                break
            try:
                out = self.exchanges.handle(data, now, peer=f"{src}:{sport}")
            except Exception as exc:  # a bug must cost one packet, not the service
                self.counters["malformed"] += 1
                self.ctx.error(f"packet from {src}:{sport} not handled: {exc!r}")
                log.exception("packet from %s:%s not handled", src, sport)
                continue
            if out.malformed:
                self.malformed_log(now, "malformed DHCP packet from %s:%s (%d bytes) dropped: %s", src, sport,
                                   len(data), out.malformed)
            elif out.dropped:
                kind, why = out.dropped
                self.dropped_log[kind](now, "%s", why)
            if out.foreign_server:
                for _, status in self.guard.observe_request(out.foreign_server, now):
                    self.publish_guard(now, status)
            rows.extend((now, "dhcp", kind, mac, data) for kind, mac, data in out.events)
        if rows:
            self.events.add(rows)      # before the commit, which takes them along
        self.exchanges.finish()
        self.facts.flush()         # facts a full tracker socket made wait go now, in order
        if rows:
            self.probe_offers([data["ip"] for _, _, kind, _, data in rows if kind == ev.DHCP_OFFER], now)

    def send_reply(self, reply: Reply) -> None:
        try:
            self.sock.sendto(reply.data, (reply.address, reply.port))
        except OSError as exc:
            self.counters["send_failures"] += 1
            log.warning("%s to %s:%d not sent: %s", reply.kind, reply.address, reply.port, exc)

    def persist(self) -> bool:
        """Commit what the book has pending (forgotten leases, conflicts) outside a packet pass."""
        return self.exchanges.commit()


def serve(cfg, args) -> int:
    """`appliance serve dhcp`: the exit status (1 when the socket cannot be opened)."""
    return run_service("dhcp", cfg, lambda ctx: Loop(ctx, cfg), enabled=cfg.dhcp.enabled)
