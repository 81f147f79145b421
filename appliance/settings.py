"""The station's settings as types: one frozen dataclass per config section.

Each field's `kind` (metadata) says how a TOML or environment value is checked: str, int, bool,
list (of str), table (str -> str), rules (array of tables), "choice:a|b|c", path (a str the loader makes
absolute: relative to the config file's directory when it comes from the file or is the default, to the
current directory when it comes from an environment variable).  `appliance/config.py`
reads the file and the environment into these; everyone else reads attributes (`cfg.dhcp.port`), so
a misspelt key is an AttributeError at the first test, not a silent default.  Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any


def _f(kind: str, default: Any, derived: bool = False) -> Any:
    """A field of `kind`; `derived` ones are filled in by the loader (not keys of the file)."""
    meta = {"kind": kind, "derived": derived}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Network:
    interface: str = _f("str", "eth0")
    address: str = _f("str", "auto")
    network: str = _f("str", "", derived=True)       # the interface's subnet, e.g. "10.79.0.0/24"
    netmask: str = _f("str", "", derived=True)


@dataclass(frozen=True)
class Dhcp:
    enabled: bool = _f("bool", True)
    pool_start: str = _f("str", "auto")
    pool_end: str = _f("str", "auto")
    lease_seconds: int = _f("int", 3600)
    router: str = _f("str", "")
    dns: list[str] = _f("list", ["auto"])
    domain: str = _f("str", "recovery.lan")
    tftp_servers: list[str] = _f("list", [])
    guard: str = _f("choice:refuse|warn|off", "refuse")
    guard_interval: int = _f("int", 60)
    port: int = _f("int", 67)
    reservations: dict[str, str] = _f("table", {})
    others_share: str = _f("str", "25%")        # "N%" of the pool or a count "N" (appliance/dhcp/leases.py)
    others_lease_seconds: int = _f("int", 300)


@dataclass(frozen=True)
class Tftp:
    root: str = _f("path", "firmware")
    port: int = _f("int", 69)
    max_sessions: int = _f("int", 200)
    per_client: int = _f("int", 8)
    phone_reserve_percent: int = _f("int", 50)
    max_blksize: int = _f("int", 1468)
    timeout: int = _f("int", 2)
    retries: int = _f("int", 5)
    max_timeout: int = _f("int", 5)
    lifetime_ms_per_block: int = _f("int", 500)
    workers: int = _f("int", 1)
    pump: str = _f("choice:native|python", "native")
    http_port: int = _f("int", 6970)


@dataclass(frozen=True)
class Dns:
    enabled: bool = _f("bool", True)
    port: int = _f("int", 53)
    names: dict[str, str] = _f("table", {"recovery": "auto", "tftp": "auto"})
    upstream: str = _f("str", "")


@dataclass(frozen=True)
class Api:
    host: str = _f("str", "0.0.0.0")
    port: int = _f("int", 8080)
    token: str = _f("str", "")


@dataclass(frozen=True)
class State:
    dir: str = _f("path", "state")


@dataclass(frozen=True)
class Upgrade:
    strategy: str = _f("choice:stepwise|direct", "stepwise")
    targets: dict[str, str] = _f("table", {})
    convert: dict[str, str] = _f("table", {})
    # [upgrade] convert entries that move phones between Enterprise and multiplatform firmware ("mpp",
    # "enterprise"), split off by recovery/validate.py: canonical model or 12-digit lower-case MAC -> "mpp" | "sip".
    platform: dict[str, str] = _f("table", {}, derived=True)
    rules: list[dict] = _f("rules", [])
    web_port: int = _f("int", 80)
    neighbours: bool = _f("bool", True)


SECTIONS: dict[str, type] = {"network": Network, "dhcp": Dhcp, "tftp": Tftp, "dns": Dns, "api": Api,
                             "state": State, "upgrade": Upgrade}


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


# section -> key -> (kind, default): the keys a config file may set (derived fields are not keys).
SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    name: {f.name: (f.metadata["kind"], _default(f)) for f in fields(cls) if not f.metadata["derived"]}
    for name, cls in SECTIONS.items()
}


def section_dict(section: Any) -> dict[str, Any]:
    """A section's values as a plain dict (for JSON: the API and `check-config`)."""
    return asdict(section)
