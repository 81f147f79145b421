"""`appliance run`: supervisord with every enabled service, and the exit status it deserves.

supervisord reads `config/supervisord.conf`; whether dhcp and dns start comes
from the station config through environment variables that the conf file
expands (`%(ENV_...)s`), so one static file serves all.

supervisord itself exits 0 however it stops, so a station whose service keeps
crashing would look like a clean stop (or, left alone, linger half-alive).  Its
`fatal-listener` event listener reacts to PROCESS_STATE_FATAL: it records which
service gave up in a marker file and stops supervisord; the `run` wrapper then
exits 3 naming it, and the container's restart policy takes over.

Both helpers are POSIX sh (supervise.sh), not Python: after its checks this
process execs the wrapper, so the station's two waiting processes cost ~1 MiB
each instead of ~10 (the whole station must fit a Raspberry Pi Zero 2 W).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import stat
import sys
from pathlib import Path

from . import config as configmod
from . import logs

SUPERVISORD_CONF = "supervisord.conf"
FATAL_MARKER = "supervisor-fatal"
HELPER = Path(__file__).with_name("supervise.sh")
# A service's last words when it exits failing, for the fatal listener and the final line (supervise.sh):
# "stop" (retrying cannot help: a port someone else holds) or "retry", a newline, then the cause.
EXIT_CAUSE = "exit-cause."


def _under_supervisor() -> bool:
    return os.environ.get("SUPERVISOR_ENABLED") == "1"


def record_exit_cause(state_dir: Path, name: str, line: str, permanent: bool) -> None:
    """Leave `line` for supervise.sh when a service run by `appliance run` exits failing (not for `serve`
    run by hand: its words must not stop a station that runs beside it).

    `permanent` (a port someone else holds): also stop the station now, before this process exits.  Left to
    the listener, supervisord had already started the service again by the time it got the listener's
    SIGTERM (its first retry comes 1 s after the exit), and the same failure was said twice.
    """
    if not _under_supervisor():
        return
    text = " ".join(line.split()) or "no cause recorded"
    try:
        (Path(state_dir) / f"{EXIT_CAUSE}{name}").write_text(f"{'stop' if permanent else 'retry'}\n{text}\n")
        if permanent:
            with open(Path(state_dir) / FATAL_MARKER, "a") as fh:
                fh.write(f"{name}\n")
    except OSError:
        return    # an unwritable state dir is said by the service itself; supervisor's FATAL still stops it
    if permanent:
        parent = os.getppid()
        try:
            is_supervisord = b"supervisord" in Path(f"/proc/{parent}/cmdline").read_bytes()
        except OSError:
            is_supervisord = False
        if is_supervisord:
            os.kill(parent, signal.SIGTERM)


def clear_exit_cause(state_dir: Path, name: str) -> None:
    if _under_supervisor():
        try:
            (Path(state_dir) / f"{EXIT_CAUSE}{name}").unlink(missing_ok=True)
        except OSError:
            pass


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run every enabled service under supervisord (foreground)")
    parser.add_argument("--supervisord-conf", help="default: supervisord.conf beside the station config")
    parser.set_defaults(func=cmd_run, needs_config=True)


def supervisor_env(cfg: configmod.Config, log_format: str = "text", log_level: str = "INFO") -> dict[str, str]:
    """The environment supervisord.conf expands: which services start, where the state is, how to log."""
    env = dict(os.environ)
    env["APPLIANCE_CONFIG"] = str(Path(cfg.source).resolve())
    env["APPLIANCE_AUTOSTART_DHCP"] = "true" if cfg.dhcp.enabled else "false"
    env["APPLIANCE_AUTOSTART_DNS"] = "true" if cfg.dns.enabled else "false"
    env["APPLIANCE_AUTOSTART_LLDPD"] = "true" if cfg.upgrade.neighbours else "false"
    env["APPLIANCE_PYTHON"] = sys.executable
    env["APPLIANCE_STATE"] = str(cfg.state_dir.resolve())
    env["APPLIANCE_SUPERVISE_SH"] = str(HELPER)
    env["APPLIANCE_LOG_FORMAT"] = log_format
    env["APPLIANCE_LOG_LEVEL"] = log_level
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


def not_permitted(missing: list[str], euid: int) -> list[str]:
    """What `appliance run` says when it lacks capabilities (`missing`: "CAP_X (why)"), the fix for where it
    runs first: not root, run it with sudo (-E keeps APPLIANCE_* overrides); root without them (a container,
    or a unit that dropped them), the compose cap_add."""
    need = "; ".join(missing)
    compose = "in a container, add to its compose service: cap_add: [NET_BIND_SERVICE, NET_RAW, NET_ADMIN]"
    if euid == 0:
        return [f"appliance: root, but without the capabilities the station needs: {compose} (needed: {need})"]
    return [f"appliance: the station must run as root: sudo -E make run (needed: {need})", f"appliance: {compose}"]


def append_if_file(*fds: int) -> None:
    """`appliance run > station.log`: supervisord opens /dev/stdout again for each service, in append mode, so
    their lines go to the file's end; this process's own descriptors (the wrapper's and the listener's
    lines) must too, or they overwrite the start of the file."""
    for fd in fds:
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        except OSError:
            pass


def cmd_run(args: argparse.Namespace) -> int:
    cfg: configmod.Config = args.cfg
    missing = missing_caps(cfg)
    if missing:
        print("\n".join(not_permitted(missing, os.geteuid())), file=sys.stderr)
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
    from .api.checkup import warn_at_start

    warn_at_start(cfg)      # one WARNING per red problem (appliance/problems.py); the station starts anyway
    for old in cfg.state_dir.glob(f"{EXIT_CAUSE}*"):
        old.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    append_if_file(1, 2)
    env = supervisor_env(cfg, *logs.current())
    os.execve("/bin/sh", ["/bin/sh", str(HELPER), "run", exe, str(conf), str(marker)], env)
