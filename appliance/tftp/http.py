"""HTTP/1.1 on `[tftp] http_port` (6970): GET/HEAD of the same names, same bytes, same rules, same tracking.

Newer loads try `http://<tftp server>:6970/<file>` before TFTP (reference
§2.1).  Names go through the same `Files.open` as TFTP (one leading `/`
stripped, case-insensitive, `..`/NUL/symlink escapes refused), generated
configs included.  A single `Range: bytes=` range is honoured (206/416);
anything else gets the whole file.

Fair shares (issue 24): a slow, silent or greedy client cannot pin the service.
Each request has a whole-request deadline, not only a per-read idle timeout:
its headers must be complete within `Shares.header_s` of the first wait, and
its body must leave within `body_grace_s + length / min_rate` (a client that
reads a byte at a time loses its slot, a phone on a busy bench never comes
near).  Each address holds at most `per_address` connections (over its share
the connection is closed at once), and the last `phone_reserve` of the
`max_connections` slots are only for addresses that hold a phone's lease (the
core's answer table says which); a client refused for room gets 503 with
Retry-After.  Every refusal and deadline is counted (`FileHTTPServer.info()`).
"""
from __future__ import annotations

import io
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes, urlsplit

from ..recovery.answers import AnswerTable
from . import admission
from .files import Files
from .limits import Limits
from .transfer_log import TransferLog

log = logging.getLogger("http")

CHUNK = 256 * 1024
PARK_S = 1.0         # as the TFTP loop: a per-phone config waits this long for its lease to reach the table
PARK_STEP_S = 0.02
IDLE_TIMEOUT = 30.0      # one read or write with no progress at all
MAX_CONNECTIONS = 256
DRAIN_BYTES = 65536      # read (and dropped) from a refused connection, so closing it sends FIN, not RST
# The kernel's send buffer per connection.  Linux grows it to tcp_wmem's maximum (4 MiB) otherwise: a reader that
# never reads would hold that much memory per slot after its thread left, and a deadline on the body could not see it.
SEND_BUFFER = 256 * 1024


@dataclass(frozen=True)
class Shares:
    """The connection budget of HTTP :6970 (defaults: what the station ships).

    max_connections: open connections in all; phone_reserve: of those, how many only addresses holding a phone's
    lease may use; per_address: open connections one address may hold; header_s: from the start of a request's
    wait to its last header line; min_rate/body_grace_s: a body of N bytes must be sent within body_grace_s +
    N / min_rate seconds (64 KiB/s: a 10 MB load in under three minutes, which no phone on a bench comes near);
    retry_after_s: what a 503 for room tells the client."""
    max_connections: int = MAX_CONNECTIONS
    phone_reserve: int = 64
    per_address: int = 8
    header_s: float = 10.0
    min_rate: float = 64 * 1024
    body_grace_s: float = 30.0
    idle_s: float = IDLE_TIMEOUT
    retry_after_s: int = 5


