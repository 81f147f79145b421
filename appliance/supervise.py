"""`appliance run`: supervisord in the foreground with every enabled service.

supervisord reads `config/supervisord.conf`; the enabled/disabled choice of
each service comes from the station config through environment variables
that the conf file expands (`%(ENV_...)s`), so one static file serves all.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import config as configmod

SUPERVISORD_CONF = "supervisord.conf"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run every enabled service under supervisord (foreground)")
    parser.add_argument("--supervisord-conf", help="default: supervisord.conf beside the station config")
    parser.set_defaults(func=cmd_run, needs_config=True)


def supervisor_env(cfg: configmod.Config) -> dict[str, str]:
    env = dict(os.environ)
    env["APPLIANCE_CONFIG"] = str(Path(cfg.source).resolve())
    env["APPLIANCE_DHCP_AUTOSTART"] = "true" if cfg.dhcp.enabled else "false"
    env["APPLIANCE_DNS_AUTOSTART"] = "true" if cfg.dns.enabled else "false"
    env["APPLIANCE_PYTHON"] = sys.executable
    env["APPLIANCE_STATE"] = str(cfg.state_dir.resolve())
    return env


def cmd_run(args: argparse.Namespace) -> int:
    cfg: configmod.Config = args.cfg
    conf = Path(args.supervisord_conf) if args.supervisord_conf else Path(cfg.source).resolve().parent / SUPERVISORD_CONF
    if not conf.is_file():
        print(f"appliance: supervisord config not found: {conf}", file=sys.stderr)
        return 2
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("supervisord", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        print("appliance: supervisord not installed (pip install supervisor)", file=sys.stderr)
        return 1
    os.execve(exe, [exe, "-n", "-c", str(conf)], supervisor_env(cfg))
    return 0  # not reached
