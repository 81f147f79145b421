"""The `[upgrade]` section checked by the package that owns its meaning: rules and protocol conversion.

`load` is the station's config loader (the CLI and every service use it): appliance/config.py checks
types and addresses, this adds what only recovery knows, so a bad rule names its key and the CLI
exits 2 before anything starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import config
from ..config import Config, ConfigError
from ..firmware.models import by_name
from ..firmware.versions import protocol
from .plan import per_model
from .rules import parse_rule

CONVERT_TO = ("sccp", "sip")


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
    return cfg.replace(upgrade=type(up)(**{**config.section_dict(up),
                                           "convert": _convert(cfg.where, up.convert, up.targets)}))


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
