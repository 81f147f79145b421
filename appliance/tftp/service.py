"""`appliance serve tftp`: the file service process.

The parent builds the firmware catalog, holds the recovery tracker (its Hub:
every fact arrives there in order, recovery/hub.py), serves HTTP :6970, beats
the heartbeat, watches for "firmware.rescan" and "phone.retry" requests and
keeps `[tftp] workers` TFTP worker processes alive.  Each worker owns one
SO_REUSEPORT socket on the TFTP port (created by the parent, so a restarted
worker takes over the same socket and no request is lost to a dead one), runs
its own epoll loop and store handle, and tells the recovery core its file
facts over a socketpair, on which the core pushes its answer table (which
load each phone's config names): a worker answers a config from that table
at once and never waits on the parent.  CPU-bound block sending then uses
every core instead of one GIL.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import time

from .. import events as ev
from ..firmware.catalog import Catalog
from ..firmware.generated import Generated, refused
from ..firmware.licences import Licences
from ..recovery import lldp
from ..recovery.answers import AnswerTable
from ..recovery.facts import CatalogChanged, Retry
from ..recovery.hub import Channel
from ..recovery.station import build_hub
from ..service import HEARTBEAT_SECONDS, CommandTail, PollLoop, ServiceContext, die_with_parent, release_free_heap, run_service
from ..store import Store
from . import http as httpmod
from .admission import reserve_of
from .files import Files
from .limits import Limits
from .loop import LoopConfig, TransferLoop, listen_socket
from .transfer_log import TransferLog

log = logging.getLogger("tftp")

WATCH_SECONDS = 1.0
REFRESH_SECONDS = 2.0
RESTART_BACKOFF = 1.0
COUNTERS = ("requests", "malformed", "refused", "not_found", "busy", "errors", "active", "pumped",
            "evicted", "expired", "timeout_declined")


def build_catalog(cfg, ctx: ServiceContext):
    """The firmware Catalog, or None when it cannot be read (then the root is served as a plain directory)."""
    try:
        catalog = Catalog.from_config(cfg)
        catalog.scan()
    except Exception as exc:
        ctx.error(f"firmware catalog failed ({exc!r}): serving {cfg.tftp.root} as a plain directory")
        return None
    for problem in catalog.problems:
        log.warning("firmware: %s", problem)
    return catalog


def build_generated(cfg, catalog, table: AnswerTable):
    """Generated configs naming what the core's answer table says (None without a catalog)."""
    if catalog is None:
        return None
    return Generated(cfg, catalog, table, licences=Licences(cfg.tftp.root))


def make_files(cfg, catalog, generated) -> Files:
    return Files(cfg.tftp.root, catalog=catalog, generated=generated,
                 cache_dir=cfg.cache_dir if catalog is not None else None,
                 refused=refused if generated is not None else None,
                 licences=generated.licences if generated is not None else None)


def worker_main(cfg, index: int, sock, limits: Limits, generation, counters, catalog, channel=None) -> None:
    """Body of one TFTP worker process (forked: inherits the socket, the scanned catalog and its tracker channel)."""
    die_with_parent()
    parent = os.getppid()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store = Store(cfg.db_path)
    link = Channel(channel) if channel is not None else None
    table = link.table if link is not None else AnswerTable()
    tracking = TransferLog(store, "tftp", facts=link.send if link is not None else None, table=table)
    tracking.start()
    files = make_files(cfg, catalog, build_generated(cfg, catalog, table))
    server = TransferLoop(LoopConfig.from_config(cfg), files, tracking, limits, sock=sock)
    if link is not None:
        link.receive()                         # the table the parent sent before this worker was forked
        server.watch(link.fileno(), link.receive)
        server.tick_hooks.append(link.flush)
    gc.freeze()            # startup objects out of the collector's way: the loop allocates per block
    seen = {"gen": generation.value, "at": 0.0, "trimmed": 0.0}
    base = index * len(COUNTERS)

    def stopping() -> bool:
        now = time.monotonic()
        if now - seen["at"] >= 0.5:
            seen["at"] = now
            live = {"active": len(server.active), "pumped": server.pumped_blocks}
            for i, key in enumerate(COUNTERS):
                counters[base + i] = live[key] if key in live else server.counters.get(key, 0)
            if now - seen["trimmed"] >= HEARTBEAT_SECONDS:
                seen["trimmed"] = now
                release_free_heap()
            if generation.value != seen["gen"]:
                # Only the parent polls the volume and unpacks packages (which can take seconds);
                # by the time it bumps the generation the unpack cache is filled, so this is quick.
                seen["gen"] = generation.value
                if catalog is not None:
                    try:
                        catalog.scan()
                    except Exception as exc:
                        log.warning("worker %d: catalog rescan failed: %r", index, exc)
            if os.getppid() != parent:
                return True
        return stop["now"]

    try:
        server.run(stopping)
    finally:
        server.close()
        tracking.stop()


