"""The firmware panel: the catalog with completeness, from `appliance.firmware.catalog` when installed.

The catalog belongs to the firmware package; this adapter only reshapes what it
offers, so the API keeps working (reporting `available: false`) before it lands.
"""
from __future__ import annotations

import logging
from typing import Any

from ..config import Config

log = logging.getLogger("api")


def _catalog(cfg: Config) -> Any:
    from ..firmware.catalog import Catalog  # noqa: deferred so a missing package is a soft failure
    for build in (lambda: Catalog(cfg), lambda: Catalog(cfg.tftp.root)):
        try:
            return build()
        except TypeError:
            continue
    raise TypeError("Catalog takes neither a Config nor a root path")


def _load_dict(load: Any) -> dict:
    if isinstance(load, dict):
        d = dict(load)
    elif hasattr(load, "as_dict"):
        d = load.as_dict()
    elif hasattr(load, "__dict__"):
        d = {k: v for k, v in vars(load).items() if not k.startswith("_")}
    else:
        d = {"name": str(load)}
    name = d.get("name") or d.get("load") or d.get("id") or ""
    missing = d.get("missing") or []
    complete = d.get("complete")
    if complete is None:
        complete = not missing
    return {"name": str(name), "models": [str(m) for m in (d.get("models") or [])],
            "complete": bool(complete), "missing": [str(m) for m in missing],
            "files": len(d.get("files") or []) if not isinstance(d.get("files"), int) else d["files"]}


def summary(cfg: Config, rescan: bool = False) -> dict:
    try:
        catalog = _catalog(cfg)
    except Exception as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", "root": str(cfg.tftp.root),
                "loads": [], "incomplete": []}
    if rescan:
        for name in ("rescan", "scan", "refresh"):
            if callable(getattr(catalog, name, None)):
                getattr(catalog, name)()
                break
    loads_attr = getattr(catalog, "loads", [])
    loads = loads_attr() if callable(loads_attr) else loads_attr
    if isinstance(loads, dict):
        loads = [dict(_load_dict(v), name=str(k)) if not isinstance(v, str) else {"name": k} for k, v in loads.items()]
    items = sorted((_load_dict(x) for x in loads), key=lambda d: d["name"])
    return {"available": True, "reason": None, "root": str(cfg.tftp.root), "loads": items,
            "incomplete": [d["name"] for d in items if not d["complete"]]}
