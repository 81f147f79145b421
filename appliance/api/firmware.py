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
    except Exception as exc:  # the panel reports a broken catalog instead of failing the page
        log.warning("firmware catalog unavailable: %s", exc)
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", "root": str(cfg.tftp.root),
                "loads": [], "incomplete": []}
    return {"available": True, "reason": None, "root": str(cfg.tftp.root), "loads": items,
            "incomplete": [d["name"] for d in items if not d["complete"]], "problems": problems}
