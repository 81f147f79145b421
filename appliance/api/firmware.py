"""The firmware panel: the catalog with completeness, from `appliance.firmware.catalog`.

One Catalog per (root, cache) is kept for the life of the process and only
refreshed per request (a cheap mtime poll), so the panel never rescans the
volume on every page load.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace

from ..config import Config
from ..firmware.versions import TRANSITION

log = logging.getLogger("api")
_catalogs: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def _catalog(cfg: Config):
    from ..firmware.catalog import Catalog

    probe = Catalog.from_config(cfg)
    key = (str(probe.root), str(probe.cache_dir))
    with _lock:
        return _catalogs.setdefault(key, probe)


def catalog(cfg: Config):
    """The process's catalog for this config (refreshed by its callers), for the phones' whole-load progress."""
    return _catalog(cfg)


def roles(cat, cfg: Config) -> list[dict]:
    """Per model and protocol the library has a complete load of: the stepping stones a phone on an old (or
    unknown) load takes before its target, and the target; `missing` says what to add.

    Asked of the recovery core's own planner (station.make_library), never decided here.  A plan of the target
    alone ([upgrade] strategy = "direct", or a model with no stone rule) is asked again as if the phone had
    refused the target, which is when the core falls back to a stone: the panel shows the stone either way.
    """
    from ..recovery.station import make_library
    from ..recovery.words import need

    planner = make_library(cat, cfg).planner
    seen: set[tuple[str, str]] = set()
    out = []
    for load in cat.loads:
        if load.is_term or not load.complete or not load.protocol or load.protocol == TRANSITION:
            continue          # a transition load is never a target: it only carries a converting phone to MPP
        for model in load.models:
            if (model, load.protocol) in seen:
                continue
            seen.add((model, load.protocol))
            plan = planner(model, None, load.protocol, frozenset())
            steps, missing = list(plan.steps), plan.missing
            if len(steps) == 1 and missing is None:
                after = planner(model, None, load.protocol, frozenset(steps))
                if len(after.steps) > 1 and after.steps[-1] == steps[0]:
                    steps = list(after.steps)
                elif after.missing is not None and after.missing.kind == "stone":
                    missing = replace(after.missing, refused=())     # no phone refused anything: a library gap
            out.append({"model": model, "protocol": load.protocol, "stones": steps[:-1],
                        "target": steps[-1] if steps else None, "missing": need(missing) if missing else None})
    return sorted(out, key=lambda r: (r["model"], r["protocol"]))


def _load_dict(load) -> dict:
    d = load.as_dict()
    return {"name": d["name"], "protocol": d["protocol"], "models": list(d["models"]), "complete": bool(d["complete"]),
            "missing": list(d["missing"]) + list(d["refused"]), "files": int(d["files"]), "source": d["source"],
            "terms_missing": list(d["terms_missing"])}


def summary(cfg: Config, rescan: bool = False) -> dict:
    try:
        catalog = _catalog(cfg)
        if rescan:
            catalog.scan()
        else:
            catalog.refresh()
        items = sorted((_load_dict(x) for x in catalog.loads), key=lambda d: d["name"])
        problems = list(catalog.problems)
        models = roles(catalog, cfg)
    except Exception as exc:  # the panel reports a broken catalog instead of failing the page
        log.warning("firmware catalog unavailable: %s", exc)
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", "root": str(cfg.tftp.root),
                "loads": [], "incomplete": [], "models": []}
    return {"available": True, "reason": None, "root": str(cfg.tftp.root), "loads": items,
            "incomplete": [d["name"] for d in items if not d["complete"]], "problems": problems,
            "models": models}
