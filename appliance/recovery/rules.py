"""Stepping-stone rules: data in rules.toml plus the user's [[upgrade.rules]].

Versions are compared with appliance.firmware.versions.version_key, so that
"8.5(2)SR1" sorts after "8.5(2)" and load IDs and human forms share one order.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from appliance.firmware.versions import version_key  # noqa: F401  (re-exported for plan.py)


@dataclass(frozen=True)
class Rule:
    models: tuple[str, ...]
    below: tuple[int, ...]
    before: tuple[int, ...]
    via_min: tuple[int, ...]
    via_max: tuple[int, ...]
    exclude: tuple[tuple[int, ...], ...] = ()
    source: str = ""

    def applies(self, model: str, current: tuple | None, target: tuple) -> bool:
        """Unknown current load counts as possibly below: the caller decides by strategy."""
        return _norm(model) in self.models and target >= self.before and (current is None or current < self.below)

    def is_stone(self, key: tuple) -> bool:
        return self.via_min <= key <= self.via_max and key not in self.exclude


def _norm(model: str) -> str:
    """Rules name models by their four digits; any spelling (CP-7965G, 7965, cp-7965) maps there."""
    try:
        from appliance.firmware.models import normalize_model
        model = normalize_model(model or "") or model
    except Exception:
        pass
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
    unknown = set(d) - {"models", "below", "before", "via_min", "via_max", "exclude", "source"}
    if unknown:
        raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key")
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
    )


def builtin_rules(path: Path = Path(__file__).with_name("rules.toml")) -> list[Rule]:
    data = tomllib.loads(path.read_text())
    return [parse_rule(r, f"rules.toml[{i}]") for i, r in enumerate(data["rules"])]


def all_rules(user: list[dict] | None = None) -> list[Rule]:
    return builtin_rules() + [parse_rule(r, f"upgrade.rules[{i}]") for i, r in enumerate(user or [])]
