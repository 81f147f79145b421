"""Station configuration: one TOML file, environment overrides, strict validation.

The sections' dataclasses (appliance/settings.py) are the single source of truth for keys, types
and defaults; `config/appliance.toml` documents each key for humans.  Checks that belong to
another package (the upgrade rules: appliance/recovery/validate.py) are passed in by the
composition root as `checks`, so this module imports none of them.  A bad config raises
`ConfigError` naming the file and the key; the CLI turns it into exit status 2
so nothing starts half-configured.

Where a value came from is kept per key (`Config.where`): an error names the environment variable that set
it (`environment APPLIANCE_NETWORK_INTERFACE`), else the file.  Paths (kind "path": [tftp] root, [state]
dir) from the file, or left at their defaults, are relative to the file's directory, so a config works from
any current directory; a path from an environment variable is relative to the current directory, as a
shell user expects.  Both are made absolute here.
"""
from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from . import netinfo
from .mac import normalize_mac
from .settings import SCHEMA, SECTIONS, Api, Dhcp, Dns, Network, State, Tftp, Upgrade, section_dict  # noqa: F401 (SCHEMA: documented keys)

DEFAULT_PATH = Path("config/appliance.toml")

PORT_KEYS = {("dhcp", "port"), ("tftp", "port"), ("tftp", "http_port"), ("dns", "port"), ("api", "port"),
             ("upgrade", "web_port")}
OFF_PORT_KEYS = {("tftp", "http_port"), ("upgrade", "web_port")}   # 0 turns the feature off
POSITIVE_KEYS = {
    ("dhcp", "lease_seconds"), ("dhcp", "guard_interval"), ("tftp", "max_sessions"), ("tftp", "per_client"),
    ("dhcp", "others_lease_seconds"), ("tftp", "timeout"), ("tftp", "retries"), ("tftp", "workers"),
    ("tftp", "max_timeout"), ("tftp", "lifetime_ms_per_block"),
}
AUTO_POOL_SIZE = 200


class ConfigError(Exception):
    """A configuration problem; `str()` names where the value came from (the file, or `environment NAME`)
    and the key."""

    def __init__(self, source: str, key: str, problem: str):
        super().__init__(f"{source}: [{key.split('.')[0]}] {key.split('.', 1)[-1]}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@dataclass(frozen=True)
class Config:
    source: str
    network: Network = field(default_factory=Network)
    dhcp: Dhcp = field(default_factory=Dhcp)
    tftp: Tftp = field(default_factory=Tftp)
    dns: Dns = field(default_factory=Dns)
    api: Api = field(default_factory=Api)
    state: State = field(default_factory=State)
    upgrade: Upgrade = field(default_factory=Upgrade)
    raw: dict[str, dict[str, Any]] = field(repr=False, default_factory=dict)
    origins: dict[str, str] = field(repr=False, default_factory=dict)    # "section.key" -> where it was set

    def where(self, key: str) -> str:
        """Where `key` ("dhcp.pool_start", "dns.names.recovery", "upgrade.rules[2]") got its value, for a
        ConfigError: `environment APPLIANCE_...` if an environment variable set it, else the file."""
        return _where(self.origins, self.source)(key)

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "station.db"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: section_dict(getattr(self, name)) for name in SECTIONS}

    def replace(self, **sections: Any) -> "Config":
        """A copy with whole sections replaced (`cfg.replace(upgrade=...)`)."""
        return replace(self, **sections)


Check = Callable[[Config], Config]


