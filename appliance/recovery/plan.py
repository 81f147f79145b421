"""Per-phone plan: the ordered loads from the phone's current load to its target."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from appliance.firmware.models import normalize_model
from appliance.firmware.versions import MGCP, SCCP, SIP, protocol

from .diagnosis import Need
from .rules import Rule, all_rules, version_key

# The protocol a phone of unknown load (factory reset) is kept on when the library has loads of more
# than one for its model.  SCCP first is an inference, not a fact about the phone: Cisco shipped the
# 79xx with SCCP.  The tracker should prefer evidence when it has some (a 7940 asking for
# SIPDefault.cnf or OS79XX.TXT is on SIP; CDP or the phone's web page naming a SIPnn/P0S3 load).
UNKNOWN_LOAD_PREFERENCE = (SCCP, SIP, MGCP)


@dataclass
class Plan:
    """The loads a phone is to take, in order (the last is its target); `missing`, what the tech must add."""
    steps: list[str] = field(default_factory=list)
    missing: Need | None = None


def make_plan(model: str, current: str | None, target: str, available: list[str],
              rules: list[Rule], strategy: str = "stepwise") -> Plan:
    """`available` are load IDs in the catalog for this model.

    stepwise: unknown current load goes through the stone first (field procedure).
    direct: target first; the tracker re-plans with the stone after a rejection.
    Versions of two protocols never compare (reference §0.0 item 8): a phone being converted is never
    "already there", a rule judges its current load only if the rule covers that load's protocol
    (else it counts as unknown), and a stone is always of the target's protocol.
    """
    tkey, tproto = version_key(target), protocol(target)
    ckey = version_key(current) if current else None
    cproto = protocol(current)
    if tkey is None:
        return Plan([target])
    if ckey is not None and ckey >= tkey and (cproto == tproto or None in (cproto, tproto)):
        return Plan([])
    steps: list[str] = []
    for rule in rules:
        known = ckey if rule.covers(cproto) else None
        if not rule.applies(model, known, tkey, tproto):
            continue
        if known is None and strategy == "direct":
            continue
        stones = sorted((a for a in available if (k := version_key(a)) and rule.is_stone(k)
                         and (tproto is None or protocol(a) == tproto)),
                        key=lambda a: version_key(a) or (), reverse=True)
        if not stones:
            return Plan([target], missing=_missing_text(model, rule, tproto))
        steps.append(stones[0])
    steps.append(target)
    return Plan(steps)


def _fmt(key: tuple) -> str:
    s = f"{key[0]}.{key[1]}({key[2]})"
    if key[3]:
        s += f"SR{key[3]}" + (f"-{key[4]}" if key[4] else "")
    return s


def _missing_text(model: str, rule: Rule, proto: str | None = None) -> Need:
    return Need("stone", model, proto, _fmt(rule.via_min), _fmt(rule.via_max),
                tuple(_fmt(e) for e in rule.exclude), source=rule.source)


def per_model(table: dict, model: str):
    """The value a per-model config table ([upgrade] targets, convert) gives this model: its own
    spelling, its canonical name, then its four digits ("7941" also covers a 7941G-GE)."""
    if not table or not model:
        return None
    canon = normalize_model(model)
    for key in (model, canon, model.removeprefix("CP-").rstrip("G")):
        if key in table:
            return table[key]
    for key, value in table.items():
        if normalize_model(key) == canon:
            return value
    digits = re.search(r"\d{4}", canon)
    return table.get(digits.group(0)) if digits else None


def _catalog_ids(catalog, model: str, proto: str | None) -> list[str]:
    return [load.id for load in catalog.loads_for_model(model, proto) if load.complete]


def running_protocol(catalog, model: str, current: str | None) -> str | None:
    """The protocol the phone runs: its load's; for an unknown load, the one the library has complete
    loads of for the model (several: UNKNOWN_LOAD_PREFERENCE); None when nothing says."""
    known = protocol(current)
    if known:
        return known
    have = {load.protocol for load in catalog.loads_for_model(model) if load.complete}
    return next((p for p in UNKNOWN_LOAD_PREFERENCE if p in have), None)


def target_protocol(catalog, cfg, model: str, current: str | None) -> str | None:
    """The protocol the phone is to end on: `[upgrade] convert` for its model, else the one it runs."""
    convert = per_model(cfg.upgrade.convert, model)
    return convert or running_protocol(catalog, model, current)


def target_for(catalog, cfg, model: str, proto: str | None) -> str | None:
    """Config override for the model if it is of `proto`, else the newest complete load of `proto`.

    A configured target of another protocol is for the model's phones on that protocol: a target
    never converts a phone, only `[upgrade] convert` does."""
    configured = per_model(cfg.upgrade.targets, model)
    if configured and (proto is None or protocol(configured) in (None, proto)):
        return configured
    newest = catalog.newest_complete(model, proto)
    return newest.id if newest is not None else None


def plan_for(catalog, cfg, model: str, current: str | None, *, as_unknown: bool = False,
             strategy: str | None = None) -> Plan:
    """The plan for a phone of `model` on `current`, kept on its protocol unless converted.

    as_unknown: plan as if its load were unknown (after a rejection), still on its protocol."""
    proto = target_protocol(catalog, cfg, model, current)
    target = target_for(catalog, cfg, model, proto)
    if not target:
        return Plan([])
    return make_plan(model, None if as_unknown else current, target, _catalog_ids(catalog, model, proto),
                     all_rules(cfg.upgrade.rules),
                     strategy or cfg.upgrade.strategy)


def plan_phone(catalog, cfg, model: str, current: str | None, protocol_hint: str | None = None,
               rejected: frozenset[str] | set[str] = frozenset()) -> Plan:
    """The plan for one phone, given what it refused so far.

    A refused stone gives way to the next candidate stone in the library, else to the target itself
    (the phone may know the new key already), else to a plan with no steps that names the file the tech
    must add.  A refused target means the phone needs the stone whatever its load was thought to be.

    Args:
        model: the phone's model, any spelling.
        current: the load ID it runs, None if unknown.
        protocol_hint: the protocol evidence says it runs when `current` is unknown (e.g. it asked for
            SIPDefault.cnf), else None.
        rejected: load IDs it refused (Auth Fail, File auth error, Load rejected HC).
    Returns:
        the Plan: steps from the next load to offer to the target; `missing` says what to add.
    """
    proto = target_protocol(catalog, cfg, model, current) if current or not protocol_hint else None
    if proto is None and protocol_hint:
        convert = per_model(cfg.upgrade.convert, model)
        proto = convert or protocol_hint
    target = target_for(catalog, cfg, model, proto)
    if not target:
        return Plan([], missing=Need("target", model, proto))
    available = [a for a in _catalog_ids(catalog, model, proto) if a not in rejected]
    rules = all_rules(cfg.upgrade.rules)
    strategy = cfg.upgrade.strategy
    plan = make_plan(model, current, target, available, rules, strategy)
    if plan.steps[:1] == [target] and target in rejected:
        plan = make_plan(model, None, target, available, rules, "stepwise")
    if plan.steps and plan.steps[0] in rejected:
        refused = tuple(sorted(rejected))
        need = plan.missing or Need("other", model, proto)
        return Plan([], missing=Need(need.kind, need.model, need.proto, need.low, need.high, need.excluded, refused,
                                     need.source))
    return plan
