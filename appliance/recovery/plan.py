"""Per-phone plan: the ordered loads from the phone's current load to its target."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from appliance.firmware import conversion
from appliance.firmware.models import normalize_model
from appliance.firmware.versions import MGCP, MPP, SCCP, SIP, TRANSITION, protocol

from .diagnosis import Need
from .rules import Rule, all_rules, version_key

# The protocol a phone of unknown load (factory reset) is kept on when the library has loads of more
# than one for its model.  SCCP first is an inference, not a fact about the phone: Cisco shipped the
# 79xx with SCCP.  The tracker should prefer evidence when it has some (a 7940 asking for
# SIPDefault.cnf or OS79XX.TXT is on SIP; CDP or the phone's web page naming a SIPnn/P0S3 load).
UNKNOWN_LOAD_PREFERENCE = (SCCP, SIP, MGCP, MPP)


@dataclass(frozen=True)
class HardwareFloor:
    """The hardware floor of one phone (its model at its VID; appliance/firmware/floors.py, two readings).

    minimum: the release the sources for exactly this VID give ("" when none does): never offer a load under it.
    safe: the strictest reading (another source, older hardware's floors): prefer a load at or above it.
    """
    vid: str
    minimum: str
    safe: str


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
    if known == TRANSITION:
        return MPP            # a transition load exists only to carry its phone on to MPP (phone-families.md §3.3)
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


def fit_floor(floor: HardwareFloor, model: str, proto: str | None, target: str, ids: list[str],
              rejected: frozenset[str] | set[str]) -> str | Need:
    """The load to aim at for a phone under a hardware floor, or what the tech must add.

    Never a load under `minimum`; once the phone refused a load at or above `minimum`, the stricter reading
    (`safe`) is what it shows, so only loads at or above `safe` are left.  The planned `target` stays when it
    fits and is at or above `safe` (or nothing is); else the oldest load at or above `safe` (closest to a
    pinned target), else the newest at or above `minimum`.

    Args:
        floor: the phone's floor.
        target: what the config or the library's newest would make its target.
        ids: the library's complete loads of the model and protocol.
        rejected: loads the phone refused.
    Returns:
        a load ID, or Need("floor") naming the floor, the VID and the library's newest load.
    """
    low = version_key(floor.minimum) if floor.minimum else None
    safe = version_key(floor.safe)

    def at_least(load: str, key: tuple | None) -> bool:
        k = version_key(load)
        return k is not None and (key is None or k >= key)

    if any(at_least(r, low) for r in rejected if protocol(r) in (None, proto) or proto is None):
        low = safe                                  # it refused a load over the lower reading: the stricter holds
    usable = [a for a in ids if at_least(a, low) and a not in rejected]
    safe_ones = [a for a in usable if at_least(a, safe)]
    if at_least(target, low) and target not in rejected and (at_least(target, safe) or not safe_ones):
        return target
    if safe_ones:
        return min(safe_ones, key=lambda a: version_key(a) or ())
    if usable:
        return max(usable, key=lambda a: version_key(a) or ())
    newest = max(ids, key=lambda a: version_key(a) or (), default="")
    need_low = floor.safe if low == safe else floor.minimum
    return Need("floor", model, proto, need_low, floor.safe, refused=tuple(sorted(rejected)), vid=floor.vid,
                newest=newest)


def _newest(ids: list[str], at_least: tuple | None = None) -> str | None:
    fit = [a for a in ids if (k := version_key(a)) is not None and (at_least is None or k >= at_least)]
    return max(fit, key=lambda a: version_key(a) or ()) if fit else None


def conversion_plan(catalog, cfg, model: str, current: str | None, to: str,
                    rejected: frozenset[str] | set[str] = frozenset(), hint: str | None = None) -> Plan | None:
    """Cisco's path between Enterprise and multiplatform firmware for one phone (phone-families.md §3.1, §3.5), or
    None when the phone already runs firmware of kind `to` (then it is planned as any phone).

    Enterprise -> MPP: an Enterprise release of at least 12.5(1) first (its newest, when its own is unknown or
    older), then below 14.0(1) a transition load, then the MPP target.  Cisco's "14.(1)" is read both ways: from
    14.0(1) to 14.1(1) a transition load is used when the library has one, else the MPP load directly.
    MPP -> Enterprise: MPP 11.3(5) or later first (its newest MPP load when older or unknown), then the Enterprise
    target.  A load the phone refused is never planned again.

    Args:
        to: MPP or SIP (Enterprise).
        hint: the kind of firmware it runs when `current` is unknown (MPP: it asked a 3PCC profile).
    Returns:
        the Plan, whose `missing` names what to add ("target", "newer", "transition") when a step is not in the
        library; None when no conversion applies.
    """
    running = protocol(current) or hint
    if (running == MPP and to == MPP) or (running in (SIP, SCCP, MGCP) and to == SIP) or (
            running is None and to == SIP):
        return None          # already on that kind (a phone of unknown load is planned as Enterprise anyway)

    def ids(proto: str) -> list[str]:
        return [a for a in _catalog_ids(catalog, model, proto) if a not in rejected]

    target = target_for(catalog, cfg, model, to)
    if not target or (target in rejected and to == MPP):
        return Plan([], missing=Need("target", model, to, refused=tuple(sorted(rejected))))
    steps: list[str] = []
    ckey = version_key(current) if current else None
    if to == MPP:
        if running == TRANSITION:
            return Plan([target])
        minimum = conversion.ENTERPRISE_MINIMUM
        base = ckey
        offered = _newest(ids(TRANSITION))
        if base is None and offered is not None:
            # Release unknown (no page read): the transition load, which any release from 12.5(1) takes; refused,
            # it is planned again after the newest Enterprise load, as for a phone known to be older.
            return Plan([offered, target])
        if base is None or base < minimum:
            first = _newest(ids(SIP), minimum)
            if first is None:
                return Plan([], missing=Need("convert minimum", model, SIP, low=conversion.human(minimum),
                                             refused=tuple(sorted(rejected))))
            steps.append(first)
            base = version_key(first)
        transition = _newest(_catalog_ids(catalog, model, TRANSITION)) if steps else _newest(ids(TRANSITION))
        if base is not None and base < conversion.DIRECT_LOW or (base is not None and base < conversion.DIRECT_HIGH
                                                                  and transition is not None):
            if transition is None:
                return Plan([], missing=Need("transition", model, TRANSITION, refused=tuple(sorted(rejected))))
            steps.append(transition)
        return Plan(steps + [target])
    minimum = conversion.MPP_BACK_MINIMUM
    if ckey is None and target not in rejected:
        # MPP release unknown (a profile names none): the Enterprise load directly, which any MPP from 11.3(5)
        # takes; refused, the newest MPP load comes first and the Enterprise load after it.
        return Plan([target])
    if ckey is None or ckey < minimum:
        first = _newest(ids(MPP), minimum)
        if first is None:
            return Plan([], missing=Need("convert minimum", model, MPP, low=conversion.human(minimum),
                                         refused=tuple(sorted(rejected))))
        if first != current:
            steps.append(first)
    if not steps and target in rejected:
        return Plan([], missing=Need("target", model, to, refused=tuple(sorted(rejected))))
    return Plan(steps + [target])


def plan_phone(catalog, cfg, model: str, current: str | None, protocol_hint: str | None = None,
               rejected: frozenset[str] | set[str] = frozenset(), floor: HardwareFloor | None = None,
               convert: str | None = None) -> Plan:
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
        floor: its hardware floor when its VID is known (fit_floor); None: no floor applies.
        convert: MPP or SIP when the core moves this phone between Enterprise and multiplatform firmware (its
            licence present, its model and hardware eligible): conversion_plan.  None: it stays on its kind.
    Returns:
        the Plan: steps from the next load to offer to the target; `missing` says what to add.
    """
    if protocol_hint == TRANSITION:
        protocol_hint = MPP          # a phone on a transition load is on its way to MPP (phone-families.md §3.3)
    if convert is not None:
        converting = conversion_plan(catalog, cfg, model, current, convert, rejected, protocol_hint)
        if converting is not None and floor is not None and convert == MPP and converting.steps:
            # its MPP floor (a V15+ 88x1: 11.3(3)) holds for the load it converts to as for any it runs
            fitted = fit_floor(floor, model, MPP, converting.steps[-1], _catalog_ids(catalog, model, MPP), rejected)
            if isinstance(fitted, Need):
                return Plan([], missing=fitted)
            converting.steps[-1] = fitted
        if converting is not None:
            return converting
    proto = target_protocol(catalog, cfg, model, current) if current or not protocol_hint else None
    if proto is None and protocol_hint:
        convert = per_model(cfg.upgrade.convert, model)
        proto = convert or protocol_hint
    target = target_for(catalog, cfg, model, proto)
    if not target:
        return Plan([], missing=Need("target", model, proto))
    ids = _catalog_ids(catalog, model, proto)
    available = [a for a in ids if a not in rejected]
    if floor is not None:
        fitted = fit_floor(floor, model, proto, target, ids, rejected)
        if isinstance(fitted, Need):
            return Plan([], missing=fitted)
        target = fitted
        low = version_key(floor.minimum) if floor.minimum else None
        available = [a for a in available if low is None or (version_key(a) or ()) >= low]
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
