import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import config
from appliance.config import ConfigError
from appliance.recovery import validate

from .conftest import REPO, SHIPPED_CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def run_check(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "appliance", *extra, "check-config"], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=60)


def test_shipped_config_is_accepted(station_env):
    result = run_check(station_env)
    assert result.returncode == 0, result.stderr
    assert "network.address = '127.0.0.1'" in result.stdout


def test_auto_values_resolve_from_interface(station_config):
    cfg = station_config
    assert cfg.network.address == "127.0.0.1"
    assert cfg.dhcp.tftp_servers == ["127.0.0.1"]
    assert cfg.dhcp.dns == ["127.0.0.1"]
    assert cfg.dns.names["recovery"] == "127.0.0.1"
    assert cfg.dhcp.pool_start == "127.0.0.2"
    assert cfg.dhcp.pool_end == "127.0.0.201"


def test_every_schema_key_is_documented_in_shipped_file():
    text = SHIPPED_CONFIG.read_text()
    for section, keys in config.SCHEMA.items():
        assert f"[{section}]" in text
        for key in keys:
            assert f"{key} =" in text or f"[{section}.{key}]" in text, f"{section}.{key} undocumented"


def test_env_overrides_file(station_env):
    cfg = config.load(environ={**station_env, "APPLIANCE_TFTP_PORT": "6969", "APPLIANCE_DHCP_ENABLED": "no",
                               "APPLIANCE_DHCP_DNS": "127.0.0.9, 127.0.0.8",
                               "APPLIANCE_DNS_NAMES": '{"phones": "auto"}'})
    assert cfg.tftp.port == 6969
    assert cfg.dhcp.enabled is False
    assert cfg.dhcp.dns == ["127.0.0.9", "127.0.0.8"]
    assert cfg.dns.names == {"phones": "127.0.0.1"}


def test_config_path_precedence(tmp_path, station_env):
    alt = write(tmp_path, "[tftp]\nport = 7000\n")
    env = {**station_env, "APPLIANCE_CONFIG": str(alt)}
    assert config.load(environ=env).tftp.port == 7000
    assert config.find_path("cli.toml", env) == Path("cli.toml")
    assert config.find_path(None, {}) == config.DEFAULT_PATH


