"""Interface addresses from the kernel (ioctl), so config "auto" values need no extra package."""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B


class NoInterface(Exception):
    pass


def interface_names() -> list[str]:
    return [name for _, name in socket.if_nameindex()]


def interface_ipv4(name: str) -> ipaddress.IPv4Interface | None:
    """First IPv4 address of `name` with its prefix, or None if it has none."""
    if name not in interface_names():
        raise NoInterface(f"no interface named {name!r} (present: {', '.join(interface_names())})")
    packed = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            addr = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), SIOCGIFADDR, packed)[20:24])
            mask = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), SIOCGIFNETMASK, packed)[20:24])
        except OSError:
            return None
    return ipaddress.IPv4Interface(f"{addr}/{mask}")


SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_RUNNING = 0x40          # the kernel's operstate is up: carrier present (`ip link` shows LOWER_UP and UP)


def link_state(name: str) -> str:
    """"up", "no-carrier" (cable out, peer down), "admin-down" (`ip link set NAME down`) or "missing",
    as this process's network namespace sees `name`."""
    if name not in interface_names():
        return "missing"
    packed = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack_from("H", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, packed), 16)[0]
    if not flags & IFF_UP:
        return "admin-down"
    return "up" if flags & IFF_RUNNING else "no-carrier"
