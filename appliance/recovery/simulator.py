"""`appliance simulate`: Cisco phones over real sockets: DHCP, then their family's TFTP boot, rebooting until settled.

The TFTP client is sans-I/O (TftpRead: bytes in -> bytes out) with a thin
blocking UDP loop so many phones can run in bounded threads.
"""
from __future__ import annotations

import argparse
import re
import socket
import struct
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from xml.sax.saxutils import escape

WEB_TIMEOUT_S = 2.0


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


def tftp_get(server: str, port: int, name: str, timeout: float = 2.0, retries: int = 3,
             source: str | None = None) -> tuple[bytes | None, str | None]:
    t = TftpRead(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, 0))
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


class _DeviceInfo(BaseHTTPRequestHandler):
    """GET /DeviceInformationX as a phone with web access answers it (reference §7); anything else 404."""
    timeout = WEB_TIMEOUT_S
    phone: "SimPhone"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0].lower() != "/deviceinformationx":
            self.send_error(404)
            return
        body = self.phone.device_information().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@dataclass
class SimPhone:
    mac: str
    model: str = "7965"
    current: str | None = None
    trust_list: bool = False
    ip: str | None = None
    web_port: int | None = None    # serve DeviceInformationX on ip:web_port while running (0: any free port)
    log: list[tuple[str, str | None]] = field(default_factory=list)

    def device_information(self) -> str:
        from appliance.firmware.models import normalize_model
        return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInformation>\n"
                f"  <MACAddress>{escape(self.mac.replace(':', '').upper())}</MACAddress>\n"
                f"  <HostName>{escape(self.sep)}</HostName>\n"
                f"  <appLoadID>{escape(self.current or '')}</appLoadID>\n"
                f"  <versionID>{escape(self.current or '')}</versionID>\n"
                f"  <modelNumber>{escape(normalize_model(self.model))}</modelNumber>\n</DeviceInformation>\n")

    @contextmanager
    def web_page(self, host: str):
        """The phone's own web server on host:web_port for the duration of the block; yields the bound port.

        One request at a time, each bounded by WEB_TIMEOUT_S, so a stuck poller cannot hold the phone."""
        handler = type("Handler", (_DeviceInfo,), {"phone": self})
        server = HTTPServer((host, self.web_port or 0), handler, bind_and_activate=False)
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:           # a phone without its page still boots
            server.server_close()
            self.log.append(("web page", f"not served: {exc}"))
            yield None
            return
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  name=f"web-{self.mac}", daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            server.server_close()
            thread.join(WEB_TIMEOUT_S + 1)

    @property
    def sep(self) -> str:
        return "SEP" + self.mac.replace(":", "").upper()

    @property
    def is_7940(self) -> bool:
        return any(d in self.model for d in ("7940", "7960"))

    def vendor_class(self) -> str:
        """Old 7940/60 images send no model in option 60 (reference §1.3)."""
        from appliance.firmware.models import normalize_model
        from .rules import version_key
        if self.is_7940 and (version_key(self.current or "") or (0,)) < (8, 0, 0):
            return "Cisco Systems, Inc. IP Phone\x00"
        return f"Cisco Systems, Inc. IP Phone {normalize_model(self.model)}\x00"

    def boot(self, server: str, port: int) -> list[tuple[str, str | None]]:
        """One boot: config for the family, then the load it names (unless already on it) and its components."""
        get = lambda name: tftp_get(server, port, name, source=self.ip)  # noqa: E731
        if self.is_7940:
            body, err = get("OS79XX.TXT")
            self.log.append(("OS79XX.TXT", err))
            load = (body or b"").decode("ascii", "replace").strip() or None
        else:
            for name in ("CTL" + self.sep + ".tlv", "ITL" + self.sep + ".tlv", "ITLFile.tlv"):
                self.log.append((name, get(name)[1]))
            if self.trust_list:
                self.log.append((self.sep + ".cnf.xml.sgn", get(self.sep + ".cnf.xml.sgn")[1]))
                self.log.append(("unsigned config refused", "trust list"))
                return self.log
            cnf, err = get(self.sep + ".cnf.xml")
            self.log.append((self.sep + ".cnf.xml", err))
            m = re.search(rb"<loadInformation[^>]*>([^<]+)<", cnf or b"")
            load = m.group(1).decode().strip() if m else None
        if not load or load == self.current:
            return self.log
        body, err = get(load + ".loads")
        self.log.append((load + ".loads", err))
        if body is None:
            return self.log
        if self._rejects(load):
            self.log.append(("rejected", "Auth Fail"))
            return self.log
        comps = [c.decode() for c in re.findall(rb"[\w.-]+\.(?:sbn|sb2|bin|zz|tlv)", body)]
        results = [(c, get(c)[1]) for c in comps]
        self.log += results
        if comps and all(e is None for _, e in results):
            self.current = load
            self.log.append(("installed", load))
        return self.log

    def run(self, interface: str | None, port: int = 69, max_boots: int = 6, deadline: float = 120.0,
            reboot_s: float = 3.0) -> dict:
        """DHCP + boot until the phone settles (no new load), gives up, or `deadline` seconds pass.

        A real phone spends a minute or more flashing and rebooting; `reboot_s` keeps a little of that
        so the station sees the load finish before the phone asks again; a phone also takes a few
        seconds between its lease and its first TFTP request (network init), kept here up to 2 s."""
        from .simdhcp import acquire, configure
        end, boots = time.monotonic() + deadline, 0
        while boots < max_boots and time.monotonic() < end:
            if boots:
                time.sleep(min(reboot_s, max(0.0, end - time.monotonic())))
            boots += 1
            lease = acquire(self.mac.replace(":", ""), self.vendor_class(), self.sep, interface,
                            timeout=max(1.0, min(15.0, end - time.monotonic())))
            if not lease:
                self.log.append(("dhcp", "no lease"))
                return self.summary(boots, "no lease")
            self.log.append(("dhcp", f"{lease['ip']} tftp {lease['tftp']}"))
            if interface:
                configure(interface, lease["ip"], lease["mask"], self.ip)
            self.ip = lease["ip"]
            before = self.current
            with ExitStack() as up:        # the web page is up while the phone runs, down while it reboots
                if self.web_port is not None:
                    up.enter_context(self.web_page(self.ip))
                time.sleep(min(reboot_s, 2.0))
                self.boot(lease["tftp"], port)
            if (self.trust_list and boots < 2) or self.log[-1] == ("rejected", "Auth Fail") and boots < 3:
                continue
            if self.current == before:
                return self.summary(boots, "settled")
        return self.summary(boots, "gave up")

    def summary(self, boots: int, how: str) -> dict:
        return {"mac": self.mac, "model": self.model, "load": self.current, "boots": boots, "end": how,
                "log": [f"{n}:{e or 'ok'}" for n, e in self.log]}

    def _rejects(self, load: str) -> bool:
        """Signing rules: a phone below a rule's floor refuses loads past the rule's gate."""
        from appliance.firmware.versions import protocol
        from .rules import builtin_rules, version_key
        cur, new = version_key(self.current or ""), version_key(load)
        if cur is None or new is None:
            return False
        return any(r.applies(self.model, cur, new, protocol(load)) for r in builtin_rules())


