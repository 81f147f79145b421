"""TFTP socket loop: one epoll loop per worker process, all workers sharing the port (SO_REUSEPORT).

Replaces tftpy's TftpServer.listen(), where one exception from any packet ends
the loop for everybody, uploads are accepted and overwrite files, and one
select() thread serves all clients.  Here each request gets its own connected
UDP socket (its TID) bound to the address the request arrived on (so replies
never leave from the wrong source address), every packet is handled inside a
catch-all that costs at most that packet, write requests get an error packet
and nothing is opened for writing, and the per-block path is: recv, one
unpack, one pread, send.

With `[tftp] pump = "native"` (the default) the lock-step blocks of firmware
files are sent by the C pump (_pump.c), which owns the epoll wait and gives
this loop every event it does not simply answer with the next block; the
session's counters are copied between the two around each such event.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import sys
import time
from dataclasses import dataclass

from ..logs import RateLimitedLog
from . import admission
from . import packets as pk
from .files import NETASCII_MAX, Files, as_netascii
from .limits import Limits
from .session import ReadSession, Settings
from .transfer_log import TransferLog

try:
    from ._pump import Pump
except ImportError:             # built without a C compiler (setup.py): every block goes through Python
    Pump = None

log = logging.getLogger("tftp")

TICK = 0.1
PROGRESS_SECONDS = 0.5
RECV_BURST = 64
# epoll.poll() without maxevents allocates room for FD_SETSIZE events on every call
MAX_EVENTS = 256
MALFORMED_LOG_PER_WINDOW = 5
MALFORMED_WINDOW = 10.0
# A per-phone config asked from an address the core's table does not hold yet waits this long for the
# table to catch up (its lease is on the way: DHCP tells the core before the ACK leaves), then is served
# as to anyone else.  Bounded in count too: beyond it a request is served at once.
PARK_S = 1.0
MAX_PARKED = 256
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


@dataclass(frozen=True)
class LoopConfig:
    port: int
    address: str = "0.0.0.0"
    settings: Settings = Settings()
    pump: str = "native"

    @classmethod
    def from_config(cfg_cls, cfg, address: str = "0.0.0.0") -> "LoopConfig":
        t = cfg.tftp
        return cfg_cls(port=t.port, address=address,
                       settings=Settings(max_blksize=t.max_blksize, timeout=float(t.timeout), retries=t.retries,
                                         max_timeout=t.max_timeout,
                                         lifetime_per_block=t.lifetime_ms_per_block / 1000.0),
                       pump=t.pump)


def listen_socket(address: str, port: int, reuseport: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock


def _local_address(ancdata, fallback: str) -> str:
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            return socket.inet_ntoa(data[8:12])      # struct in_pktinfo: ifindex, spec_dst, addr
    return fallback


class Active:
    __slots__ = ("sock", "session", "transfer", "source", "ip", "send", "recv", "pumped", "ticket", "touched")

    def __init__(self, sock, session, transfer, source, ip, ticket):
        self.sock, self.session, self.transfer, self.source, self.ip = sock, session, transfer, source, ip
        self.send, self.recv = sock.send, sock.recv
        self.pumped = False
        self.ticket = ticket                 # the session's record in the shared Limits
        self.touched = session.progress_at   # the progress time last written there


class TransferLoop:
    """The loop of one worker.  `stopping()` is polled every tick."""

    def __init__(self, config: LoopConfig, files: Files, tracking: TransferLog, limits: Limits,
                 sock: socket.socket | None = None):
        self.config = config
        self.files = files
        self.tracking = tracking
        self.limits = limits
        self.sock = sock or listen_socket(config.address, config.port)
        self.epoll = select.epoll()
        self.epoll.register(self.sock.fileno(), select.EPOLLIN)
        self.active: dict[int, Active] = {}
        self.peers: dict[tuple, int] = {}
        self.parked: dict[tuple, tuple[float, bytes, str]] = {}     # (ip, port) -> (until, request, local address)
        self.watched: dict[int, object] = {}                        # fd -> callback (the core's answer table)
        self.tick_hooks: list = []                                  # called every tick (the facts waiting to go)
        self.malformed_log = RateLimitedLog(log, MALFORMED_LOG_PER_WINDOW, MALFORMED_WINDOW)
        # busy: refused for room (any share); evicted: ended for a phone; expired: outlived its lifetime;
        # timeout_declined: asked for a `timeout` over [tftp] max_timeout (served with the default)
        self.counters = {"requests": 0, "malformed": 0, "refused": 0, "not_found": 0, "busy": 0, "errors": 0,
                         "evicted": 0, "expired": 0, "timeout_declined": 0}
        self._progress_at = 0.0
        self.pump = None
        if config.pump == "native":
            if Pump is None:
                log.warning("[tftp] pump = \"native\" but appliance/tftp/_pump.c was not built: blocks go through Python")
            else:
                self.pump = Pump(self.epoll.fileno(), max(config.settings.max_blksize, 512), MAX_EVENTS)

    def watch(self, fd: int, callback) -> None:
        """Call `callback()` when `fd` is readable (the worker's channel: answer-table changes), then retry
        the requests parked for the table."""
        self.watched[fd] = callback
        self.epoll.register(fd, select.EPOLLIN)

    @property
    def pumped_blocks(self) -> int:
        return self.pump.blocks if self.pump is not None else 0

    def close(self) -> None:
        for fd in list(self.active):
            self._finish(fd, "aborted", time.monotonic())
        self.epoll.close()
        self.sock.close()

    def run(self, stopping) -> None:
        next_tick = 0.0
        listen_fd = self.sock.fileno()
        active = self.active
        poll = self.epoll.poll
        pump = self.pump.poll if self.pump is not None else None
        monotonic = time.monotonic
        while True:
            now = monotonic()
            if now >= next_tick:
                if stopping():
                    break
                self.tick(now)
                next_tick = now + TICK
            if pump is not None:
                ready = pump(next_tick - now)           # [(fd, None | datagram | errno)]: what the pump left
            else:
                ready = [(fd, None) for fd, _ in poll(next_tick - now, MAX_EVENTS)]
            now = monotonic()                          # one clock read per batch of ready sessions
            for fd, data in ready:
                a = active.get(fd)
                if a is None:
                    if fd == listen_fd:
                        self.read_requests()
                    elif fd in self.watched:
                        self.watched[fd]()
                        self.unpark(now, force=False)
                    continue
                if data is not None:
                    self.handed_back(fd, a, data, now)
                    continue
                try:                                   # inlined read_session: the per-block path
                    data = a.recv(2048)
                    session = a.session
                    for packet in session.on_packet(data, now):
                        a.send(packet)
                    if session.result is not None:
                        self._finish(fd, session.result, now)
                except (BlockingIOError, InterruptedError):
                    continue
                except Exception:
                    self.read_session_failed(fd, a)

    # -- requests --------------------------------------------------------------------------------
    def read_requests(self) -> None:
        for _ in range(RECV_BURST):
            try:
                data, anc, _, peer = self.sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.counters["errors"] += 1
                log.warning("receive failed: %s", exc)
                return
            try:
                self.handle_request(data, peer, _local_address(anc, self.config.address))
            except Exception as exc:  # a bug must cost one packet, not the service
                self.counters["errors"] += 1
                log.exception("request from %s:%s not handled: %r", peer[0], peer[1], exc)

    def _reply_once(self, local: str, peer, packet: bytes) -> None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((local if local != "0.0.0.0" else "", 0))
                s.sendto(packet, peer)
        except OSError as exc:
            log.warning("error reply to %s:%s not sent: %s", peer[0], peer[1], exc)

    def _malformed(self, ip: str, port: int, size: int, reason: str) -> None:
        self.counters["malformed"] += 1
        if self.malformed_log(time.monotonic(), "malformed TFTP packet from %s:%s (%d bytes) dropped: %s",
                              ip, port, size, reason):
            self.tracking.malformed(ip, reason)      # a flood costs the bus no more rows than the log

    def _refuse(self, refusal: admission.Refusal, local: str, peer, name: str, what: str = "") -> None:
        busy = refusal in (admission.BUSY, admission.BUSY_CLIENT, admission.BUSY_SHARE)
        self.counters[{"not found": "not_found"}.get(refusal.result, "busy" if busy else "refused")] += 1
        self.tracking.failed("tftp", peer[0], peer[1], name, refusal.result, what + refusal.reason)
        self._reply_once(local, peer, pk.encode_error(refusal.tftp_code, refusal.tftp_text))

    def handle_request(self, data: bytes, peer, local: str, parked: bool = False) -> None:
        ip, port = peer[0], peer[1]
        try:
            opcode, raw_name, mode, options = pk.parse_request(data)
        except pk.Malformed as exc:
            self._malformed(ip, port, len(data), str(exc))
            return
        shown = raw_name.decode("utf-8", "replace")[:256]
        if not parked:
            self.counters["requests"] += 1
        if (ip, port) in self.peers or (not parked and (ip, port) in self.parked):
            return             # the client repeated its RRQ before our first answer reached it
        if opcode == pk.WRQ:
            return self._refuse(admission.WRITE, local, peer, shown, "WRQ: ")
        if not parked and len(self.parked) < MAX_PARKED and not self.files.knows(raw_name, ip):
            self.parked[(ip, port)] = (time.monotonic() + PARK_S, data, local)
            return
        name, source = self.files.open(raw_name, ip)
        text = source
        if source is not None and mode != "octet":
            text = as_netascii(source) if mode == "netascii" else None
        refusal = admission.decide(write=False, allowed=name is not None, found=source is not None,
                                   mode_ok=text is not None, mode=mode, netascii_max=NETASCII_MAX)
        ticket = -1
        if refusal is None:
            table = getattr(self.tracking, "table", None)      # None: no core, nobody is a phone
            room = self.limits.admit(ip, table is not None and table.at(ip) is not None, time.monotonic())
            if isinstance(room, admission.Refusal):
                refusal = room
            else:
                ticket = room
        if refusal is not None:
            if source is not None:
                (text if text is not None else source).close()      # as_netascii closed the original
            return self._refuse(refusal, local, peer, name or shown)
        assert text is not None and name is not None
        source = text
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((local if local != "0.0.0.0" else "", 0))
            sock.connect(peer)
            sock.setblocking(False)
        except OSError as exc:
            self.limits.leave(ticket)
            source.close()
            log.warning("no data socket for %s:%s: %s", ip, port, exc)
            return
        now = time.monotonic()
        session = ReadSession(source.size, source.read, options,
                              self.config.settings, now)
        if session.timeout_declined:
            self.counters["timeout_declined"] += 1
        transfer = self.tracking.begin("tftp", ip, port, name, source.resolved, source.size, source.names)
        a = Active(sock, session, transfer, source, ip, ticket)
        fd = sock.fileno()
        self.active[fd] = a
        self.peers[(ip, port)] = fd
        first = session.start(now)
        if self.pump is not None and source.fd is not None and session.window == 1:
            try:
                self.pump.attach(fd, source.fd, session.size, session.blksize, session.acked, session.sent,
                                 session.deadline, session.timeout)
                a.pumped = True
            except (ValueError, MemoryError) as exc:
                log.warning("transfer of %s to %s served from Python: %s", name, ip, exc)
        self.epoll.register(fd, select.EPOLLIN)
        self._send(fd, a, first)

    def unpark(self, now: float, force: bool) -> None:
        """Serve the parked requests the table now knows (all of them past their wait, or when `force`)."""
        for key, (until, data, local) in list(self.parked.items()):
            ip = key[0]
            try:
                raw = pk.parse_request(data)[1]
            except pk.Malformed:
                raw = b""
            if not (force or now >= until or self.files.knows(raw, ip)):
                continue
            del self.parked[key]
            try:
                self.handle_request(data, key, local, parked=True)
            except Exception as exc:  # a bug must cost one request, not the service
                self.counters["errors"] += 1
                log.exception("request from %s:%s not handled: %r", key[0], key[1], exc)

    # -- sessions ---------------------------------------------------------------------------------
    def _send(self, fd: int, a: Active, packets: list) -> None:
        send = a.send
        for packet in packets:
            try:
                send(packet)
            except BlockingIOError:
                break      # the retransmit timer covers it
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    self._finish(fd, "aborted", time.monotonic())
                    return
                break

    def _pull(self, fd: int, session: ReadSession, now: float) -> None:
        """The pump's counters into the session, before the session decides anything."""
        acked, sent, deadline = self.pump.state(fd)
        if acked != session.acked:
            session.tries = 0
            session.progress_at = now
        session.acked, session.sent, session.deadline = acked, sent, deadline

    def handed_back(self, fd: int, a: Active, data, now: float) -> None:
        """An event of a pumped session the pump did not answer: the ACK of our OACK or of the last
        block, a duplicate, an ERROR, a short file (`data` is a datagram) or a socket error (an errno)."""
        session = a.session
        self._pull(fd, session, now)
        try:
            if isinstance(data, int):
                raise OSError(data, os.strerror(data))
            out = session.on_packet(data, now)
        except Exception:
            self.read_session_failed(fd, a)
            return
        self._send(fd, a, out)
        if fd not in self.active:
            return
        if session.result is not None:
            self._finish(fd, session.result, now)
        else:
            self.pump.set(fd, session.acked, session.sent, session.deadline)

    def read_session_failed(self, fd: int, a: Active) -> None:
        """The inlined fast path raised: an ICMP error on the socket (client gone), a full send buffer
        (the retransmit timer covers it) or a bug, which costs this transfer only."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ENOBUFS):
            return
        if not isinstance(exc, OSError):
            self.counters["errors"] += 1
            log.error("transfer to %s failed: %r", a.ip, exc, exc_info=exc)
        self._finish(fd, "aborted", time.monotonic())

    def _finish(self, fd: int, result: str, now: float) -> None:
        a = self.active.pop(fd, None)
        if a is None:
            return
        self.peers.pop((a.ip, a.transfer.port), None)
        if a.pumped:
            self.pump.detach(fd)          # before close: the next socket may get this fd number
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass
        a.sock.close()
        a.source.close()
        self.limits.leave(a.ticket)
        self.tracking.end(a.transfer, result, a.session.bytes_acked)

    def tick(self, now: float) -> None:
        for hook in self.tick_hooks:
            hook()
        if self.parked:
            self.unpark(now, force=False)
        progress = now - self._progress_at >= PROGRESS_SECONDS
        if progress:
            self._progress_at = now
        limits = self.limits
        for fd, a in list(self.active.items()):
            s = a.session
            if a.pumped:
                self._pull(fd, s, now)
            if progress and a.transfer.bytes != s.bytes_acked:
                a.transfer.bytes = s.bytes_acked
                a.transfer.dirty = True
            if s.progress_at != a.touched:
                a.touched = s.progress_at
                limits.touch(a.ticket, a.touched)
            if limits.evicted(a.ticket):
                # a phone found no room and this (a stranger's) was the longest-idle session: say so and end it
                self.counters["evicted"] += 1
                self._send(fd, a, [pk.encode_error(pk.ERR_UNDEFINED, "server busy: transfer ended for a phone")])
                self._finish(fd, "aborted", now)
                continue
            if now >= s.deadline or now >= s.expires:
                try:
                    out = s.on_timeout(now)
                except Exception as exc:
                    log.exception("timeout of %s not handled: %r", a.ip, exc)
                    self._finish(fd, "aborted", now)
                    continue
                if out:
                    if s.result is not None:
                        self.counters["expired"] += 1     # ended past its lifetime (the ERROR that says so)
                    self._send(fd, a, out)
                if fd not in self.active:
                    continue
                if s.result is not None:
                    self._finish(fd, s.result, now)
                elif a.pumped:
                    self.pump.set(fd, s.acked, s.sent, s.deadline)
