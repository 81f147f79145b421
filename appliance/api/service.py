"""`appliance serve api`: gunicorn in the foreground running `create_app(cfg)`.

Settings come from `gunicorn.conf.py` beside the station config (built-in
defaults when absent, e.g. a user's /config volume without it); the bind
address always comes from `[api]`.  The gunicorn master beats the `api`
heartbeat, so health reports the API like every other service.

Fair shares (issue 24): gunicorn's gthread worker hands a connection to a
thread as soon as its first byte arrives, and the thread then waits, without
a deadline, for the rest of the request: two dozen clients dripping a byte at
a time took all 16 threads and `/api/v1/health` went unanswered.
`FairThreadWorker` reads each request in its event loop instead, the way
nginx buffers a request before its upstream sees it: a thread is given only a
request that has fully arrived (headers, and a body of at most MAX_REQUEST
bytes), within HEADER_S of its first wait (else 408 and closed); one address
holds at most PER_ADDRESS connections (more are closed at once); a response
write that makes no progress for SEND_S ends the connection.  Event streams
are bounded by `sse.Slots` (all but a reserve of the threads).  What was
refused is counted in the heartbeat's `shares`.
"""
from __future__ import annotations

import argparse
import errno
import logging
import multiprocessing
import runpy
import selectors
import socket
import threading
import time
from functools import partial
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

from .. import logs
from ..config import Config
from ..service import ServiceContext, cannot_listen, die_with_parent
from .watch import Watch

log = logging.getLogger("api")

WORKER = "appliance.api.service.FairThreadWorker"
DEFAULTS = {"worker_class": WORKER, "workers": 1, "threads": 16, "timeout": 90, "graceful_timeout": 5,
            "worker_connections": 512, "accesslog": "-", "errorlog": "-", "control_socket_disable": True}
HEADER_S = 10.0                 # from a request's first wait to its last byte (headers and body)
MAX_REQUEST = 64 * 1024         # headers and body: the API takes no uploads
PER_ADDRESS = 16                # open connections per client address (a browser opens at most 6 per host)
SEND_S = 10.0                   # a response write with no progress for this long ends the connection
COUNTERS = ("refused_over_share", "header_timeouts", "too_large", "send_timeouts", "streams_refused")
# Made in the master at import, so the forked worker's counts are the master's heartbeat's.
_counts = multiprocessing.RawArray("q", len(COUNTERS))


_count_lock = threading.Lock()


def _count(key: str, n: int = 1) -> None:
    with _count_lock:                      # the loop thread and (streams refused) request threads
        _counts[COUNTERS.index(key)] += n


def shares_info() -> dict:
    """The refusals and deadlines counted since the API started (the `api` heartbeat's `shares`)."""
    return {key: int(_counts[i]) for i, key in enumerate(COUNTERS)}


