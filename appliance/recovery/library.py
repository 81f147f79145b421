"""What the recovery core asks of the firmware library, as plain functions handed to it.

The core never reads the catalog, the disk or the store: station.py builds
a Library over the scanned catalog and the config, and tests build one over
a dict.  Each function is pure in the core's eyes (same question, same
answer until a CatalogChanged event says otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from .plan import HardwareFloor, Plan


class Planner(Protocol):
    def __call__(self, model: str, current: str | None, hint: str | None, rejected: frozenset[str],
                 floor: HardwareFloor | None = None, convert: str | None = None, /) -> Plan: ...


@dataclass(frozen=True)
class Library:
    """
    planner(model, current, protocol_hint, rejected, floor) -> Plan: the loads to take, in order (floor: the
        phone's hardware floor when its VID is known, plan.fit_floor).
    components_of(load) -> int: how many files its manifest lists (0 if unknown): all taken means rebooting.
    platforms_of(load) -> each platform's file names, lower case (7800/8800 manifests; () for one list): a phone
        fetches only its own platform's, so taking one platform's files is taking the load.
    floor(model, vid) -> (minimum, safe) | None: the hardware floor of the model at that VID ("V20"), as Cisco
        writes releases; minimum "" when no source names exactly that VID.  vid None: the model's highest
        documented floor (for the words only: an unknown VID is never a floor).  None: no floor documented.
    has_stones(model) -> bool: a stepping-stone rule (rules.toml, [upgrade] rules) names the model; False: a
        refusal is never read as the signing key (7800/8800, 69xx, 894x: no rule known).
    reset_keys(model) -> str | None: the factory-reset key sequence, for the trust-list diagnosis.
    upgradable(model) -> (model, images) | None: None if the model takes loads by manifest, else what it takes.
    term_of(model) -> str | None: the term file ("term65.default.loads") a factory-reset phone of it asks.
    models() -> list of model names XMLDefault.cnf.xml covers (their defaults are pushed to the workers).
    is_7940(model) -> bool: a 7940/60 (loaders ask OS79XX.TXT and SIPDefault.cnf, not SEP<MAC>.cnf.xml).
    mpp_floor(model, vid) -> (minimum, safe) | None: as `floor`, for multiplatform firmware (88x1 V15+: MPP 11.3(3)).
    conversion(mac, model) -> "mpp" | "sip" | None: [upgrade] convert moves this phone (its MAC first, then its
        model) to multiplatform or Enterprise firmware; the planner's `convert` argument once the core allows it.
    licensed(mac) -> bool: its conversion licence (`<MAC>.lic`) is in the volume; nothing else of it is told.
    licence_problem(mac) -> str | None: why a file of that name cannot be its licence ("empty", "names another
        phone's MAC, not this one"), None when there is none or it is usable (the station's words, never content).
    convert_refusal(model, vid) -> (kind, why) | None: Cisco does not list the model ("model") or its hardware
        version ("hardware") as eligible for conversion (firmware/conversion.toml).
    """
    planner: Planner
    components_of: Callable[[str], int] = lambda load: 0
    platforms_of: Callable[[str], tuple[tuple[str, ...], ...]] = lambda load: ()
    floor: Callable[[str, str | None], tuple[str, str] | None] = lambda model, vid: None
    has_stones: Callable[[str], bool] = lambda model: True
    reset_keys: Callable[[str], str | None] = lambda model: None
    upgradable: Callable[[str], tuple[str, str] | None] = lambda model: None
    term_of: Callable[[str], str | None] = lambda model: None
    models: Callable[[], list[str]] = lambda: []
    is_7940: Callable[[str], bool] = lambda model: False
    mpp_floor: Callable[[str, str | None], tuple[str, str] | None] = lambda model, vid: None
    conversion: Callable[[str, str], str | None] = lambda mac, model: None
    licensed: Callable[[str], bool] = lambda mac: False
    licence_problem: Callable[[str], str | None] = lambda mac: None
    convert_refusal: Callable[[str, str | None], tuple[str, str] | None] = lambda model, vid: None
