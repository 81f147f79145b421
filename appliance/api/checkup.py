"""The facts appliance/problems.py judges, read from where they live: the firmware catalog, the recovery
core's plans, the phones the store remembers, DHCP's published status, the services' heartbeats and the
interface.  I/O; the judging is problems.py's.

Used by `views.health` (so /api/v1/health, the dashboard, the container healthcheck and `appliance status`)
and at start-up by `appliance run` (`warn_at_start`, before any service runs: services, guard and pool are
then not judged, the rest is).  Reading a fact never raises: a part that cannot be read is said so.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from .. import netinfo, problems
from ..config import Config
from ..problems import Facts, Library, Link, Problem, Seen, Station
from ..store import Store
from . import firmware as panel

log = logging.getLogger("station")

# A phone counts as "seen" for these rows while it is not recovered and was heard from within a bench
# day: a model plugged in last month must not keep today's station red.
SEEN_WITHIN_S = 12 * 3600.0
MAX_SEEN_ROWS = 5000

# (catalog, scan count) -> the core's factory-reset defaults.  One tuple, replaced whole (no lock: the API's
# heartbeat thread runs this in gunicorn's master, and a lock held there while a worker forks stays held).
_defaults_cache: tuple[tuple[int, int], dict[str, str]] | None = None


# Set by compose.yaml: the folder a tech copies firmware into on the host ("./firmware"), which the container
# sees as [tftp] root (/firmware); advice names the host's folder, the one the tech can open.
SHOWN_AS = "APPLIANCE_FIRMWARE_SHOWN_AS"


def station(cfg: Config) -> Station:
    root = os.environ.get(SHOWN_AS) or str(cfg.tftp.root)
    return Station(config=str(cfg.source), interface=cfg.network.interface, firmware_root=root,
                   dhcp_enabled=bool(cfg.dhcp.enabled), guard_mode=str(cfg.dhcp.guard),
                   guard_interval=float(cfg.dhcp.guard_interval))


def link(cfg: Config) -> Link:
    try:
        state = netinfo.link_state(cfg.network.interface)
        present = tuple(netinfo.interface_names()) if state == "missing" else ()
    except OSError as exc:
        return Link("unknown", detail=str(exc))
    return Link(state, present)


def _catalog(cfg: Config, own: Any = None) -> Any:
    """`own` if given, else the API's one catalog per process; refreshed (an mtime poll, at most once a second)."""
    cat = own if own is not None else panel._catalog(cfg)
    cat.refresh()
    return cat


def library(cfg: Config, cat: Any) -> Library:
    root = Path(cfg.tftp.root)
    if not root.is_dir():
        return Library(unreadable="no such folder" if not root.exists() else "not a folder")
    complete = tuple(load.id for load in cat.loads if load.complete)
    incomplete = tuple((load.id, tuple(load.missing) + tuple(load.refused)) for load in cat.loads if not load.complete)
    return Library(complete=complete, incomplete=incomplete)


def _core(cat: Any, cfg: Config) -> tuple[Any, dict[str, str]]:
    """The recovery core's Library over this catalog and its factory-reset defaults (model -> first load),
    asked of the core itself as the file service does, computed once per catalog scan."""
    from ..recovery.facts import CatalogChanged
    from ..recovery.station import make_library, make_tracker

    global _defaults_cache
    lib = make_library(cat, cfg)
    key = (id(cat), int(getattr(cat, "scans", 0)))
    cached = _defaults_cache
    if cached is not None and cached[0] == key:
        return lib, cached[1]
    core = make_tracker(cat, cfg)
    core.handle(CatalogChanged(0.0), 0.0)
    defaults = dict(core.defaults())
    _defaults_cache = (key, defaults)
    return lib, defaults


def _need_words(need: Any, model: str) -> str:
    proto = f"{need.proto.upper()} " if need.proto else ""
    span = f"{need.low} to {need.high}" if need.low and need.high else "the stepping-stone release"
    excluded = f" (not {', '.join(need.excluded)})" if need.excluded else ""
    return f"a {proto}load from {span}{excluded} for the {model}"


def seen_models(cfg: Config, store: Store, cat: Any, now: float) -> tuple[Seen, ...]:
    """One Seen per model of the phones heard from lately that are not recovered yet, judged over every load
    they run (a 7965 on 8.3(2) and a factory-reset one are the same model with two plans)."""
    from ..firmware.versions import protocol

    groups: dict[str, list[dict]] = {}
    for row in store.phones.all()[:MAX_SEEN_ROWS]:
        model = row.get("model")
        if not model or row.get("state") == "done" or now - float(row.get("last_seen") or 0) > SEEN_WITHIN_S:
            continue
        groups.setdefault(model, []).append(row)
    if not groups:
        return ()
    lib, defaults = _core(cat, cfg)
    out = []
    for model, rows in sorted(groups.items()):
        protocols = {protocol(r.get("current_load")) for r in rows}
        proto = next(iter(protocols)) if len(protocols) == 1 else None
        not_upgradable = lib.upgradable(model)
        if not_upgradable is not None:
            out.append(Seen(model, len(rows), proto, upgradable=False, images=not_upgradable[1]))
            continue
        target: str | None = None
        stone: str | None = None
        certain = False
        for current in sorted({r.get("current_load") or "" for r in rows}):
            plan = lib.planner(model, current or None, None, frozenset())
            if plan.missing is not None and plan.missing.kind == "target":
                target, proto = None, plan.missing.proto or proto
                break
            target = plan.steps[-1] if plan.steps else (current or target)
            if plan.missing is not None and plan.missing.kind == "stone":
                stone = _need_words(plan.missing, model)
                certain = certain or bool(current)
        term = lib.term_of(model)
        reset = defaults.get(model)
        found = bool(reset and term and cat.term_file_for(reset, term) is not None)
        out.append(Seen(model, len(rows), proto, target=target, stone_missing=stone, stone_certain=certain,
                        term=term, reset_load=reset, reset_term_found=found))
    return tuple(out)


def facts(cfg: Config, store: Store, *, services: list[dict] | None = None, guard: dict | None = None,
          pool: dict | None = None, now: float | None = None, catalog: Any = None) -> Facts:
    """Everything problems.find judges; a library that cannot be read is said so (`unreadable`).

    catalog: a Catalog of the caller's own (the API's watch, whose thread must share no lock with the
        workers gunicorn forks); default the API's per-process one.
    """
    now = time.time() if now is None else now
    st = station(cfg)
    lib: Library | None = None
    seen: tuple[Seen, ...] = ()
    try:
        cat = _catalog(cfg, catalog)
        lib = library(cfg, cat)
        if lib.unreadable is None:
            seen = seen_models(cfg, store, cat, now)
    except Exception as exc:       # a broken catalog or store is reported, never a failed health page
        log.warning("problems: firmware library not judged: %r", exc)
        lib = Library(unreadable=f"{type(exc).__name__}: {exc}")
    return Facts(st, library=lib, seen=seen, link=link(cfg),
                 services=tuple(services) if services is not None else None, guard=guard, pool=pool)


def find(cfg: Config, store: Store, **parts: Any) -> list[Problem]:
    return problems.find(facts(cfg, store, **parts))


def warn_at_start(cfg: Config) -> list[Problem]:
    """One WARNING per red problem knowable before the services start (firmware, models seen, link), for
    `appliance run`'s start-up log; returns them.  Never raises: the station starts either way."""
    try:
        found = problems.red(find(cfg, Store(cfg.db_path)))
    except Exception as exc:
        log.warning("start-up check not done: %r", exc)
        return []
    for p in found:
        log.warning("station cannot do its job: %s", p.line())
    return found

