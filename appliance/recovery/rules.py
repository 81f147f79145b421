"""Stepping-stone rules: data in rules.toml plus the user's [[upgrade.rules]].

Versions are compared with appliance.firmware.versions.version_key, so that
"8.5(2)SR1" sorts after "8.5(2)" and load IDs and human forms share one order.
SCCP and SIP are separate products (reference §0.0 item 8): a rule names the
target protocols it holds for, and plan.py only takes stones of the target's.
"""
from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from appliance.firmware.models import normalize_model
from appliance.firmware.versions import MGCP, SCCP, SIP, version_key  # noqa: F401  (version_key re-exported for plan.py)

PROTOCOLS = (SCCP, SIP, MGCP)


@dataclass(frozen=True)
class Rule:
    models: tuple[str, ...]
    below: tuple[int, ...]
    before: tuple[int, ...]
    via_min: tuple[int, ...]
    via_max: tuple[int, ...]
    exclude: tuple[tuple[int, ...], ...] = ()
    source: str = ""
    protocols: tuple[str, ...] = ()   # target protocols the rule holds for; () = any

    def covers(self, protocol: str | None) -> bool:
        """Whether the rule's versions are on this protocol's scale; unknown (None) counts as covered."""
        return not self.protocols or protocol is None or protocol in self.protocols

    def applies(self, model: str, current: tuple | None, target: tuple, protocol: str | None = None) -> bool:
        """Unknown current load counts as possibly below: the caller decides by strategy.

        `protocol` is the target's; unknown counts as covered, since a stone is the safe side."""
        return (_norm(model) in self.models and target >= self.before and self.covers(protocol)
                and (current is None or current < self.below))

    def is_stone(self, key: tuple) -> bool:
        return self.via_min <= key <= self.via_max and key not in self.exclude


def _norm(model: str) -> str:
    """Rules name models by their four digits; any spelling (CP-7965G, 7965, cp-7965) maps there."""
    model = normalize_model(model or "") or model
    m = re.search(r"(\d{4})", model or "")
    return m.group(1) if m else (model or "")


def _key(text: str, where: str) -> tuple[int, ...]:
    k = version_key(text) if isinstance(text, str) else None
    if k is None:
        raise ValueError(f"{where}: cannot parse version {text!r}")
    return k


def parse_rule(d: dict, where: str = "rule") -> Rule:
    """A rule from a TOML table; errors name the offending key (`where`.key)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be a table")
    for key in ("models", "via_min", "via_max"):
        if key not in d:
            raise ValueError(f"{where}.{key}: missing")
    if not isinstance(d["models"], list) or not d["models"]:
        raise ValueError(f"{where}.models: must be a non-empty list of model names")
    unknown = set(d) - {"models", "below", "before", "via_min", "via_max", "exclude", "source", "protocols"}
    if unknown:
        raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key")
    protocols = d.get("protocols", [])
    if not isinstance(protocols, list) or ("protocols" in d and not protocols) or \
            not all(isinstance(p, str) and p.lower() in PROTOCOLS for p in protocols):
        raise ValueError(f"{where}.protocols: must be a non-empty list of {', '.join(map(repr, PROTOCOLS))}, "
                         f"got {protocols!r}")
    via_min = _key(d["via_min"], f"{where}.via_min")
    via_max = _key(d["via_max"], f"{where}.via_max")
    return Rule(
        models=tuple(_norm(str(m)) for m in d["models"]),
        below=_key(d["below"], f"{where}.below") if "below" in d else via_min,
        before=_key(d["before"], f"{where}.before") if "before" in d else via_max,
        via_min=via_min,
        via_max=via_max,
        exclude=tuple(_key(x, f"{where}.exclude") for x in d.get("exclude", [])),
        source=str(d.get("source", "config")),
        protocols=tuple(sorted({p.lower() for p in protocols})),
    )


RULES = Path(__file__).with_name("rules.toml")


@functools.cache
def _read_rules(path: Path) -> tuple[Rule, ...]:
    data = tomllib.loads(path.read_text())
    return tuple(parse_rule(r, f"rules.toml[{i}]") for i, r in enumerate(data["rules"]))


def builtin_rules(path: Path = RULES) -> list[Rule]:
    """The shipped rules (rules.toml, read once per process: a replan never touches the disk)."""
    return list(_read_rules(path))


def all_rules(user: list[dict] | None = None) -> list[Rule]:
    return builtin_rules() + [parse_rule(r, f"upgrade.rules[{i}]") for i, r in enumerate(user or [])]


def model_has_rule(rules: list[Rule], model: str) -> bool:
    """Whether any stepping-stone rule names this model (any spelling)."""
    key = _norm(model)
    return any(key in r.models for r in rules)
