"""The sockets under the phone model: TFTP and HTTP downloads, one DHCP exchange, the address on the link.

Thin and blocking: every loop is bounded by a retry count and a wall-clock
limit, every download by a byte limit.  The decisions are in machine.py.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import subprocess
import time

from .dhcp import DhcpClient, Lease
from .tftp import MAX_BYTES, TftpRead


def tftp_get(server: str, port: int, name: str, *, source: str | None = None, options: dict | None = None,
             timeout: float = 2.0, retries: int = 4, limit_s: float = 300.0,
             max_bytes: int = MAX_BYTES, marks: dict | None = None) -> tuple[bytes | None, str | None]:
    """(file, None) or (None, why).  The server's first reply fixes its transfer port (TID).

    marks: when given, marks["first"] is set to the monotonic time the server's first reply arrived."""
    t = TftpRead(name, options, max_bytes)
    end = time.monotonic() + limit_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source or "0.0.0.0", 0))
        out, dest, peer, tries = t.request(), (server, port), None, 0
        s.sendto(out, dest)
        while not t.done:
            if time.monotonic() > end:
                return None, "transfer too slow"
            s.settimeout(timeout)
            try:
                pkt, addr = s.recvfrom(65536)
            except socket.timeout:
                tries += 1
                if tries > retries:
                    return None, "timeout"
                s.sendto(out, peer or dest)
                continue
            if peer is None and addr[0] == server:
                peer = addr
                if marks is not None:
                    marks["first"] = time.monotonic()
            if addr != peer:
                continue
            tries = 0
            reply = t.receive(pkt)
            if reply is not None:
                out = reply
                s.sendto(reply, peer)
    return (None, t.error) if t.error else (bytes(t.data), None)


def http_get(server: str, port: int, name: str, *, source: str | None = None, timeout: float = 3.0,
             max_bytes: int = MAX_BYTES, marks: dict | None = None,
             headers: dict[str, str] | None = None) -> tuple[bytes | None, str | None]:
    """GET http://server:port/<name> as newer loads do before TFTP (§2.1); marks as tftp_get's (the status
    line's arrival); headers: sent as given (an MPP phone's User-Agent)."""
    path = name if name.startswith("/") else "/" + name
    conn = http.client.HTTPConnection(server, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        if marks is not None:
            marks["first"] = time.monotonic()
        if resp.status != 200:
            return None, f"HTTP {resp.status}"
        data = resp.read(max_bytes + 1)
        return (None, "too large") if len(data) > max_bytes else (data, None)
    except (OSError, http.client.HTTPException) as exc:
        return None, f"HTTP {type(exc).__name__}"
    finally:
        conn.close()


def acquire(client: DhcpClient, interface: str | None, timeout: float = 10.0, resend_s: float = 2.0) -> Lease | None:
    """One DISCOVER/OFFER/REQUEST/ACK on port 68 (bound to `interface`), resent every resend_s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if interface:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.bind(("0.0.0.0", 68))
        end = time.monotonic() + timeout
        out = client.discover()
        while time.monotonic() < end and client.state not in ("bound", "nak"):
            s.sendto(out, ("255.255.255.255", 67))
            resend = min(end, time.monotonic() + resend_s)
            while time.monotonic() < resend and client.state not in ("bound", "nak"):
                s.settimeout(max(0.05, resend - time.monotonic()))
                try:
                    data = s.recv(4096)
                except socket.timeout:
                    break
                reply = client.receive(data)
                if reply is not None:
                    out = reply
                    break
    return client.lease


def configure(interface: str, ip: str, mask: str, old: str | None = None) -> None:
    """Put the leased address on the interface (inside the phone's namespace), dropping the previous one."""
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    if old and old != ip:
        subprocess.run(["ip", "addr", "del", f"{old}/{prefix}", "dev", interface], capture_output=True, timeout=10)
    subprocess.run(["ip", "addr", "replace", f"{ip}/{prefix}", "dev", interface], capture_output=True, timeout=10)