class _DeadlineReader(io.RawIOBase):
    """The request's socket as a raw stream whose every read waits at most until the handler's deadline.

    Why not `socket.settimeout`: that bounds one recv, and a client sending a byte just inside it keeps its
    connection (and thread) for ever."""

    def __init__(self, sock: socket.socket, handler: "Handler"):
        self.sock, self.handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            self.handler.server.count("header_timeouts")     # type: ignore[attr-defined]
            raise TimeoutError("request not complete before its deadline")
        self.sock.settimeout(min(self.handler.shares.idle_s, left))
        try:
            return self.sock.recv_into(buf)
        except TimeoutError:
            self.handler.server.count("header_timeouts")     # type: ignore[attr-defined]
            raise


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """-> (first, last) inclusive, None for "whole file", or "unsatisfiable"."""
    if not header:
        return None
    header = header.strip()
    if not header.lower().startswith("bytes=") or "," in header:
        return None
    spec = header[6:].strip()
    first_s, sep, last_s = spec.partition("-")
    if not sep:
        return None
    try:
        if first_s == "":
            n = int(last_s)
            if n <= 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1) if size else "unsatisfiable"
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    if first >= size:
        return "unsatisfiable"
    if first < 0 or last < first:
        return None
    return first, min(last, size - 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recovery-station"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    files: Files
    tracking: TransferLog
    limits: Limits
    shares: Shares
    table: AnswerTable | None
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self), 65536)

    def handle_one_request(self) -> None:
        # Each request (a kept-alive connection's next one too) gets header_s from here to its last header line.
        self.deadline = time.monotonic() + self.shares.header_s
        super().handle_one_request()

    def log_message(self, fmt, *args) -> None:
        log.debug("%s " + fmt, self.client_address[0], *args)

    def _plain(self, code: int, text: str, head: bool = False) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _refuse_write(self) -> None:
        ip, port = self.client_address[:2]
        self.tracking.failed("http", ip, port, self.path[:256], admission.WRITE.result,
                             f"{self.command}: {admission.WRITE.reason}")
        self.send_response(admission.WRITE.http_status)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_PUT = do_POST = do_DELETE = do_PATCH = _refuse_write

    def _serve(self, head: bool) -> None:
        ip, port = self.client_address[:2]
        raw = unquote_to_bytes(urlsplit(self.path).path)
        shown = raw.decode("utf-8", "replace")[:256]
        until = time.monotonic() + PARK_S
        while not self.files.knows(raw, ip) and time.monotonic() < until:
            time.sleep(PARK_STEP_S)      # this connection's own thread: nobody else waits
        name, source = self.files.open(raw, ip, proto="http")
        refusal = admission.decide(write=False, allowed=name is not None, found=source is not None)
        if refusal is not None:
            if not head:
                self.tracking.failed("http", ip, port, name or shown, refusal.result, refusal.reason)
            return self._plain(refusal.http_status, refusal.http_text, head)
        assert source is not None and name is not None
        try:
            wanted = parse_range(self.headers.get("Range"), source.size)
            if wanted == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{source.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = wanted if isinstance(wanted, tuple) else (0, source.size - 1)
            length = last - first + 1
            if head:
                self._headers(wanted, first, last, length, source.size)
                return
            phone = self.table is not None and self.table.at(ip) is not None    # may use the phones' reserve
            if not self.limits.acquire(ip, phone):
                busy = admission.BUSY
                self.tracking.failed("http", ip, port, name, busy.result, busy.reason)
                return self._plain(busy.http_status, busy.http_text)
            try:
                self._send_body(ip, port, name, source, wanted, first, last, length)
            finally:
                self.limits.release(ip, phone)
        finally:
            source.close()

    def _headers(self, wanted, first: int, last: int, length: int, size: int) -> None:
        self.send_response(206 if isinstance(wanted, tuple) else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if isinstance(wanted, tuple):
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()

    def _send_body(self, ip, port, name, source, wanted, first, last, length) -> None:
        transfer = self.tracking.begin("http", ip, port, name, source.resolved, length, source.names,
                                       agent=self.headers.get("User-Agent"))
        sent, result = 0, "aborted"
        shares = self.shares
        deadline = time.monotonic() + shares.body_grace_s + length / shares.min_rate
        try:
            self._headers(wanted, first, last, length, source.size)
            offset = first
            while sent < length:
                chunk = source.read(offset, min(CHUNK, length - sent))
                if not chunk:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("body not taken before its deadline")
                self.connection.settimeout(min(shares.idle_s, left))   # sendall: the whole chunk within it
                self.wfile.write(chunk)
                sent += len(chunk)
                offset += len(chunk)
                transfer.bytes, transfer.dirty = sent, True
            self.wfile.flush()
            if sent == length:
                result = "complete"
        except TimeoutError:
            result = "timeout"
            self.server.count("body_timeouts")     # type: ignore[attr-defined]
            self.close_connection = True
            try:    # reset, not FIN behind the unsent rest: the kernel must not keep feeding a reader this slow
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        except OSError:
            self.close_connection = True
        finally:
            self.tracking.end(transfer, result, sent)


class FileHTTPServer(ThreadingHTTPServer):
    """The threads of HTTP :6970, one per admitted connection, admitted by `Shares` (see the module's docstring)."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, files: Files, tracking: TransferLog, limits: Limits,
                 table: AnswerTable | None = None, shares: Shares | None = None):
        self.shares = shares or Shares()
        self.table = table
        handler = type("BoundHandler", (Handler,), {"files": files, "tracking": tracking, "limits": limits,
                                                     "shares": self.shares, "table": table})
        self._lock = threading.Lock()
        self._open = 0                      # connections admitted and not yet closed
        self._others = 0                    # ... of which by addresses that held no phone's lease when admitted
        self._by_ip: dict[str, int] = {}
        self._phone: dict[int, bool] = {}   # id(request) -> admitted as a phone
        self.counters = {"admitted": 0, "refused_busy": 0, "refused_over_share": 0, "header_timeouts": 0,
                         "body_timeouts": 0}
        super().__init__(address, handler)

    def count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def info(self) -> dict:
        """Counters for the file service's heartbeat: open connections now, admissions, refusals, deadlines."""
        with self._lock:
            return {"open": self._open, "others_open": self._others, **self.counters}

    def _admit(self, request, ip: str) -> str | None:
        """None when admitted (and counted open), else why not: "over_share" or "busy"."""
        shares = self.shares
        phone = self.table is not None and self.table.at(ip) is not None
        with self._lock:
            if self._by_ip.get(ip, 0) >= shares.per_address:
                self.counters["refused_over_share"] += 1
                return "over_share"
            room = shares.max_connections if phone else shares.max_connections - shares.phone_reserve
            if self._open >= shares.max_connections or (not phone and self._others >= room):
                self.counters["refused_busy"] += 1
                return "busy"
            self._open += 1
            self._others += 0 if phone else 1
            self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
            self._phone[id(request)] = phone
            self.counters["admitted"] += 1
            return None

    def _leave(self, request, ip: str) -> None:
        with self._lock:
            phone = self._phone.pop(id(request), None)
            if phone is None:
                return
            self._open -= 1
            self._others -= 0 if phone else 1
            n = self._by_ip.get(ip, 0) - 1
            if n > 0:
                self._by_ip[ip] = n
            else:
                self._by_ip.pop(ip, None)

    def _refuse(self, request, why: str) -> None:
        """Close at once (over its share), or say 503 with Retry-After (no room); never blocks the accept loop."""
        try:
            request.setblocking(False)
            try:
                request.recv(DRAIN_BYTES)
            except OSError:
                pass
            if why == "busy":
                body = b"Too many connections right now: try again in a few seconds.\n"
                request.send(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %d\r\nConnection: close\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s"
                             % (self.shares.retry_after_s, len(body), body))
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request(self, request, client_address):
        ip = client_address[0]
        why = self._admit(request, ip)
        if why is not None:
            log.debug("HTTP connection from %s refused: %s", ip, why)
            self._refuse(request, why)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._leave(request, ip)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._leave(request, client_address[0])

    def handle_error(self, request, client_address) -> None:
        log.warning("HTTP request from %s failed", client_address[0], exc_info=True)


def start(address: str, port: int, files: Files, tracking: TransferLog, limits: Limits,
          table: AnswerTable | None = None, shares: Shares | None = None) -> FileHTTPServer:
    """Serve HTTP :6970 on a daemon thread; `table` is the core's answer table (whose addresses are phones')."""
    server = FileHTTPServer((address, port), files, tracking, limits, table=table, shares=shares)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="http-6970",
                     daemon=True).start()
    return server
