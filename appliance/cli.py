"""`appliance` command line: check-config, serve, run, and the verbs each sub-package adds."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Callable

from . import __version__, logs
from . import config as configmod
from .recovery import validate

EXIT_CONFIG = 2

# service name -> "module:function(config, args) -> int"; `serve NAME` runs one in the foreground.
SERVICES = {
    "dhcp": "appliance.dhcp.service:serve",
    "tftp": "appliance.tftp.service:serve",
    "dns": "appliance.dns.service:serve",
    "api": "appliance.api.service:serve",
}

# verb -> "module:register" where register(subparsers) adds the verb's parser and
# sets `func(args) -> int` (and `needs_config`) as defaults.
VERBS = {
    "run": "appliance.supervise:register",
    "firmware": "appliance.firmware.cli:register",
    "status": "appliance.api.cli:register_status",
    "report": "appliance.api.cli:register_report",
    "leases": "appliance.api.commands:register_leases",
    "retry": "appliance.api.commands:register_retry",
    "forget": "appliance.api.commands:register_forget",
    "logs": "appliance.api.commands:register_logs",
    "simulate": "appliance.recovery.demo:register_simulate",
    "demo": "appliance.recovery.demo:register",
}


def _load(spec: str) -> Callable:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


GLOBAL_OPTIONS_WITH_VALUE = {"--config", "--log-format", "--log-level"}


def requested_verb(argv: list[str]) -> str | None:
    """The verb argv names, so only its module is imported: every supervised service starts
    through this parser, and importing all verbs (simulator, demo, firmware tools) cost each
    service process several MiB it never uses."""
    words = iter(argv)
    for word in words:
        if word in GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """All verbs when `argv` is None or names none of them (help, errors); else only the one asked for."""
    wanted = requested_verb(argv) if argv is not None else None
    if wanted not in VERBS and wanted not in ("check-config", "serve"):
        wanted = None
    parser = argparse.ArgumentParser(prog="appliance", description="Cisco IP phone recovery station")
    parser.add_argument("--config", help="config file (default $APPLIANCE_CONFIG, else config/appliance.toml)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="text or json (default $APPLIANCE_LOG_FORMAT, else text)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (default $APPLIANCE_LOG_LEVEL, else INFO)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    check = sub.add_parser("check-config", help="validate the configuration and print it resolved")
    check.add_argument("--json", action="store_true", help="print the resolved config as JSON")
    check.set_defaults(func=cmd_check_config, needs_config=True)

    serve = sub.add_parser("serve", help="run one service in the foreground (as supervisor does)")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.set_defaults(func=cmd_serve, needs_config=True)

    for verb, spec in VERBS.items():
        if wanted is not None and verb != wanted:
            continue
        try:
            _load(spec)(sub)
        except (ImportError, AttributeError) as exc:
            stub = sub.add_parser(verb, help=f"(unavailable: {exc})")
            stub.set_defaults(func=lambda args, e=exc: _unavailable(e), needs_config=False)
    return parser


def _unavailable(exc: Exception) -> int:
    print(f"appliance: this verb is unavailable: {exc}", file=sys.stderr)
    return 1


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = args.cfg
    if args.json:
        print(json.dumps(cfg.as_dict(), indent=2))
    else:
        print(f"{cfg.source}: ok")
        for section, values in cfg.as_dict().items():
            for key, value in values.items():
                print(f"  {section}.{key} = {value!r}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return _load(SERVICES[args.service])(args.cfg, args)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Global options anywhere on the line (`appliance check-config --config X`), moved before the verb,
    as techs type them; a verb's own options and arguments stay where they were."""
    front: list[str] = []
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        name = word.split("=", 1)[0]
        if name in GLOBAL_OPTIONS_WITH_VALUE:
            front.append(word)
            if "=" not in word:
                value = next(words, None)
                if value is not None:
                    front.append(value)
        else:
            rest.append(word)
    return front + rest


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    argv = hoist_global_options(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logs.setup(args.log_format, args.log_level)
    if getattr(args, "needs_config", False):
        try:
            args.cfg = validate.load(args.config)
        except configmod.ConfigError as exc:
            print(f"appliance: bad config: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:             # `appliance firmware list | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())     # so the interpreter's final flush does not raise again
        return 0
