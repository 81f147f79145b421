"""The `[upgrade]` section checked by the package that owns its meaning: rules and protocol conversion.

`load` is the station's config loader (the CLI and every service use it): appliance/config.py checks
types and addresses, this adds what only recovery knows, so a bad rule names its key and the CLI
exits 2 before anything starts.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from .. import config
from ..config import Config, ConfigError
from ..firmware import conversion
from ..firmware.models import by_name
from ..firmware.versions import MPP, SIP, protocol
from .plan import per_model
from .rules import parse_rule

CONVERT_TO = ("sccp", "sip", "mpp", "enterprise")
# Multiplatform conversions: "enterprise" is the 7800/8800's Enterprise firmware, SIP (phone-families.md §2.1).
PLATFORM = {"mpp": MPP, "enterprise": SIP}
_MAC = re.compile(r"^[0-9a-f]{2}(?:[:\-.]?[0-9a-f]{2}){5}$", re.I)


def check_upgrade(cfg: Config) -> Config:
    """The config with `[upgrade]` checked and its convert table normalised.

    Raises:
        ConfigError: naming the rule (`upgrade.rules[i]`), the convert entry or the target at fault.
    """
    up = cfg.upgrade
    for i, rule in enumerate(up.rules):
        missing = {"models", "via_min", "via_max"} - set(rule)
        if missing:
            raise ConfigError(cfg.where("upgrade.rules"), f"upgrade.rules[{i}]", f"missing {', '.join(sorted(missing))}")
        try:
            parse_rule(rule, f"upgrade.rules[{i}]")
        except (ValueError, TypeError) as exc:
            key, _, why = str(exc).partition(": ")
            raise ConfigError(cfg.where(key), key, why or str(exc)) from None
    plain = {k: v for k, v in up.convert.items() if not _platform_entry(k, v)}
    return cfg.replace(upgrade=type(up)(**{**config.section_dict(up),
                                           "convert": _convert(cfg.where, plain, up.targets),
                                           "platform": _platform(cfg.where, up.convert)}))


def _platform_entry(name: str, value: object) -> bool:
    """An entry that converts between Enterprise and MPP (value "mpp"/"enterprise"), or one keyed by a MAC."""
    return (isinstance(value, str) and value.strip().lower() in PLATFORM) or bool(_MAC.match(name.strip()))


def _platform(where: Callable[[str], str], table: dict[str, str]) -> dict[str, str]:
    """[upgrade] convert entries to or from multiplatform firmware, per model or per MAC (phone-families.md §3).

    A key is a model (any spelling) or a MAC (any separators); the value "mpp" or "enterprise".  A model Cisco
    lists as not eligible (8831, the MPP-only 6800) is an error here, naming why; a MAC's model is known only
    when the phone comes, so the core refuses an ineligible one then, with the same words.
    Returns:
        canonical model or 12-digit lower-case MAC -> "mpp" | "sip".
    """
    out: dict[str, str] = {}
    for name, value in table.items():
        if not _platform_entry(name, value):
            continue
        key = f"upgrade.convert.{name}"
        want = value.strip().lower() if isinstance(value, str) else ""
        if want not in PLATFORM:
            raise ConfigError(where(key), key, f"a MAC converts between Enterprise and multiplatform firmware: "
                                               f"must be 'mpp' or 'enterprise', got {value!r}")
        if _MAC.match(name.strip()):
            out[re.sub(r"[:\-.]", "", name.strip()).lower()] = PLATFORM[want]
            continue
        model = by_name(name)
        if model is None:
            raise ConfigError(where(key), key, f"unknown phone model {name!r}")
        refused = conversion.refusal(model.name, None)
        if refused is not None and refused.kind == "model":
            raise ConfigError(where(key), key, f"{model.name} cannot be converted: {refused.why}")
        out[model.name] = PLATFORM[want]
    return out


def _convert(where: Callable[[str], str], table: dict[str, str], targets: dict[str, str]) -> dict[str, str]:
    """[upgrade] convert: model -> the protocol its phones are moved to (reference §0.0 item 8: never implied).

    The model must be known and have load families of that protocol; a target of the model that
    the conversion would leave unused is an error too, not silently ignored."""
    out = {}
    for name, value in table.items():
        key = f"upgrade.convert.{name}"
        model = by_name(name)
        if model is None:
            raise ConfigError(where(key), key, f"unknown phone model {name!r}")
        proto = value.strip().lower()
        if proto not in CONVERT_TO:
            raise ConfigError(where(key), key, f"must be one of {', '.join(map(repr, CONVERT_TO))}, got {value!r}")
        if proto not in {protocol(f) for f in model.families}:
            raise ConfigError(where(key), key, f"{model.name} has no {proto.upper()} loads "
                                           f"(its load families: {', '.join(model.families) or 'none'})")
        out[name] = proto
    for name, load in targets.items():
        proto, wanted = protocol(load), per_model(out, name)
        if proto and wanted and proto != wanted:
            raise ConfigError(where(f"upgrade.targets.{name}"), f"upgrade.targets.{name}",
                              f"{load} is a {proto.upper()} load, but [upgrade] convert moves this model to {wanted.upper()}")
    return out


def load(path: str | Path | None = None, environ: dict[str, str] | None = None,
         resolve_network: bool = True) -> Config:
    """The station's config, every section checked (see `config.load` for the arguments).

    Raises:
        ConfigError: naming the file (or environment variable) and the key.
    """
    return config.load(path, environ, resolve_network, checks=(check_upgrade,))
