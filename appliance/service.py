"""The skeleton every long-lived service plugs into: `serve`, `ServiceContext`, `PollLoop`, `CommandTail`.

    def serve(cfg, args):                       # appliance/dhcp/service.py
        return run_service("dhcp", cfg, Loop, enabled=cfg.dhcp.enabled)

`run_service` makes the context (store, heartbeat, error reporting), turns SIGTERM/SIGINT into
`ctx.stopping`, idles a disabled service with a heartbeat that says so, and always stops the context.
A service's loop is a `PollLoop` (sockets and their handlers, timers as data), reads the API's
commands for it through a `CommandTail`, and writes the bus through one `batch.BatchWriter`.
A service calls `ctx.error()` for anything it survives (a malformed packet, a failed write), so the
status API shows the last error beside the heartbeat.  The heartbeat thread also keeps the tables this
service prunes (`store.BOUNDS`: the file service, transfers and events) within their bounds, off the loop.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import selectors
import signal
import socket
import threading
import time
from typing import Any, Callable, Iterable, Protocol

from . import ports, supervise
from .config import Config
from .store import EventRow, Store

log = logging.getLogger("appliance")

HEARTBEAT_SECONDS = 2.0
WRITABLE_POLL_SECONDS = 5.0

# Services that cannot do their job without writing, and why: with an unwritable
# state dir they wait, idle and saying so, instead of crash-looping into FATAL
# (which would make `appliance run` stop the file service too).
MUST_WRITE = {"dhcp": "a lease must be stored before its ACK, so no lease can be handed out"}

PR_SET_PDEATHSIG = 1
# How long a service waits for its own predecessor's port: a worker of the killed one that has not yet
# noticed (die_with_parent makes that a fraction of a second; gunicorn's graceful exit is 5 s at most).
LEFTOVER_WAIT_SECONDS = 10.0


def die_with_parent(parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this (forked worker) process when its parent dies, so a parent
    killed with SIGKILL leaves no worker holding the service's port.  `parent`: the PID that forked it, when
    known; if that one is already gone (died between the fork and this call), exit now.

    Never judged by the parent being PID 1: in a container the service itself may be PID 1."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(0)


class ServiceContext:
    def __init__(self, name: str, config: Config, store: Store | None = None):
        self.name = name
        self.config = config
        self.store = store or Store(config.db_path)
        self.log = logging.getLogger(name)
        self.started = time.time()
        self.stopping = threading.Event()
        self._info: Callable[[], dict[str, Any]] = dict
        self._thread: threading.Thread | None = None
        self.pruned: dict[str, int] = {}         # table -> rows deleted since start (shown in the heartbeat)
        self.last_error = ""
        self.exit_cause: ports.BindFailure | None = None     # set when it cannot start; run_service tells supervisor
        if getattr(self.store, "read_only", None):
            self._unwritable()

    def _unwritable(self) -> None:
        """Say once, naming the state dir and the cause; a MUST_WRITE service then waits until it is writable."""
        where, cause = self.store.path.parent, self.store.read_only
        why = MUST_WRITE.get(self.name)
        if why is None:
            self.log.error("state dir %s cannot be written: %s; serving from what can be read, recording no "
                           "transfers, events or heartbeats", where, cause)
            return
        self.log.error("%s refuses to serve: state dir %s cannot be written: %s; %s; waiting until it is writable",
                       self.name, where, cause, why)
        try:
            signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        except ValueError:
            pass    # not the main thread: the caller stops us through `stopping`
        while not self.stopping.wait(WRITABLE_POLL_SECONDS):
            store = Store(self.store.path)
            if not store.read_only:
                self.log.warning("state dir %s is writable again: %s starts", where, self.name)
                self.store = store
                return
            store.close()
        raise SystemExit(0)

    def start_heartbeat(self, info: Callable[[], dict[str, Any]] | None = None) -> None:
        """Beat every HEARTBEAT_SECONDS from a daemon thread; `info()` adds live figures."""
        if info:
            self._info = info
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if getattr(self.store, "read_only", None):
            return    # said once at start; a warning every beat would bury it
        info = self._info()
        if self.pruned:
            info = {**info, "pruned": dict(self.pruned)}
        try:
            self.store.services.beat(self.name, os.getpid(), info, started=self.started)
        except Exception as exc:  # a full disk must not stop the service
            self.log.warning("heartbeat not recorded: %s", exc)

    def prune(self) -> None:
        """Cut the tables this service prunes back to their bounds (store.BOUNDS); a failure is said, not raised."""
        if getattr(self.store, "read_only", None):
            return
        try:
            done = self.store.prune(self.name, time.time())
        except Exception as exc:   # locked past the busy timeout, disk full: the next beat tries again
            self.log.warning("old rows not pruned: %s", exc)
            return
        for table, n in done.items():
            if n:
                self.pruned[table] = self.pruned.get(table, 0) + n
                self.log.debug("pruned %d %s rows", n, table)

    def _run(self) -> None:
        self.prune()
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()
            self.prune()
            release_free_heap()

    def cannot_listen(self, proto: str, port: int, exc: OSError, alternative: str = "", address: str = "") -> int:
        """Say once, at ERROR, why the service cannot open `port` and what to do; returns the exit status (1).

        A port someone else holds, or one that needs root, is marked permanent: `appliance run` then stops
        the station at once with this line, instead of restarting the service for 18 s (supervise.sh).
        """
        self.exit_cause = ports.cannot_listen(proto, port, exc, alternative, address)
        self.log.error("%s cannot start: %s", self.name, self.exit_cause.line)
        self._record_error(f"cannot start: {self.exit_cause.line}")
        return 1

    def error(self, message: str) -> None:
        self.log.warning("%s", message)
        self._record_error(message)

    def _record_error(self, message: str) -> None:
        self.last_error = message
        if getattr(self.store, "read_only", None):
            return
        try:
            self.store.services.error(self.name, message)
        except Exception as exc:
            self.log.warning("error not recorded: %s", exc)

    def stop(self) -> None:
        self.stopping.set()


class Runnable(Protocol):
    def run(self) -> int: ...


def run_service(name: str, cfg: Config, build: Callable[[ServiceContext], Runnable], enabled: bool = True) -> int:
    """Run one service until SIGTERM/SIGINT.

    Args:
        name: the service's name (its heartbeat row, its logger).
        cfg: the station config.
        build: makes the service from its context; its `run()` returns the exit status.
        enabled: False idles with a heartbeat saying so (supervisor must not see a crash loop).
    Returns:
        the service's exit status: 0 after a clean stop, 1 when it could not start (said in ctx.error).
    """
    supervise.clear_exit_cause(cfg.state_dir, name)
    try:
        ctx = ServiceContext(name, cfg)
    except Exception as exc:      # the store cannot be opened at all (a read-only one is handled inside)
        logging.getLogger(name).exception("%s cannot start: %s: %s", name, type(exc).__name__, exc)
        supervise.record_exit_cause(cfg.state_dir, name, f"{type(exc).__name__}: {exc}", permanent=False)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: ctx.stopping.set())
    status = 1
    try:
        if not enabled:
            logging.getLogger(name).info("%s disabled in the config ([%s] enabled = false)", name, name)
            ctx.start_heartbeat(lambda: {"enabled": False})
            ctx.stopping.wait()
            status = 0
        else:
            status = build(ctx).run()
    except KeyboardInterrupt:
        status = 0
    except Exception as exc:
        # Logged here, in the station's format, rather than as a bare traceback on stderr.
        ctx.log.exception("%s stopped: %s: %s", name, type(exc).__name__, exc)
        ctx.last_error = ctx.last_error or f"{type(exc).__name__}: {exc}"
    finally:
        ctx.stop()
    if status:
        cause = ctx.exit_cause
        supervise.record_exit_cause(cfg.state_dir, name, cause.line if cause else ctx.last_error,
                                    permanent=bool(cause and cause.permanent))
    return status


def cannot_listen(name: str, cfg: Config, proto: str, host: str, port: int, alternative: str = "") -> int | None:
    """For a service whose server binds later, out of our hands (gunicorn retries a taken port for 5 s, then
    exits with its own words): try the bind now; None when it is free, else say why as `ctx.cannot_listen`
    does and return the exit status."""
    deadline = time.monotonic() + LEFTOVER_WAIT_SECONDS
    unseen = 0
    while True:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is no holder
            sock.bind((host, port))
            return None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and time.monotonic() < deadline:
                found = ports.holder(proto, port, host)
                # This service's own predecessor (killed, its worker still closing) is no one else: wait for
                # it.  No holder in sight may be one that closed just now: one more try before saying so.
                if ports.is_service(found, name) or (found is None and unseen < 1):
                    unseen += found is None
                    time.sleep(0.2)
                    continue
            failure = ports.cannot_listen(proto, port, exc, alternative, host)
            logging.getLogger(name).error("%s cannot start: %s", name, failure.line)
            supervise.record_exit_cause(cfg.state_dir, name, failure.line, failure.permanent)
            return 1
        finally:
            sock.close()


class PollLoop:
    """Readable sockets and their handlers, timers as data, until `stopping` is set.

    Each pass waits for the nearest timer at most, runs every timer that is due, then the handler of
    each readable socket (a handler reads what it can without blocking).  A handler or timer that
    raises is reported with `on_error` and the loop goes on: one bad packet never stops a service.
    """

    def __init__(self, stopping: threading.Event, on_error: Callable[[str], None]):
        self.stopping = stopping
        self.on_error = on_error
        self._selector = selectors.DefaultSelector()
        self._timers: list[list] = []          # [due, interval, fn]

    def add_reader(self, sock: Any, handler: Callable[[], None]) -> None:
        self._selector.register(sock, selectors.EVENT_READ, handler)

    def every(self, interval: float, fn: Callable[[float], None], first: float = 0.0) -> None:
        """Call `fn(now)` every `interval` seconds (first after `first` seconds)."""
        self._timers.append([time.time() + first, interval, fn])

    def run(self, max_wait: float = 1.0) -> None:
        try:
            while not self.stopping.is_set():
                now = time.time()
                for timer in self._timers:
                    if now >= timer[0]:
                        timer[0] = now + timer[1]
                        self._call(timer[2], now)
                wait = min([t[0] for t in self._timers] + [now + max_wait]) - time.time()
                for key, _ in self._selector.select(max(0.0, wait)):
                    self._call(key.data)
        finally:
            self._selector.close()

    def _call(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.on_error(f"{getattr(fn, '__qualname__', fn)} failed: {exc!r}")
            log.exception("%s failed", getattr(fn, "__qualname__", fn))


class CommandTail:
    """The commands (event kinds) the API appended for this service, each read once, in order.

    Starts at the newest event when made: a command appended while the service was down was meant for
    the service that was running then (and the owner's state at start comes from its table anyway).
    """

    def __init__(self, ctx: ServiceContext, kinds: Iterable[str]):
        self.ctx, self.kinds = ctx, list(kinds)
        try:
            self.cursor = ctx.store.events.last_id()
        except Exception:
            self.cursor = 0

    def take(self) -> list[EventRow]:
        """Commands appended since the last call; [] (and an error recorded) if the store cannot be read."""
        try:
            rows, self.cursor = self.ctx.store.events.commands_after(self.cursor, self.kinds)
        except Exception as exc:
            self.ctx.error(f"commands ({', '.join(self.kinds)}) not read: {exc}")
            return []
        return rows


def _libc_malloc_trim():
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):     # not glibc (musl, macOS): nothing to release this way
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_MALLOC_TRIM = _libc_malloc_trim()


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS.  glibc keeps each thread's arena at its high-water
    mark: a burst of 50 phones left the file service ~10 MiB above idle for good, on a station
    that must fit a Raspberry Pi Zero 2 W.  One malloc_trim(0) per heartbeat costs ~0.14 ms."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
