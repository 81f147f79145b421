"""Why a service cannot listen, in one line a tech can act on: which port, who holds it, what to stop.

`cannot_listen(proto, port, exc, alternative)` turns the OSError of a failed bind into that line and says
whether retrying can help (a port someone else holds, or one only root may open, stays so: supervisor
should not spend 18 s restarting the service).  The holder is found the way `ss -lpn` finds it: the
socket's inode from /proc/net/{udp,tcp}{,6}, then the process whose /proc/PID/fd links to
`socket:[inode]`.  Another user's process is visible only to root; then the line says how to look.

The parsers (`socket_inodes`, `unit_of`, `advice`) take text and return values; `holder` and
`cannot_listen` read /proc.
"""
from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from .text import clean

PROC = Path("/proc")
MAX_PIDS = 65536            # /proc entries looked at, at most (a bench station has a few hundred)
TCP_LISTEN = "0A"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str                 # /proc/PID/comm, cleaned
    command: str              # /proc/PID/cmdline, spaces between arguments, cleaned
    unit: str | None = None   # the systemd unit it runs in ("dnsmasq.service"), if any


@dataclass(frozen=True)
class BindFailure:
    line: str                 # what the service says, once
    permanent: bool           # retrying cannot help until someone acts


def _address(hex_addr: str) -> str:
    """/proc/net's local address (host byte order per 32-bit word) as text."""
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    v6 = ipaddress.IPv6Address(words)
    return str(v6.ipv4_mapped or v6)


def _overlaps(theirs: str, ours: str) -> bool:
    return theirs in WILDCARDS or ours in WILDCARDS or theirs == ours


def socket_inodes(table: str, port: int, tcp: bool, address: str = "") -> list[int]:
    """The inodes of sockets in one /proc/net/{udp,tcp}{,6} table bound to `port` (TCP: listening) on an
    address that overlaps `address` ("" or a wildcard: any); malformed rows are skipped."""
    found = []
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or ":" not in cols[1]:
            continue
        local, state, inode = cols[1], cols[3], cols[9]
        host, _, hex_port = local.rpartition(":")
        try:
            if int(hex_port, 16) != port or (tcp and state != TCP_LISTEN) or not inode.isdigit():
                continue
            theirs = _address(host)
        except ValueError:
            continue
        if int(inode) and _overlaps(theirs, address):
            found.append(int(inode))
    return found


def unit_of(cgroup: str) -> str | None:
    """The systemd service a process runs in, from /proc/PID/cgroup (`0::/system.slice/dnsmasq.service`)."""
    for line in cgroup.splitlines():
        path = line.rsplit(":", 1)[-1]
        for part in reversed(path.split("/")):
            if part.endswith(".service") and not part.startswith("user@"):    # user@UID is a whole login
                return part
    return None


def advice(proto: str, port: int, holder: Holder | None, alternative: str = "") -> str:
    """The line for a port someone else holds: who, and what to stop (or `alternative`, e.g. a key to set)."""
    what = f"port {port}/{proto}"
    if holder is None:
        flag = "u" if proto == "udp" else "t"
        line = (f"{what} is in use by another program (see which: sudo ss -l{flag}pn 'sport = :{port}'): "
                "stop it")
    else:
        how = (f"systemctl stop {holder.unit.removesuffix('.service')}" if holder.unit
               else f"kill {holder.pid}")
        station = " (an earlier station still running?)" if " -m appliance" in f" {holder.command}" else ""
        line = f"{what} is held by {holder.name} (pid {holder.pid}){station}: stop it ({how})"
    return f"{line} or {alternative}" if alternative else line


def _read(path: Path, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def holder(proto: str, port: int, address: str = "", proc: Path = PROC) -> Holder | None:
    """The process holding `port` (TCP: listening on it), or None when it cannot be seen (another user's
    process and we are not root, another network namespace's socket, or it was just closed)."""
    tcp = proto == "tcp"
    inodes: set[int] = set()
    for table in (("tcp", "tcp6") if tcp else ("udp", "udp6")):
        inodes.update(socket_inodes(_read(proc / "net" / table, 1 << 22), port, tcp, address))
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit()][:MAX_PIDS]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.scandir(proc / pid / "fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in targets:
                        base = proc / pid
                        command = _read(base / "cmdline").replace("\0", " ").strip()
                        return Holder(int(pid), clean(_read(base / "comm").strip() or "?", 64),
                                      clean(command, 256), unit_of(_read(base / "cgroup")))
                except OSError:
                    continue
    return None


def is_service(found: Holder | None, name: str) -> bool:
    """Whether `found` is a process of the station's own service `name` (`appliance ... serve NAME`)."""
    if found is None:
        return False
    words = found.command.split()
    return "appliance" in words and "serve" in words and words[words.index("serve") + 1:][:1] == [name]


def cannot_listen(proto: str, port: int, exc: OSError, alternative: str = "", address: str = "") -> BindFailure:
    """What a service says when `bind` to `port` failed with `exc`.

    Args:
        proto: "udp" or "tcp".
        port: the port it tried.
        exc: the bind's OSError.
        alternative: what else the tech may do, e.g. "set [dhcp] enabled = false".
        address: the address it bound ("" = any), so a holder on another address is not blamed.
    Returns:
        the line, and whether it is permanent (port held, or privileged): no retry can help.
    """
    what = f"port {port}/{proto}"
    if exc.errno == errno.EADDRINUSE:
        return BindFailure(advice(proto, port, holder(proto, port, address), alternative), True)
    if exc.errno == errno.EACCES:
        return BindFailure(f"{what} may only be opened by root: run it as root (sudo -E make run) or give it "
                           "CAP_NET_BIND_SERVICE", True)
    if exc.errno == errno.EADDRNOTAVAIL:
        return BindFailure(f"cannot listen on {what}: address {address or '?'} is not on this host "
                           "(check [network] address and interface)", False)
    if exc.errno == errno.ENODEV:
        return BindFailure(f"cannot listen on {what}: the interface is gone (check [network] interface)", False)
    if exc.errno == errno.EPERM:
        return BindFailure(f"cannot listen on {what}: not permitted ({exc.strerror}): run it as root "
                           "(sudo -E make run) or give it CAP_NET_RAW", True)
    return BindFailure(f"cannot listen on {what}: {exc.strerror or exc}", False)
