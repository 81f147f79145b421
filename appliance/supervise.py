"""`appliance run`: supervisord with every enabled service, and the exit status it deserves.

supervisord reads `config/supervisord.conf`; whether dhcp and dns start comes
from the station config through environment variables that the conf file
expands (`%(ENV_...)s`), so one static file serves all.

supervisord itself exits 0 however it stops, so a station whose service keeps
crashing would look like a clean stop (or, left alone, linger half-alive).  The
`fatal-listener` event listener below reacts to PROCESS_STATE_FATAL: it records
which service gave up in a marker file and stops supervisord; `appliance run`
then exits non-zero naming it, and the container's restart policy takes over.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from . import config as configmod

SUPERVISORD_CONF = "supervisord.conf"
FATAL_MARKER = "supervisor-fatal"
EXIT_FATAL = 3


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run every enabled service under supervisord (foreground)")
    parser.add_argument("--supervisord-conf", help="default: supervisord.conf beside the station config")
    parser.set_defaults(func=cmd_run, needs_config=True)


def supervisor_env(cfg: configmod.Config) -> dict[str, str]:
    env = dict(os.environ)
    env["APPLIANCE_CONFIG"] = str(Path(cfg.source).resolve())
    env["APPLIANCE_AUTOSTART_DHCP"] = "true" if cfg.dhcp.enabled else "false"
    env["APPLIANCE_AUTOSTART_DNS"] = "true" if cfg.dns.enabled else "false"
    env["APPLIANCE_PYTHON"] = sys.executable
    env["APPLIANCE_STATE"] = str(cfg.state_dir.resolve())
    return env


CAPABILITIES = {"NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13}
EXIT_CAPS = 4


def effective_caps(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def needed_caps(cfg: configmod.Config) -> dict[str, str]:
    """Capability -> why this config needs it."""
    need = {}
    low = unprivileged_port_start()
    ports = {"dhcp": cfg.dhcp.port if cfg.dhcp.enabled else None, "tftp": cfg.tftp.port,
             "http": cfg.tftp.http_port or None, "dns": cfg.dns.port if cfg.dns.enabled else None,
             "api": cfg.api.port}
    privileged = [f"{name} {port}" for name, port in ports.items() if port and port < low]
    if privileged:
        need["NET_BIND_SERVICE"] = "ports below " + str(low) + ": " + ", ".join(privileged)
    if cfg.dhcp.enabled:
        need["NET_RAW"] = f"DHCP binds to interface {cfg.network.interface} and probes addresses with ICMP"
        need["NET_ADMIN"] = "DHCP replies to clients that have no address yet"
    return need


def missing_caps(cfg: configmod.Config, status_text: str | None = None) -> list[str]:
    if status_text is None:
        status_text = Path("/proc/self/status").read_text()
    have = effective_caps(status_text)
    return [f"CAP_{name} ({why})" for name, why in needed_caps(cfg).items()
            if not have & (1 << CAPABILITIES[name])]


def cmd_run(args: argparse.Namespace) -> int:
    cfg: configmod.Config = args.cfg
    missing = missing_caps(cfg)
    if missing:
        print("appliance: missing capabilities: " + "; ".join(missing) +
              ". Add them (compose: cap_add: [NET_BIND_SERVICE, NET_RAW, NET_ADMIN]).", file=sys.stderr)
        return EXIT_CAPS
    conf = Path(args.supervisord_conf) if args.supervisord_conf else Path(cfg.source).resolve().parent / SUPERVISORD_CONF
    if not conf.is_file():
        print(f"appliance: supervisord config not found: {conf}", file=sys.stderr)
        return 2
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("supervisord", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        print("appliance: supervisord not installed (pip install supervisor)", file=sys.stderr)
        return 1
    marker = cfg.state_dir.resolve() / FATAL_MARKER
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([exe, "-n", "-c", str(conf)], env=supervisor_env(cfg))

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = proc.wait()
    if marker.exists():
        names = marker.read_text().split()
        print(f"appliance: service {', '.join(names) or '?'} kept failing (FATAL); station stopped",
              file=sys.stderr)
        return EXIT_FATAL
    return status


def fatal_listener(state_dir: Path, stdin=sys.stdin, stdout=sys.stdout) -> int:
    """supervisord event listener protocol: READY, read one event, RESULT, repeat."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return 0
        header = dict(item.split(":", 1) for item in header_line.split())
        payload = stdin.read(int(header.get("len", 0)))
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            fields = dict(item.split(":", 1) for item in payload.split() if ":" in item)
            name = fields.get("processname", "?")
            with open(state_dir / FATAL_MARKER, "a") as fh:
                fh.write(name + "\n")
            print(f"fatal-listener: {name} entered FATAL; stopping supervisord", file=sys.stderr, flush=True)
            os.kill(os.getppid(), signal.SIGTERM)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["fatal-listener"]:
        sys.exit(fatal_listener(Path(os.environ.get("APPLIANCE_STATE", "."))))
    print("usage: python -m appliance.supervise fatal-listener", file=sys.stderr)
    sys.exit(2)
