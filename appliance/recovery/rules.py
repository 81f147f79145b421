"""Stepping-stone rules: data in rules.toml plus the user's [[upgrade.rules]].

Versions are compared as tuples (major, minor, maint, sr, sr_sub) so that
"8.5(2)SR1" sorts after "8.5(2)" and load IDs and human forms share one order.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_HUMAN = re.compile(r"^(\d+)\.(\d+)\((\d+)\)(?:SR(\d+)(?:-(\d+))?)?$", re.I)
_SCCP = re.compile(r"^[A-Z]+\d+\.(\d+)-(\d+)-(\d+)(?:SR(\d+)(?:-(\d+))?)?", re.I)
_P003 = re.compile(r"^P00[35](\d\d)(\d\d)(\d\d)(\d\d)$", re.I)


def version_key(text: str) -> tuple[int, ...] | None:
    """Parse "8.3(2)", "8.5(2)SR1", "SCCP45.9-4-2SR4-3S" or "P00308010100"."""
    text = text.strip()
    for rx in (_HUMAN, _SCCP):
        m = rx.match(text)
        if m:
            return tuple(int(g or 0) for g in m.groups())
    m = _P003.match(text)
    if m:
        major, minor, maint, sr = (int(g) for g in m.groups())
        return (major, minor, maint, sr, 0)
    return None


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
    m = re.search(r"(\d{4})", model or "")
    return m.group(1) if m else (model or "")


def _key(text: str, where: str) -> tuple[int, ...]:
    k = version_key(text)
    if k is None:
        raise ValueError(f"{where}: cannot parse version {text!r}")
    return k


def parse_rule(d: dict, where: str = "rule") -> Rule:
    return Rule(
        models=tuple(_norm(str(m)) for m in d["models"]),
        below=_key(d.get("below", d["via_min"]), f"{where}.below"),
        before=_key(d.get("before", d["via_max"]), f"{where}.before"),
        via_min=_key(d["via_min"], f"{where}.via_min"),
        via_max=_key(d["via_max"], f"{where}.via_max"),
        exclude=tuple(_key(x, f"{where}.exclude") for x in d.get("exclude", [])),
        source=str(d.get("source", "config")),
    )


def builtin_rules(path: Path = Path(__file__).with_name("rules.toml")) -> list[Rule]:
    data = tomllib.loads(path.read_text())
    return [parse_rule(r, f"rules.toml[{i}]") for i, r in enumerate(data["rules"])]


def all_rules(user: list[dict] | None = None) -> list[Rule]:
    return builtin_rules() + [parse_rule(r, f"upgrade.rules[{i}]") for i, r in enumerate(user or [])]
