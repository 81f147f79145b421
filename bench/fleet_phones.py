"""A fleet of 79x5 phones for the fleet benchmark: real DHCP, then `curl tftp://` from each phone's own address.

Runs inside the client namespace.  Each phone, per boot: DHCP DISCOVER/REQUEST
with its MAC, option 60 and option 12 (SEP<MAC>), takes the leased address onto
the interface, asks for its trust files and SEP<MAC>.cnf.xml from the option-150
server, and if the config names a load other than the one it runs, fetches the
.loads and every component it lists, "reboots" (`--reboot-s`, far shorter than
a real phone's minute or two, identical for every server) and boots again.  A
phone stops when its config names the load it already runs.  Transfers use curl
(C) so the phones are not the bottleneck; DHCP uses the station's codec only as
a client-side encoder.  Prints one JSON document with per-phone results.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from appliance.dhcp import codec  # noqa: E402

LOAD_RE = re.compile(rb"<loadInformation[^>]*>\s*([^<\s]+)\s*<")
COMPONENT_RE = re.compile(rb"[\w.-]+\.(?:sbn|sb2|bin|zz|tlv|img|sgn)")
VENDOR = b"Cisco Systems, Inc. IP Phone CP-7965G\x00"
PRL = bytes((1, 3, 6, 15, 66, 150, 35))


class DhcpMux:
    """One client socket on port 68 for every phone; replies are routed to the waiting phone by xid."""

    def __init__(self, iface: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        self.sock.bind(("0.0.0.0", 68))
        self.waiting: dict[int, queue.Queue] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._rx, daemon=True).start()

    def _rx(self) -> None:
        while True:
            data = self.sock.recv(4096)
            try:
                msg = codec.parse(data)
            except codec.MalformedPacket:
                continue
            with self.lock:
                q = self.waiting.get(msg.xid)
            if q is not None:
                q.put(msg)

    def exchange(self, mac: bytes, host: str, deadline: float) -> tuple[str, str] | None:
        """DISCOVER/OFFER/REQUEST/ACK with RFC 2131 retransmission (4 s); (address, tftp server) or None."""
        xid = int.from_bytes(os.urandom(4), "big")
        q: queue.Queue = queue.Queue()
        with self.lock:
            self.waiting[xid] = q
        try:
            base = {codec.OPT_VENDOR_CLASS: VENDOR, codec.OPT_HOSTNAME: host.encode(), codec.OPT_PRL: PRL}
            offer = self._ask(q, deadline, codec.OFFER, codec.Message(
                xid=xid, flags=codec.BROADCAST_FLAG, chaddr=mac,
                options={codec.OPT_MSG_TYPE: bytes((codec.DISCOVER,)), **base}))
            if offer is None:
                return None
            ack = self._ask(q, deadline, codec.ACK, codec.Message(
                xid=xid, flags=codec.BROADCAST_FLAG, chaddr=mac,
                options={codec.OPT_MSG_TYPE: bytes((codec.REQUEST,)), **base,
                         codec.OPT_REQUESTED_IP: codec.ip_bytes(offer.yiaddr),
                         codec.OPT_SERVER_ID: offer.options.get(codec.OPT_SERVER_ID, b"")}))
            if ack is None:
                return None
            servers = ack.options.get(codec.OPT_TFTP_SERVERS, b"")
            tftp = codec.ip_text(servers[:4]) if len(servers) >= 4 else ack.siaddr
            return ack.yiaddr, tftp
        finally:
            with self.lock:
                self.waiting.pop(xid, None)

    def _ask(self, q: queue.Queue, deadline: float, want: int, msg: codec.Message):
        packet = codec.serialize(msg)
        while time.monotonic() < deadline:
            self.sock.sendto(packet, ("255.255.255.255", 67))
            until = min(deadline, time.monotonic() + 4.0)
            while time.monotonic() < until:
                try:
                    reply = q.get(timeout=max(0.01, until - time.monotonic()))
                except queue.Empty:
                    break
                if reply.msg_type == want and reply.chaddr[:6] == msg.chaddr[:6]:
                    return reply
                if reply.msg_type == codec.NAK:
                    return None
        return None


class Phone:
    def __init__(self, n: int, args, mux: DhcpMux, addresses: set, lock: threading.Lock):
        self.mac = bytes((0x00, 0x1E, 0x7A, args.seed, n >> 8 & 0xFF, n & 0xFF))
        self.sep = "SEP" + self.mac.hex().upper()
        self.args, self.mux, self.addresses, self.lock = args, mux, addresses, lock
        self.current = args.current
        self.loads_taken: list[str] = []
        self.boots = 0
        self.bytes = 0
        self.error: str | None = None
        self.done_s: float | None = None
        self.installed_s: dict[str, float] = {}

    def curl(self, ip: str, server: str, name: str, keep: bool) -> tuple[bytes | None, int]:
        cmd = ["curl", "-s", "--max-time", str(int(self.args.file_timeout)), "--interface", ip,
               "--tftp-blksize", str(self.args.blksize), f"tftp://{server}/{name}"]
        cmd += ["-o", "/dev/null", "-w", "%{size_download}"] if not keep else []
        res = subprocess.run(cmd, capture_output=True, timeout=self.args.file_timeout + 10)
        if res.returncode:
            return None, 0
        return (res.stdout, len(res.stdout)) if keep else (b"", int(res.stdout or 0))

    def take_address(self, ip: str) -> None:
        with self.lock:
            if ip in self.addresses:
                return
            subprocess.run(["ip", "addr", "add", f"{ip}/{self.args.prefix}", "dev", self.args.interface],
                           capture_output=True, timeout=10)
            self.addresses.add(ip)

    def run(self, start: float, deadline: float) -> None:
        while time.monotonic() < deadline and self.boots < self.args.max_boots:
            self.boots += 1
            lease = self.mux.exchange(self.mac, self.sep, deadline)
            if lease is None:
                self.error = "no DHCP lease"
                return
            ip, server = lease
            self.take_address(ip)
            for trust in (f"CTL{self.sep}.tlv", f"ITL{self.sep}.tlv", "ITLFile.tlv"):
                self.curl(ip, server, trust, keep=False)
            cnf, _ = self.curl(ip, server, f"{self.sep}.cnf.xml", keep=True)
            m = LOAD_RE.search(cnf or b"")
            if m is None:
                self.error = "no loadInformation in config" if cnf else "config not served"
                return
            load = m.group(1).decode()
            if load == self.current:
                self.done_s = time.monotonic() - start
                return
            body, _ = self.curl(ip, server, f"{load}.loads", keep=True)
            if not body:
                self.error = f"{load}.loads not served"
                return
            for comp in dict.fromkeys(COMPONENT_RE.findall(body)):
                _, size = self.curl(ip, server, comp.decode(), keep=False)
                if size <= 0:
                    self.error = f"component {comp.decode()} of {load} not served"
                    return
                self.bytes += size
            self.current = load
            self.loads_taken.append(load)
            self.installed_s[load] = time.monotonic() - start
            time.sleep(self.args.reboot_s)
        self.error = self.error or "did not settle"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--interface", default="lan0")
    ap.add_argument("--prefix", type=int, default=16)
    ap.add_argument("--current", default="SCCP45.8-3-1S", help="load every phone runs at power-on")
    ap.add_argument("--seed", type=int, default=0x42, help="4th MAC byte, so fleets can be told apart")
    ap.add_argument("--blksize", type=int, default=1428)
    ap.add_argument("--reboot-s", type=float, default=2.0)
    ap.add_argument("--max-boots", type=int, default=6)
    ap.add_argument("--file-timeout", type=float, default=120.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    mux = DhcpMux(args.interface)
    addresses: set = set()
    lock = threading.Lock()
    phones = [Phone(i, args, mux, addresses, lock) for i in range(args.count)]
    start = time.monotonic()
    deadline = start + args.timeout
    threads = [threading.Thread(target=p.run, args=(start, deadline), daemon=True) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline + 5 - time.monotonic()))
    wall = time.monotonic() - start
    for phone, thread in zip(phones, threads):
        if thread.is_alive():
            phone.error = f"still busy after {args.timeout:.0f} s (boot {phone.boots})"
    print(json.dumps({"count": args.count, "wall_s": wall, "phones": [
        {"mac": p.mac.hex(), "final": p.current, "loads": p.loads_taken, "boots": p.boots, "bytes": p.bytes,
         "done_s": p.done_s, "installed_s": p.installed_s, "error": p.error} for p in phones]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
