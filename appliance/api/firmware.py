"""The firmware panel: the catalog with completeness, from `appliance.firmware.catalog`.

One Catalog per (root, cache) is kept for the life of the process and only
refreshed per request (a cheap mtime poll), so the panel never rescans the
volume on every page load.
"""
from __future__ import annotations

import logging
import threading

from ..config import Config

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
    unknown) load takes first and the target it ends on, as the recovery core plans them (recovery/plan.py,
    stepwise, whatever [upgrade] strategy says: the panel shows the whole road); `missing` says what to add.
    """
    from ..recovery.diagnosis import Need
    from ..recovery.plan import make_plan, per_model, target_for
    from ..recovery.rules import all_rules
    from ..recovery.words import need

    rules = all_rules(cfg.upgrade.rules)
    seen: set[tuple[str, str]] = set()
    out = []
    for load in cat.loads:
        if load.is_term or not load.complete or not load.protocol:
            continue
        for model in load.models:
            proto = per_model(cfg.upgrade.convert, model) or load.protocol
            if (model, proto) in seen:
                continue
            seen.add((model, proto))
            target = target_for(cat, cfg, model, proto)
            if not target:
                out.append({"model": model, "protocol": proto, "stones": [], "target": None,
                            "missing": need(Need("target", model, proto))})
                continue
            ids = [x.id for x in cat.loads_for_model(model, proto) if x.complete]
            plan = make_plan(model, None, target, ids, rules, "stepwise")
            out.append({"model": model, "protocol": proto, "stones": plan.steps[:-1], "target": target,
                        "missing": need(plan.missing) if plan.missing else None})
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