def _answer(sock: socket.socket, status: str, text: str) -> None:
    """A short plain answer on a non-blocking socket, then nothing more; never waits."""
    body = (text + "\n").encode()
    try:
        sock.send(f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    except OSError:
        pass


def request_state(head: bytes | bytearray) -> str:
    """Whether the bytes received hold one whole request: "more", "ready", "too_large" or "chunked"."""
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return "too_large" if len(head) > MAX_REQUEST else "more"
    length = 0
    for line in bytes(head[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return "chunked"
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return "ready"          # gunicorn's parser answers 400 for it
    if end + 4 + length > MAX_REQUEST:
        return "too_large"
    return "ready" if len(head) >= end + 4 + length else "more"


class FairConn(TConn):
    """A gthread connection that tells its worker when it closes (for the per-address count) and carries the
    bytes of its next request until they are whole."""

    def __init__(self, cfg, sock, client, server, on_close):
        super().__init__(cfg, sock, client, server)
        self.on_close = on_close
        self.head = bytearray()
        self.deadline = 0.0
        self.ready = False
        self.gone = False

    def release(self) -> None:
        """Give back this connection's place in its address's share (once)."""
        if not self.gone:
            self.gone = True
            self.on_close(self)

    def close(self, graceful: bool = False) -> None:
        self.release()
        super().close(graceful)


def _ip(client) -> str:
    return client[0] if isinstance(client, tuple) and client else str(client)


class FairThreadWorker(ThreadWorker):
    """gthread whose threads only ever see whole requests (see the module's docstring)."""

    def init_process(self) -> None:
        # A master killed with SIGKILL must not leave this worker holding the API's port: its successor
        # would find the port taken (the worker notices a new parent only when its loop next turns).
        die_with_parent(self.ppid)
        super().init_process()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_ip: dict[str, int] = {}
        self.reading: dict[FairConn, None] = {}      # waiting for the rest of a request, oldest deadline first
        self.ip_lock = threading.Lock()

    # -- admission -----------------------------------------------------------------------------------
    def accept(self, listener) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        ip = _ip(client)
        with self.ip_lock:
            over = self.by_ip.get(ip, 0) >= PER_ADDRESS
            if not over:
                self.by_ip[ip] = self.by_ip.get(ip, 0) + 1
        if over:
            _count("refused_over_share")
            sock.close()
            return
        self.nr_conns += 1
        self.enqueue_req(FairConn(self.cfg, sock, client, listener.getsockname(), self._closed))

    def _closed(self, conn: FairConn) -> None:
        ip = _ip(conn.client)
        with self.ip_lock:
            n = self.by_ip.get(ip, 0) - 1
            if n > 0:
                self.by_ip[ip] = n
            else:
                self.by_ip.pop(ip, None)

    # -- reading whole requests in the loop ------------------------------------------------------------
    def enqueue_req(self, conn) -> None:
        """Every way to a thread (new, kept-alive, pipelined) passes here: only a whole request goes on."""
        if not isinstance(conn, FairConn) or conn.ready:
            if isinstance(conn, FairConn):
                conn.ready = False
            super().enqueue_req(conn)
            return
        if conn.parser is not None:
            conn.head += conn.parser.unreader.take_buffered()     # read ahead by the last request
        conn.deadline = time.monotonic() + HEADER_S
        if self._settle(conn):
            return
        conn.sock.setblocking(False)
        self.reading[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: FairConn, _sock) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.head += data
        self._settle(conn)

    def _settle(self, conn: FairConn) -> bool:
        """Hand a whole request to a thread, or refuse it; False while more is to come."""
        state = request_state(conn.head)
        if state == "more":
            return False
        if state == "too_large":
            _count("too_large")
            return self._refuse(conn, "413 Content Too Large", "request too large: the API takes at most "
                                f"{MAX_REQUEST // 1024} KiB of headers and body")
        if state == "chunked":
            return self._refuse(conn, "411 Length Required", "send the body with a Content-Length")
        self._unwatch(conn)
        conn.init()                                        # the parser (HTTP/1.1 over plain TCP: no I/O)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        conn.ready = True
        self.enqueue_req(conn)
        return True

    def _refuse(self, conn: FairConn, status: str, text: str) -> bool:
        conn.sock.setblocking(False)
        _answer(conn.sock, status, text)
        self._drop(conn)
        return True

    def _unwatch(self, conn: FairConn) -> None:
        if self.reading.pop(conn, 0) is None:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _drop(self, conn: FairConn) -> None:
        self._unwatch(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also end the requests not whole by their deadline (all of them when the worker stops)."""
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self.reading):
            if conn.deadline > now and self.alive:
                break                                      # insertion order is deadline order
            if self.alive:
                _count("header_timeouts")
                _answer(conn.sock, "408 Request Timeout", f"the request did not arrive within {HEADER_S:g} s")
            self._drop(conn)

    # -- responses -------------------------------------------------------------------------------------
    def handle_request(self, req, conn):
        conn.sock.settimeout(SEND_S)       # a client that stops reading loses its thread, not keeps it
        try:
            keep = super().handle_request(req, conn)
        except TimeoutError:
            _count("send_timeouts")
            keep = False
        if not keep and isinstance(conn, FairConn):
            # The client has its whole answer and may connect again at once; the loop closes this socket
            # only when it next turns, which under load is after that (a scrape flood of 6 clients was
            # refused over its share of 16, by connections already answered).
            conn.release()
        return keep


class ApiApplication(BaseApplication):
    def __init__(self, cfg: Config, conf_file: Path | None):
        self.cfg_station = cfg
        self.conf_file = conf_file
        self.ctx: ServiceContext | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in DEFAULTS.items():
            self.cfg.set(key, value)
        if self.conf_file and self.conf_file.is_file():
            for key, value in runpy.run_path(str(self.conf_file)).items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)
        self.cfg.set("bind", [f"{self.cfg_station.api.host}:{self.cfg_station.api.port}"])
        if self.cfg.worker_class_str != WORKER:     # any other worker lets slow clients take every thread
            log.warning("gunicorn worker_class %s ignored: the API runs %s", self.cfg.worker_class_str, WORKER)
            self.cfg.set("worker_class", WORKER)
        self.cfg.set("logger_class", logs.gunicorn_logger("api"))    # the station's one log format
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("on_exit", self._on_exit)
        self.cfg.set("proc_name", "appliance-api")

    def _when_ready(self, server) -> None:
        self.ctx = ServiceContext("api", self.cfg_station)
        cfg = self.cfg_station
        watch = Watch(cfg, self.ctx.store)      # logs each red problem as it appears (problems.py)
        self.ctx.start_heartbeat(lambda: {"bind": f"{cfg.api.host}:{cfg.api.port}", "workers": self.cfg.workers,
                                          "writes": bool(cfg.api.token), "shares": shares_info(),
                                          "problems": watch.tick()})
        shown = cfg.network.address if cfg.api.host in ("0.0.0.0", "::", "") else cfg.api.host
        log.info("dashboard and status API on http://%s:%d/ (writes %s)", shown, cfg.api.port,
                 "need the bearer token" if cfg.api.token else "disabled: no token")

    def _on_exit(self, server) -> None:
        if self.ctx:
            self.ctx.stop()

    def load(self):
        from . import sse
        from .app import create_app
        return create_app(self.cfg_station, streams=sse.Slots.for_threads(
            self.cfg.threads, on_refuse=lambda: _count("streams_refused")))


def conf_path(cfg: Config) -> Path:
    return Path(cfg.source).resolve().parent / "gunicorn.conf.py"


def import_before_fork() -> None:
    """Import Flask and the app's modules in the master, where the forked worker shares them
    copy-on-write (measured ~3 MiB less for the API), but open nothing: the store and app are made in
    the worker (`load`), so no SQLite connection crosses a fork."""
    import gc

    from . import app  # noqa: F401

    gc.freeze()   # the collector would otherwise touch, and so copy, every shared object


def serve(cfg: Config, args: argparse.Namespace | None = None) -> int:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    failed = cannot_listen("api", cfg, "tcp", cfg.api.host, cfg.api.port, "set [api] port to a free one")
    if failed is not None:
        return failed
    import_before_fork()
    ApiApplication(cfg, conf_path(cfg)).run()
    return 0
