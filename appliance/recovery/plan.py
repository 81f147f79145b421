"""Per-phone plan: the ordered loads from the phone's current load to its target."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .rules import Rule, version_key


@dataclass
class Plan:
    steps: list[str] = field(default_factory=list)
    missing: str | None = None  # what the tech must add to the library, by name


def make_plan(model: str, current: str | None, target: str, available: list[str],
              rules: list[Rule], strategy: str = "stepwise") -> Plan:
    """`available` are load IDs in the catalog for this model.

    stepwise: unknown current load goes through the stone first (field procedure).
    direct: target first; the tracker re-plans with the stone after a rejection.
    """
    tkey = version_key(target)
    ckey = version_key(current) if current else None
    if tkey is None:
        return Plan([target])
    if ckey is not None and ckey >= tkey:
        return Plan([])
    steps: list[str] = []
    for rule in rules:
        if not rule.applies(model, ckey, tkey):
            continue
        if ckey is None and strategy == "direct":
            continue
        stones = sorted((a for a in available if (k := version_key(a)) and rule.is_stone(k)),
                        key=version_key, reverse=True)
        if not stones:
            return Plan([target], missing=_missing_text(model, rule))
        steps.append(stones[0])
    steps.append(target)
    return Plan(steps)


def _fmt(key: tuple) -> str:
    s = f"{key[0]}.{key[1]}({key[2]})"
    if key[3]:
        s += f"SR{key[3]}" + (f"-{key[4]}" if key[4] else "")
    return s


def _missing_text(model: str, rule: Rule) -> str:
    lo, hi = _fmt(rule.via_min), _fmt(rule.via_max)
    span = lo if lo == hi else f"{lo}–{hi}"
    excl = f", not {', '.join(_fmt(e) for e in rule.exclude)}" if rule.exclude else ""
    return f"add a {span} load for {model}{excl} (stepping stone, {rule.source})"


def _catalog_ids(catalog, model: str) -> list[str]:
    try:
        return [load.id for load in catalog.loads_for_model(model) if getattr(load, "complete", True)]
    except Exception:
        return []


def target_for(catalog, cfg, model: str) -> str | None:
    """Config override for the model, else the newest complete load in the catalog."""
    targets = dict(getattr(cfg.upgrade, "targets", {}) or {})
    for key in (model, model.removeprefix("CP-").rstrip("G")):
        if key in targets:
            return targets[key]
    try:
        newest = catalog.newest_complete(model)
    except Exception:
        return None
    return getattr(newest, "id", newest)


def plan_for(catalog, cfg, model: str, current: str | None) -> Plan:
    from .rules import all_rules
    target = target_for(catalog, cfg, model)
    if not target:
        return Plan([])
    return make_plan(model, current, target, _catalog_ids(catalog, model),
                     all_rules(list(getattr(cfg.upgrade, "rules", []) or [])), getattr(cfg.upgrade, "strategy", "stepwise"))


class Chooser:
    """Hook for the file service: which load SEP<MAC>.cnf.xml (or OS79XX.TXT, ...) should name for this phone.

    Asks a tracker brought up to date at this moment (live.py): the publishing one when the recovery
    runner lives in this process and sets `live`, else a read-only shadow made on first use.  Without
    either (tracker not started) it answers from the phones table.  `pending(mac)` gives this process's
    transfer events not yet flushed to the bus.
    """

    def __init__(self, store, catalog, cfg, pending=None):
        self.store, self.catalog, self.cfg, self.pending = store, catalog, cfg, pending
        self.live = None
        self._lock = threading.Lock()

    def _live(self):
        if self.live is None and self.store is not None:
            with self._lock:
                if self.live is None:
                    from .live import shadow
                    self.live = shadow(self.store, self.catalog, self.cfg)
        return self.live

    def __call__(self, mac: str, model: str) -> str | None:
        mac = (mac or "").lower()
        live = self._live() if mac else None
        if live is not None:
            known, load = live.offer(mac, self.pending(mac) if self.pending else [])
            if known and load:
                return load
        return self.from_row(mac, model)

    def from_row(self, mac: str, model: str) -> str | None:
        row = self.store.phone(mac) if self.store is not None and mac else None
        if row and row.get("plan"):
            steps = row["plan"]
            k = min(int(row.get("step") or 0), len(steps) - 1)
            if row.get("current_load") == steps[k] and k < len(steps) - 1:
                return steps[k + 1]        # the phone already runs this step's load
            return steps[k]
        if row and row.get("current_load") and row.get("target_load") == row.get("current_load"):
            return row["current_load"]
        p = plan_for(self.catalog, self.cfg, model, row.get("current_load") if row else None)
        return p.steps[0] if p.steps else None


def chooser(store, catalog, cfg, pending=None) -> Chooser:
    return Chooser(store, catalog, cfg, pending)