BAD_CASES = [
    ("[tftp]\nportt = 69\n", "tftp.portt", "unknown key"),
    ("[tftpd]\nport = 69\n", "tftpd.*", "unknown section"),
    ("[tftp]\nport = \"69\"\n", "tftp.port", "expected an integer"),
    ("[dhcp]\nenabled = \"yes\"\n", "dhcp.enabled", "expected true or false"),
    ("[tftp]\nport = 70000\n", "tftp.port", "out of range"),
    ("[api]\nport = 0\n", "api.port", "out of range"),
    ("[dhcp]\npool_start = \"10.9.9.1\"\n", "dhcp.pool_start", "outside the interface subnet"),
    ("[dhcp]\npool_start = \"127.0.0.50\"\npool_end = \"127.0.0.10\"\n", "dhcp.pool_start", "after pool_end"),
    ("[dhcp]\npool_end = \"not-an-ip\"\n", "dhcp.pool_end", "not an IPv4 address"),
    ("[tftp]\nroot = \"/nonexistent/firmware\"\n", "tftp.root", "does not exist"),
    ("[dhcp]\nguard = \"maybe\"\n", "dhcp.guard", "must be one of"),
    ("[dhcp]\nothers_share = \"lots\"\n", "dhcp.others_share", "a percentage of the pool"),
    ("[dhcp]\nothers_share = \"120%\"\n", "dhcp.others_share", "at most 100%"),
    ("[dhcp]\nothers_share = \"201\"\n", "dhcp.others_share", "201 addresses but the pool has 200"),
    ("[dhcp]\nothers_share = 40\n", "dhcp.others_share", "expected a string"),
    ("[dhcp]\nothers_lease_seconds = 0\n", "dhcp.others_lease_seconds", "at least 1"),
    ("[network]\ninterface = \"nosuch0\"\n", "network.interface", "no interface named"),
    ("[dhcp.reservations]\n\"zz:zz\" = \"127.0.0.5\"\n", "dhcp.reservations.zz:zz", "not a MAC"),
    ("[tftp]\nmax_blksize = 100\n", "tftp.max_blksize", "512-65464"),
    ("[tftp]\nmax_timeout = 0\n", "tftp.max_timeout", "at least 1"),
    ("[tftp]\nmax_timeout = 300\n", "tftp.max_timeout", "1-255"),
    ("[tftp]\nlifetime_ms_per_block = 0\n", "tftp.lifetime_ms_per_block", "at least 1"),
    ("[tftp]\nphone_reserve_percent = 101\n", "tftp.phone_reserve_percent", "0-100"),
    ("[upgrade]\nstrategy = \"yolo\"\n", "upgrade.strategy", "must be one of"),
    ("[upgrade.convert]\n\"7965\" = \"h323\"\n", "upgrade.convert.7965", "must be one of 'sccp', 'sip'"),
    ("[upgrade.convert]\n\"7999\" = \"sip\"\n", "upgrade.convert.7999", "unknown phone model"),
    ("[upgrade.convert]\n\"8861\" = \"sccp\"\n", "upgrade.convert.8861", "CP-8861 has no SCCP loads"),
    ("[upgrade.convert]\n\"7965\" = 1\n", "upgrade.convert", "expected a table"),
    ("[upgrade.convert]\n\"7965\" = \"sip\"\n[upgrade.targets]\n\"CP-7965G\" = \"SCCP45.9-4-2SR4-3S\"\n",
     "upgrade.targets.CP-7965G", "convert moves this model to SIP"),
    ("[tftp\nport = 1\n", "file.syntax", "not valid TOML"),
]


@pytest.mark.parametrize("text,key,problem", BAD_CASES, ids=[c[1] for c in BAD_CASES])
def test_bad_config_names_key(tmp_path, station_env, text, key, problem):
    path = write(tmp_path, text)
    env = {k: v for k, v in station_env.items() if k not in ("APPLIANCE_CONFIG",)}
    if "root" in text:
        env.pop("APPLIANCE_TFTP_ROOT")
    if "interface" in text:
        env.pop("APPLIANCE_NETWORK_INTERFACE")
    with pytest.raises(ConfigError) as info:
        validate.load(path, environ=env)
    assert info.value.key == key
    assert problem in str(info.value)
    assert str(path) in str(info.value)


def test_bad_config_exits_2_and_names_key(tmp_path, station_env):
    path = write(tmp_path, "[tftp]\nport = 99999\n")
    result = run_check({**station_env, "APPLIANCE_CONFIG": str(path)})
    assert result.returncode == 2
    assert "[tftp] port" in result.stderr and "out of range" in result.stderr
    assert str(path) in result.stderr


def test_bad_convert_exits_2_naming_the_key(tmp_path, station_env):
    path = write(tmp_path, '[upgrade.convert]\n"7940" = "sccp"\n"7965" = "skinny"\n')
    result = run_check({**station_env, "APPLIANCE_CONFIG": str(path)})
    assert result.returncode == 2
    assert "[upgrade] convert.7965" in result.stderr and "'skinny'" in result.stderr and str(path) in result.stderr


def test_convert_accepted_from_file_and_environment(tmp_path, station_env):
    path = write(tmp_path, '[upgrade.convert]\n"7965" = "SIP"\n"CP-7940G" = "sccp"\n')
    assert validate.load(environ={**station_env, "APPLIANCE_CONFIG": str(path)}).upgrade.convert == \
        {"7965": "sip", "CP-7940G": "sccp"}
    assert validate.load(environ={**station_env, "APPLIANCE_UPGRADE_CONVERT": "7942=sip"}).upgrade.convert == {"7942": "sip"}
    assert validate.load(environ=station_env).upgrade.convert == {}