class FileService:
    def __init__(self, ctx: ServiceContext, cfg):
        self.ctx, self.cfg = ctx, cfg
        self.mp = multiprocessing.get_context("fork")
        self.limits = Limits(cfg.tftp.max_sessions, cfg.tftp.per_client, self.mp,
                             phone_reserve=reserve_of(cfg.tftp.max_sessions, cfg.tftp.phone_reserve_percent))
        self.generation = self.mp.RawValue("l", 0)
        self.nworkers = max(1, cfg.tftp.workers)
        self.counters = self.mp.RawArray("q", self.nworkers * len(COUNTERS))
        self.sockets: list = []
        self.workers: list = []
        self.restarts = 0
        self.catalog = None
        self.http = None
        self.tracking = TransferLog(ctx.store, "http")
        self.hub = None
        self.neighbours = None       # recovery.lldp.Poller: CDP/LLDP load claims for the hub
        self.channels: list = []     # (parent end, worker end) per worker index
        self.commands: CommandTail | None = None
        self._refreshed = time.monotonic()

    def info(self) -> dict:
        """The heartbeat's info.  `limits`: the session budget in use and what it refused or ended
        (refused_per_client, refused_share, refused_full, phones_refused, evicted: counts since start,
        TFTP and HTTP); `tftp`: the workers' counters (evicted: ERRORs sent for those sessions, expired:
        sessions past their lifetime, timeout_declined: `timeout` options over `[tftp] max_timeout`)."""
        totals = {key: sum(self.counters[w * len(COUNTERS) + i] for w in range(self.nworkers))
                  for i, key in enumerate(COUNTERS)}
        return {"port": self.cfg.tftp.port, "http_port": self.cfg.tftp.http_port,
                "workers": [p.pid if p is not None and p.is_alive() else None for p in self.workers],
                "restarts": self.restarts, "sessions": self.limits.active, "limits": self.limits.info(),
                "tftp": totals,
                "http": dict(self.tracking.counters), "catalog": self.catalog is not None,
                "loads": len(self.catalog.loads) if self.catalog is not None else 0,
                "generation": self.generation.value,
                "tracker": self.hub.info() if self.hub is not None else None,
                "neighbours": self.neighbours.info() if self.neighbours is not None else None,
                "http_shares": self.http.info() if self.http is not None else None}

    def start_worker(self, index: int):
        if self.hub is not None and self.channels:
            self.hub.resync(self.channels[index][0])     # it starts with an empty table: send it the whole one
        p = self.mp.Process(target=worker_main, name=f"tftp-worker-{index}", daemon=True,
                            args=(self.cfg, index, self.sockets[index], self.limits, self.generation,
                                  self.counters, self.catalog,
                                  self.channels[index][1] if self.channels else None))
        p.start()
        return p

    def run(self) -> int:
        cfg, ctx = self.cfg, self.ctx
        try:
            self.sockets = [listen_socket("0.0.0.0", cfg.tftp.port) for _ in range(self.nworkers)]
        except OSError as exc:
            return ctx.cannot_listen("udp", cfg.tftp.port, exc)
        self.catalog = build_catalog(cfg, ctx)
        table = AnswerTable()
        if self.catalog is not None:
            try:
                self.hub = build_hub(cfg, self.catalog, ctx.store)
            except OSError as exc:
                ctx.error(f"recovery tracker not started (socket {exc.filename or ''}: {exc.strerror or exc})")
            if self.hub is not None and self.hub.bind_error:
                ctx.error(f"recovery tracker cannot hear DHCP (socket {self.hub.bind_error}): files and configs are "
                          "served, but no phone is tracked until the file service can create its socket")
            if self.hub is not None:
                self.channels = [self.hub.worker_pair() for _ in range(self.nworkers)]
                table = self.hub.table
                self.tracking.facts = self.hub.post
        self.tracking.table = table
        generated = build_generated(cfg, self.catalog, table)
        files = make_files(cfg, self.catalog, generated)
        if cfg.tftp.http_port:
            try:
                self.http = httpmod.start("0.0.0.0", cfg.tftp.http_port, files, self.tracking, self.limits, table=table)
            except OSError as exc:
                return ctx.cannot_listen("tcp", cfg.tftp.http_port, exc,
                                         "set [tftp] http_port = 0 (phones then fetch over TFTP)")
        ctx.store.close()        # forked workers must not inherit an open SQLite connection...
        self.workers = [self.start_worker(i) for i in range(self.nworkers)]
        self.tracking.start()    # ...so the flush thread, which opens its own, starts after the fork
        if self.hub is not None:
            self.hub.start()     # likewise the tracker's writer
            self.neighbours = lldp.attach(cfg, self.catalog, self.hub)
        self.commands = CommandTail(ctx, [ev.CATALOG_RESCAN, ev.PHONE_RETRY])
        ctx.start_heartbeat(self.info)
        log.info("TFTP on udp/%d (%d workers), HTTP on tcp/%s, root %s", cfg.tftp.port, self.nworkers,
                 cfg.tftp.http_port or "off", cfg.tftp.root)
        loop = PollLoop(ctx.stopping, ctx.error)
        loop.every(WATCH_SECONDS, self.watch, first=WATCH_SECONDS)
        try:
            loop.run()
        finally:
            self.shutdown()
        return 0

    def watch(self, now: float) -> None:
        """Replace dead workers, execute the API's commands, refresh the catalog."""
        for i, p in enumerate(self.workers):
            if not p.is_alive():
                self.ctx.error(f"TFTP worker {i} (pid {p.pid}) exited with {p.exitcode}; restarting")
                self.restarts += 1
                self.limits.forget(p.pid)          # its sessions died with it; the others' and HTTP's stay counted
                time.sleep(RESTART_BACKOFF)
                self.workers[i] = self.start_worker(i)
        self.execute_commands()
        now = time.monotonic()
        if self.catalog is not None and now - self._refreshed >= REFRESH_SECONDS:
            self._refreshed = now
            self.rescan(full=False)

    def execute_commands(self) -> None:
        """Rescan and retry commands the API appended since the last look."""
        rows = self.commands.take()
        for row in rows:
            if row["kind"] == ev.PHONE_RETRY and self.hub is not None and row["mac"]:
                by = str(row["data"].get("by") or "api")[:80]
                self.hub.post(Retry(float(row["ts"]), str(row["mac"]).lower(), by))
        if any(row["kind"] == ev.CATALOG_RESCAN for row in rows):
            log.info("firmware rescan requested")
            self.rescan(full=True)

    def rescan(self, full: bool) -> None:
        if self.catalog is None:
            if full:
                self.generation.value += 1
            return
        try:
            if full:
                self.catalog.scan()
                changed = True
            else:
                changed = bool(self.catalog.refresh())
        except Exception as exc:
            self.ctx.error(f"firmware rescan failed: {exc!r}")
            return
        if changed:
            self.generation.value += 1
            if self.hub is not None:
                self.hub.post(CatalogChanged(time.time()))
            loads = self.catalog.loads
            self.ctx.store.events.append([(time.time(), "firmware", ev.CATALOG_CHANGED, None, {
                "loads": len(loads), "incomplete": sum(1 for load in loads if not load.complete)})])

    def shutdown(self) -> None:
        self.ctx.stop()
        for p in self.workers:
            if p.is_alive():
                p.terminate()
        for p in self.workers:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.tracking.stop()
        if self.neighbours is not None:
            self.neighbours.stop()
        if self.hub is not None:
            self.hub.stop()
        for s in self.sockets:
            s.close()


def serve(cfg, args) -> int:
    """`appliance serve tftp`: the exit status (1 when a port cannot be opened)."""
    return run_service("tftp", cfg, lambda ctx: FileService(ctx, cfg))