def find_path(cli_path: str | None = None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if cli_path:
        return Path(cli_path)
    if env.get("APPLIANCE_CONFIG"):
        return Path(env["APPLIANCE_CONFIG"])
    return DEFAULT_PATH


def load(path: str | Path | None = None, environ: dict[str, str] | None = None,
         resolve_network: bool = True, checks: Iterable[Check] = ()) -> Config:
    """Read the config file, override from the environment, validate.

    Args:
        path: the file; else $APPLIANCE_CONFIG; else config/appliance.toml.
        environ: the environment to read APPLIANCE_<SECTION>_<KEY> overrides from (default os.environ).
        resolve_network: fill in "auto" addresses from the interface (and check the pool against it).
        checks: further checks, each taking the Config and returning it (possibly normalised).
    Returns:
        the Config, one typed frozen dataclass per section.
    Raises:
        ConfigError: naming the file (or environment variable) and the key.
    """
    env = dict(os.environ if environ is None else environ)
    path = find_path(str(path) if path else None, env)
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(source, "file.path", "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "file.syntax", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "file.encoding", f"not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    origins: dict[str, str] = {}
    values = _typed_values(source, data, env, origins)
    where = _where(origins, source)
    if resolve_network:
        _resolve_network(where, values)
    _validate(where, values)
    cfg = Config(source=source, raw=data, origins=origins,
                 **{name: SECTIONS[name](**vals) for name, vals in values.items()})
    for check in checks:
        cfg = check(cfg)
    return cfg


Where = Callable[[str], str]


def _where(origins: dict[str, str], source: str) -> Where:
    def where(key: str) -> str:
        base = ".".join(key.split("[", 1)[0].split(".")[:2])     # dns.names.recovery -> dns.names
        return origins.get(base, source)
    return where


def _path(value: str, from_env: bool, source: str) -> str:
    """An absolute path: an environment variable's relative to the current directory, the file's (or a
    default) relative to the file's directory."""
    base = os.getcwd() if from_env else os.path.dirname(os.path.abspath(source))
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def _typed_values(source: str, data: dict, env: dict[str, str], origins: dict[str, str]) -> dict[str, dict[str, Any]]:
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(source, f"{section}.*", f"unknown section (known: {', '.join(SCHEMA)})")
        if not isinstance(body, dict):
            raise ConfigError(source, f"{section}.*", "must be a table")
        for key in body:
            if key not in SCHEMA[section]:
                raise ConfigError(source, f"{section}.{key}",
                                  f"unknown key (known: {', '.join(SCHEMA[section])})")
    prefix = "APPLIANCE_"
    for name in env:
        if name.startswith(prefix) and name != "APPLIANCE_CONFIG":
            parts = name[len(prefix):].lower().split("_", 1)
            if len(parts) == 2 and parts[0] in SCHEMA and parts[1] not in SCHEMA[parts[0]]:
                raise ConfigError(f"environment {name}", f"{parts[0]}.{parts[1]}", "unknown key")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        values[section] = {}
        for key, (kind, default) in keys.items():
            env_name = f"{prefix}{section.upper()}_{key.upper()}"
            if env_name in env:
                where = f"environment {env_name}"
                value = _from_env(where, section, key, kind, env[env_name])
            else:
                where = source
                value = data.get(section, {}).get(key, default)
            if where != source:
                origins[f"{section}.{key}"] = where
            value = _check_type(where, section, key, kind, value)
            if kind == "path":
                value = _path(value, where != source, source)
            values[section][key] = value
    return values


def _from_env(where: str, section: str, key: str, kind: str, text: str) -> Any:
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(where, f"{section}.{key}", f"expected an integer, got {text!r}") from None
    if kind == "bool":
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(where, f"{section}.{key}", f"expected true/false, got {text!r}")
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind in ("table", "rules"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if kind == "table":
                pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
                if all(len(p) == 2 for p in pairs):
                    return {k.strip(): v.strip() for k, v in pairs}
            raise ConfigError(where, f"{section}.{key}", "expected JSON or name=value,name=value") from None
    return text


def _check_type(where: str, section: str, key: str, kind: str, value: Any) -> Any:
    full = f"{section}.{key}"
    if kind in ("str", "path") or kind.startswith("choice:"):
        if not isinstance(value, str):
            raise ConfigError(where, full, f"expected a string, got {type(value).__name__}")
        if kind.startswith("choice:"):
            choices = kind.split(":", 1)[1].split("|")
            if value not in choices:
                raise ConfigError(where, full, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, full, f"expected an integer, got {type(value).__name__}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(where, full, f"expected true or false, got {type(value).__name__}")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(where, full, "expected a list of strings")
        return list(value)
    if kind == "table":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(where, full, "expected a table of name = \"value\" strings")
        return dict(value)
    if kind == "rules":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(where, full, "expected an array of tables ([[upgrade.rules]])")
        return [dict(v) for v in value]
    raise AssertionError(kind)


def _resolve_network(where: Where, values: dict[str, dict[str, Any]]) -> None:
    """Fill in "auto" values from the interface, and check the pool lies in its subnet."""
    net = values["network"]
    try:
        iface = netinfo.interface_ipv4(net["interface"])
    except netinfo.NoInterface as exc:
        raise ConfigError(where("network.interface"), "network.interface", str(exc)) from None
    if net["address"] == "auto":
        if iface is None:
            raise ConfigError(where("network.address"), "network.address",
                              f"\"auto\" but interface {net['interface']!r} has no IPv4 address")
        net["address"] = str(iface.ip)
        network = iface.network
    else:
        address = _ip(where, "network.address", net["address"])
        network = iface.network if iface and address in iface.network else ipaddress.ip_network(f"{address}/24", strict=False)
        net["address"] = str(address)
    net["network"] = str(network)
    net["netmask"] = str(network.netmask)
    station = ipaddress.ip_address(net["address"])
    dhcp = values["dhcp"]
    if dhcp["pool_start"] == "auto" or dhcp["pool_end"] == "auto":
        hosts_after = int(network.broadcast_address) - int(station) - 1
        if hosts_after < 1:
            raise ConfigError(where("dhcp.pool_start"), "dhcp.pool_start",
                              "\"auto\" but no addresses above the station's in its subnet")
        first = station + 1
        last = station + min(hosts_after, AUTO_POOL_SIZE)
        if dhcp["pool_start"] == "auto":
            dhcp["pool_start"] = str(first)
        if dhcp["pool_end"] == "auto":
            dhcp["pool_end"] = str(last)
    start = _ip(where, "dhcp.pool_start", dhcp["pool_start"])
    end = _ip(where, "dhcp.pool_end", dhcp["pool_end"])
    for key, addr in (("dhcp.pool_start", start), ("dhcp.pool_end", end)):
        if addr not in network:
            raise ConfigError(where(key), key, f"{addr} is outside the interface subnet {network}")
    if int(start) > int(end):
        raise ConfigError(where("dhcp.pool_start"), "dhcp.pool_start", f"{start} is after pool_end {end}")
    dhcp["dns"] = [net["address"] if d == "auto" else d for d in dhcp["dns"]]
    dhcp["tftp_servers"] = dhcp["tftp_servers"] or [net["address"]]
    values["dns"]["names"] = {k: (net["address"] if v == "auto" else v) for k, v in values["dns"]["names"].items()}


def _ip(where: Where, key: str, text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ConfigError(where(key), key, f"not an IPv4 address: {text!r}") from None


def _check_share(where: Where, dhcp: dict[str, Any]) -> None:
    """[dhcp] others_share: a percentage or a count the pool can hold (its meaning: appliance/dhcp/leases.py)."""
    from .dhcp.leases import share_count  # pure; DHCP owns what a share means
    size = 1 << 32
    if dhcp["pool_start"] != "auto" and dhcp["pool_end"] != "auto":
        size = int(_ip(where, "dhcp.pool_end", dhcp["pool_end"])) - int(_ip(where, "dhcp.pool_start",
                                                                             dhcp["pool_start"])) + 1
    try:
        share_count(dhcp["others_share"], max(size, 0))
    except ValueError as exc:
        raise ConfigError(where("dhcp.others_share"), "dhcp.others_share", str(exc)) from None


def _validate(where: Where, values: dict[str, dict[str, Any]]) -> None:
    for section, key in PORT_KEYS:
        port = values[section][key]
        low = 0 if (section, key) in OFF_PORT_KEYS else 1
        if not low <= port <= 65535:
            raise ConfigError(where(f"{section}.{key}"), f"{section}.{key}", f"port {port} out of range {low}-65535")
    for section, key in POSITIVE_KEYS:
        if values[section][key] < 1:
            raise ConfigError(where(f"{section}.{key}"), f"{section}.{key}", f"must be at least 1, got {values[section][key]}")
    if values["tftp"]["max_timeout"] > 255:
        raise ConfigError(where("tftp.max_timeout"), "tftp.max_timeout",
                          f"must be 1-255 s (RFC 2349), got {values['tftp']['max_timeout']}")
    if not 0 <= values["tftp"]["phone_reserve_percent"] <= 100:
        raise ConfigError(where("tftp.phone_reserve_percent"), "tftp.phone_reserve_percent",
                          f"must be 0-100, got {values['tftp']['phone_reserve_percent']}")
    blk = values["tftp"]["max_blksize"]
    if not 512 <= blk <= 65464:
        raise ConfigError(where("tftp.max_blksize"), "tftp.max_blksize", f"must be 512-65464 (RFC 2348), got {blk}")
    root = Path(values["tftp"]["root"])
    if not root.is_dir():
        raise ConfigError(where("tftp.root"), "tftp.root", f"directory {str(root)!r} does not exist")
    for key in ("router",):
        if values["dhcp"][key]:
            _ip(where, f"dhcp.{key}", values["dhcp"][key])
    for item in values["dhcp"]["dns"]:
        if item != "auto":
            _ip(where, "dhcp.dns", item)
    for item in values["dhcp"]["tftp_servers"]:
        _ip(where, "dhcp.tftp_servers", item)
    reservations = {}
    for mac, ip in values["dhcp"]["reservations"].items():
        try:
            reservations[normalize_mac(mac)] = str(_ip(where, f"dhcp.reservations.{mac}", ip))
        except ValueError as exc:
            raise ConfigError(where("dhcp.reservations"), f"dhcp.reservations.{mac}", str(exc)) from None
    values["dhcp"]["reservations"] = reservations
    _check_share(where, values["dhcp"])
    for name, addr in values["dns"]["names"].items():
        if addr != "auto":
            _ip(where, f"dns.names.{name}", addr)
    upstream = values["dns"]["upstream"]
    if upstream:
        host, _, port = upstream.partition(":") if upstream.count(":") == 1 else (upstream, "", "")
        _ip(where, "dns.upstream", host)
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError(where("dns.upstream"), "dns.upstream", f"port must be 1-65535, got {port!r}")
