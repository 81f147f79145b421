"""HTTP/1.1 on `[tftp] http_port` (6970): GET/HEAD of the same names, same bytes, same rules, same tracking.

Newer loads try `http://<tftp server>:6970/<file>` before TFTP (reference
§2.1).  Names go through the same `Files.open` as TFTP (one leading `/`
stripped, case-insensitive, `..`/NUL/symlink escapes refused), generated
configs included.  A single `Range: bytes=` range is honoured (206/416);
anything else gets the whole file.  Connections are bounded and time out, so
a slow or silent client cannot pin the service.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes, urlsplit

from . import admission
from .files import Files
from .limits import Limits
from .transfer_log import TransferLog

log = logging.getLogger("http")

CHUNK = 256 * 1024
PARK_S = 1.0         # as the TFTP loop: a per-phone config waits this long for its lease to reach the table
PARK_STEP_S = 0.02
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 256


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
        name, source = self.files.open(raw, ip)
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
            if not self.limits.acquire(ip):
                busy = admission.BUSY
                self.tracking.failed("http", ip, port, name, busy.result, busy.reason)
                return self._plain(busy.http_status, busy.http_text)
            try:
                self._send_body(ip, port, name, source, wanted, first, last, length)
            finally:
                self.limits.release(ip)
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
        transfer = self.tracking.begin("http", ip, port, name, source.resolved, length, source.names)
        sent, result = 0, "aborted"
        try:
            self._headers(wanted, first, last, length, source.size)
            offset = first
            while sent < length:
                chunk = source.read(offset, min(CHUNK, length - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                offset += len(chunk)
                transfer.bytes, transfer.dirty = sent, True
            self.wfile.flush()
            if sent == length:
                result = "complete"
        except socket.timeout:
            result = "timeout"
            self.close_connection = True
        except OSError:
            self.close_connection = True
        finally:
            self.tracking.end(transfer, result, sent)


class FileHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, files: Files, tracking: TransferLog, limits: Limits):
        handler = type("BoundHandler", (Handler,), {"files": files, "tracking": tracking, "limits": limits})
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        log.warning("HTTP request from %s failed", client_address[0], exc_info=True)


def start(address: str, port: int, files: Files, tracking: TransferLog, limits: Limits) -> FileHTTPServer:
    server = FileHTTPServer((address, port), files, tracking, limits)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="http-6970",
                     daemon=True).start()
    return server

