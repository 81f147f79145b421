"""What the recovery core asks of the firmware library, as plain functions handed to it.

The core never reads the catalog, the disk or the store: station.py builds
a Library over the scanned catalog and the config, and tests build one over
a dict.  Each function is pure in the core's eyes (same question, same
answer until a CatalogChanged event says otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .plan import Plan


@dataclass(frozen=True)
class Library:
    """
    planner(model, current, protocol_hint, rejected) -> Plan: the loads to take, in order.
    components_of(load) -> int: how many files its manifest lists (0 if unknown): all taken means rebooting.
    reset_keys(model) -> str | None: the factory-reset key sequence, for the trust-list diagnosis.
    upgradable(model) -> (model, images) | None: None if the model takes loads by manifest, else what it takes.
    term_of(model) -> str | None: the term file ("term65.default.loads") a factory-reset phone of it asks.
    models() -> list of model names XMLDefault.cnf.xml covers (their defaults are pushed to the workers).
    is_7940(model) -> bool: a 7940/60 (loaders ask OS79XX.TXT and SIPDefault.cnf, not SEP<MAC>.cnf.xml).
    """
    planner: Callable[[str, str | None, str | None, frozenset[str]], Plan]
    components_of: Callable[[str], int] = lambda load: 0
    reset_keys: Callable[[str], str | None] = lambda model: None
    upgradable: Callable[[str], tuple[str, str] | None] = lambda model: None
    term_of: Callable[[str], str | None] = lambda model: None
    models: Callable[[], list[str]] = lambda: []
    is_7940: Callable[[str], bool] = lambda model: False
