"""`appliance simulate`: Cisco phones over real sockets (TFTP part; DHCP not yet).

The TFTP client is sans-I/O (TftpRead: bytes in -> bytes out) with a thin
blocking UDP loop so many phones can run in bounded threads.
"""
from __future__ import annotations

import argparse
import re
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class TftpRead:
    """RFC 1350 read with blksize option; `receive(pkt)` returns the reply packet or None when finished."""

    def __init__(self, name: str, blksize: int = 1428):
        self.name, self.blksize, self.data, self.block, self.error, self.done = name, blksize, bytearray(), 0, None, False

    def request(self) -> bytes:
        return b"\0\1" + self.name.encode() + b"\0octet\0blksize\0" + str(self.blksize).encode() + b"\0"

    def receive(self, pkt: bytes) -> bytes | None:
        if len(pkt) < 4:
            return None
        op, num = struct.unpack("!HH", pkt[:4])
        if op == 6:
            opts = pkt[2:].split(b"\0")
            for k, v in zip(opts[::2], opts[1::2]):
                if k.lower() == b"blksize":
                    self.blksize = int(v)
            return struct.pack("!HH", 4, 0)
        if op == 5:
            self.error, self.done = pkt[4:].split(b"\0")[0].decode(errors="replace") or f"error {num}", True
            return None
        if op == 3 and num == (self.block + 1) & 0xFFFF:
            self.block = num
            self.data += pkt[4:]
            if len(pkt) - 4 < self.blksize:
                self.done = True
            return struct.pack("!HH", 4, num)
        if op == 3:
            return struct.pack("!HH", 4, num)
        return None


def tftp_get(server: str, port: int, name: str, timeout: float = 2.0, retries: int = 3) -> tuple[bytes | None, str | None]:
    t = TftpRead(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        out, dest = t.request(), (server, port)
        tries = 0
        while not t.done:
            s.sendto(out, dest)
            try:
                pkt, addr = s.recvfrom(65536)
            except socket.timeout:
                tries += 1
                if tries > retries:
                    return None, "timeout"
                continue
            tries, dest = 0, addr
            reply = t.receive(pkt)
            if reply is not None:
                out = reply
                if t.done:
                    s.sendto(reply, dest)
    return (None, t.error) if t.error else (bytes(t.data), None)


@dataclass
class SimPhone:
    mac: str
    model: str = "7965"
    current: str | None = None
    log: list[tuple[str, str | None]] = field(default_factory=list)

    def boot(self, server: str, port: int) -> list[tuple[str, str | None]]:
        """79x1/2/5 boot sequence: trust files, config, then the load it names and its components."""
        sep = "SEP" + self.mac.replace(":", "").upper()
        for name in ("CTL" + sep + ".tlv", "ITL" + sep + ".tlv", "ITLFile.tlv"):
            self.log.append((name, tftp_get(server, port, name)[1]))
        cnf, err = tftp_get(server, port, sep + ".cnf.xml")
        self.log.append((sep + ".cnf.xml", err))
        m = re.search(rb"<loadInformation[^>]*>([^<]+)<", cnf or b"")
        if m:
            loads = m.group(1).decode().strip() + ".loads"
            body, err = tftp_get(server, port, loads)
            self.log.append((loads, err))
            if body is not None and self._rejects(loads[:-6]):
                self.log.append(("rejected", "Auth Fail"))
                return self.log
            for comp in re.findall(rb"[\w.-]+\.(?:sbn|sb2|bin|zz|tlv)", body or b""):
                self.log.append((comp.decode(), tftp_get(server, port, comp.decode())[1]))
        return self.log

    def _rejects(self, load: str) -> bool:
        """Signing rules: a phone below a rule's floor refuses loads past the rule's gate."""
        from .rules import builtin_rules, version_key
        cur, new = version_key(self.current or ""), version_key(load)
        if cur is None or new is None:
            return False
        return any(r.applies(self.model, cur, new) for r in builtin_rules())


def run_many(server: str, port: int, macs: list[str], workers: int = 16) -> list[list]:
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(macs)))) as ex:
        return list(ex.map(lambda m: SimPhone(m).boot(server, port), macs))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="emulate Cisco phones against a TFTP server (real sockets)")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=69)
    p.add_argument("--count", type=int, default=1)
    p.set_defaults(func=_cmd, needs_config=False)


def _cmd(args) -> int:
    macs = [f"00:1e:7a:00:{i // 256:02x}:{i % 256:02x}" for i in range(max(1, min(args.count, 500)))]
    for mac, log in zip(macs, run_many(args.server, args.port, macs)):
        print(mac, " ".join(f"{n}:{e or 'ok'}" for n, e in log))
    return 0