def test_bad_env_value_names_variable(station_env):
    result = run_check({**station_env, "APPLIANCE_TFTP_MAX_SESSIONS": "lots"})
    assert result.returncode == 2
    assert "APPLIANCE_TFTP_MAX_SESSIONS" in result.stderr


def test_unknown_env_key_is_rejected(station_env):
    result = run_check({**station_env, "APPLIANCE_TFTP_PROT": "69"})
    assert result.returncode == 2
    assert "tftp" in result.stderr and "prot" in result.stderr


def test_serve_refuses_to_start_on_bad_config(tmp_path, station_env):
    path = write(tmp_path, "[dhcp]\nlease_seconds = -5\n")
    full = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    full.update({**station_env, "APPLIANCE_CONFIG": str(path)})
    result = subprocess.run([sys.executable, "-m", "appliance", "serve", "tftp"], cwd=REPO, env=full,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "lease_seconds" in result.stderr


def test_normalize_mac():
    assert config.normalize_mac("00:1B-2c.3D4e5F") == "001b2c3d4e5f"
    for bad in ("00:1b:2c", "zz1b2c3d4e5f", "001b2c3d4e5f00"):
        with pytest.raises(ValueError):
            config.normalize_mac(bad)


@pytest.mark.parametrize("where", ["before", "after", "after="])
def test_global_options_after_the_verb(tmp_path, station_env, where):
    """`appliance check-config --config X` works as `appliance --config X check-config` does."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[tftp]\nport = "sixty-nine"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update({k: v for k, v in station_env.items() if k != "APPLIANCE_CONFIG"})
    for path, code in ((SHIPPED_CONFIG, 0), (bad, 2)):
        opts = {"before": ["--config", str(path), "check-config"], "after": ["check-config", "--config", str(path)],
                "after=": ["check-config", f"--config={path}", "--log-level", "WARNING"]}[where]
        r = subprocess.run([sys.executable, "-m", "appliance", *opts], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == code, r.stdout + r.stderr
        if code:
            assert "[tftp] port" in r.stderr and str(path) in r.stderr
        else:
            assert f"{path}: ok" in r.stdout


def test_hoisting_keeps_verb_arguments():
    from appliance.cli import hoist_global_options
    assert hoist_global_options(["firmware", "synth", "d", "X", "--config", "c.toml", "--size", "9"]) == \
        ["--config", "c.toml", "firmware", "synth", "d", "X", "--size", "9"]


def test_sections_are_typed_frozen_dataclasses(station_config):
    import dataclasses

    from appliance import settings
    cfg = station_config
    for name, cls in settings.SECTIONS.items():
        section = getattr(cfg, name)
        assert type(section) is cls and dataclasses.is_dataclass(section)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tftp.port = 1
    with pytest.raises(AttributeError):
        getattr(cfg.tftp, "prot")    # noqa: B009  (a misspelt key fails loudly, never a silent default)
    assert cfg.network.netmask == "255.0.0.0" and cfg.network.network == "127.0.0.0/8"
    assert cfg.as_dict()["upgrade"]["neighbours"] is True


def test_documented_keys_are_exactly_the_schema():
    """Each documented `key =` line of a section in the shipped file is a field of that section's dataclass."""
    import re
    section, documented = None, set()
    for line in SHIPPED_CONFIG.read_text().splitlines():
        head = re.match(r"#?\s*\[\[?(\w+)(?:\.(\w+))?\]?\]", line.strip())
        if head:
            section = head.group(1)
            if head.group(2):
                documented.add((section, head.group(2)))
            continue
        key = re.match(r"#?\s*(\w+)\s*=", line.strip())
        if key and section in config.SCHEMA and (section, key.group(1)) not in documented:
            if key.group(1) in config.SCHEMA[section]:
                documented.add((section, key.group(1)))
    wanted = {(s, k) for s, keys in config.SCHEMA.items() for k in keys}
    assert wanted <= documented, sorted(wanted - documented)


def test_rule_checks_belong_to_recovery(station_env, tmp_path):
    """config.py checks types and addresses; the meaning of [upgrade] rules is recovery's (validate.py)."""
    text = (REPO / "appliance" / "config.py").read_text()
    assert "recovery" not in "".join(line for line in text.splitlines() if line.startswith(("from", "import")))
    path = write(tmp_path, '[[upgrade.rules]]\nmodels = ["7965"]\nvia_min = "8.3(3)"\n')
    env = {**station_env, "APPLIANCE_CONFIG": str(path)}
    assert config.load(environ=env).upgrade.rules     # types fine: config alone accepts it
    with pytest.raises(ConfigError) as info:
        validate.load(environ=env)
    assert info.value.key == "upgrade.rules[0]" and "via_max" in str(info.value)


def test_where_names_the_variable_that_set_a_key_else_the_file(station_env):
    cfg = config.load(environ={**station_env, "APPLIANCE_DHCP_POOL_END": "127.0.0.9"})
    assert cfg.where("dhcp.pool_end") == "environment APPLIANCE_DHCP_POOL_END"
    assert cfg.where("dhcp.pool_start") == cfg.source
    assert cfg.where("network.interface") == "environment APPLIANCE_NETWORK_INTERFACE"
    assert cfg.where("dns.names.recovery") == cfg.source
    assert config.load(environ={**station_env, "APPLIANCE_DNS_NAMES": "a=auto"}).where("dns.names.a") == \
        "environment APPLIANCE_DNS_NAMES"


def test_paths_follow_the_file_or_the_cwd(tmp_path, station_env, monkeypatch):
    site = tmp_path / "site"
    (site / "fw").mkdir(parents=True)
    (site / "station.toml").write_text('[tftp]\nroot = "fw"\n[state]\ndir = "../var"\n')
    env = {k: v for k, v in station_env.items() if k not in ("APPLIANCE_TFTP_ROOT", "APPLIANCE_STATE_DIR")}
    monkeypatch.chdir(tmp_path)
    cfg = config.load(site / "station.toml", environ=env)
    assert (cfg.tftp.root, cfg.state.dir) == (str(site / "fw"), str(tmp_path / "var"))
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert config.load(site / "station.toml", environ=env).tftp.root == str(site / "fw")    # not the cwd's
    (tmp_path / "other" / "mine").mkdir()
    cfg = config.load(site / "station.toml", environ={**env, "APPLIANCE_TFTP_ROOT": "mine"})
    assert cfg.tftp.root == str(tmp_path / "other" / "mine")      # an environment variable's: the cwd's
    (site / "state").mkdir()
    (site / "plain.toml").write_text('[tftp]\nroot = "fw"\n')
    assert config.load(site / "plain.toml", environ=env).state.dir == str(site / "state")   # the default too


def test_dns_upstream_port_is_checked(station_env):
    with pytest.raises(ConfigError, match=r"\[dns\] upstream: port must be 1-65535, got 'x53'"):
        config.load(environ={**station_env, "APPLIANCE_DNS_UPSTREAM": "127.0.0.1:x53"})
    assert config.load(environ={**station_env, "APPLIANCE_DNS_UPSTREAM": "127.0.0.1:5353"}).dns.upstream


def test_an_upgrade_value_from_the_environment_is_blamed_on_it(station_env):
    with pytest.raises(ConfigError) as info:
        validate.load(environ={**station_env, "APPLIANCE_UPGRADE_CONVERT": "7965=h323"})
    assert str(info.value).startswith("environment APPLIANCE_UPGRADE_CONVERT: [upgrade] convert.7965: must be one of")
    with pytest.raises(ConfigError) as info:
        validate.load(environ={**station_env, "APPLIANCE_UPGRADE_RULES": '[{"models": ["7965"]}]'})
    assert str(info.value).startswith("environment APPLIANCE_UPGRADE_RULES: [upgrade] rules[0]: missing")