def run_many(server: str, port: int, macs: list[str], workers: int = 16) -> list[list]:
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(macs)))) as ex:
        return list(ex.map(lambda m: SimPhone(m).boot(server, port), macs))


def run_fleet(phones: list[SimPhone], interface: str | None, port: int = 69, deadline: float = 120.0,
              workers: int = 64, reboot_s: float = 3.0) -> list[dict]:
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(phones)))) as ex:
        return list(ex.map(lambda p: p.run(interface, port, deadline=deadline, reboot_s=reboot_s), phones))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="emulate Cisco phones (DHCP + TFTP boot, real sockets)")
    p.add_argument("--server", help="TFTP server only, no DHCP (one boot)")
    p.add_argument("--interface", help="do DHCP on this interface (run inside a test namespace)")
    p.add_argument("--port", type=int, default=69)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--model", default="7965")
    p.add_argument("--load", default=None, help="the phone's current load ID")
    p.add_argument("--trust-list", action="store_true", help="phone holds another cluster's trust list")
    p.add_argument("--first-mac", type=lambda t: int(t.replace(":", ""), 16), default=0x001E7A000000)
    p.add_argument("--deadline", type=float, default=120.0)
    p.add_argument("--reboot-seconds", type=float, default=3.0)
    p.add_argument("--web-port", type=int, default=None,
                   help="serve DeviceInformationX on each phone's address at this port while it runs")
    p.set_defaults(func=_cmd, needs_config=False)


def _cmd(args) -> int:
    n = max(1, min(args.count, 500))
    macs = [f"{args.first_mac + i + 1:012x}" for i in range(n)]
    phones = [SimPhone(m, args.model, args.load, args.trust_list, web_port=args.web_port) for m in macs]
    if args.interface:
        for r in run_fleet(phones, args.interface, args.port, args.deadline, reboot_s=args.reboot_seconds):
            print(json.dumps(r), flush=True)
        return 0
    if not args.server:
        print("simulate: give --interface (DHCP) or --server (TFTP only)")
        return 2
    for p in phones:
        p.boot(args.server, args.port)
        print(json.dumps(p.summary(1, "one boot")), flush=True)
    return 0
