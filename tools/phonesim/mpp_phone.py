"""MppSimPhone: an MPP-capable phone (mpp.MppPhone) on real sockets, driven by SimPhone's bounded loop.

What differs from SimPhone: the lease's options reach the phone (66/160/159/150), each request goes to the
server and port its URL names over TFTP or HTTP with the phone's User-Agent, and no page is served (MPP
firmware has no DeviceInformationX).  `tftp_port`/`http_port` stand in for the protocols' own ports 69/80
(a loopback test's servers listen elsewhere): a request to port 69 or 80 goes there, any other port a URL
names is used as it is.  A host name is never
looked up (the model has no DNS): such a request fails.
"""
from __future__ import annotations

import ipaddress
import os
import queue
import threading
from contextlib import contextmanager

from . import deviceinfo, floors, net
from .dhcp import DhcpClient
from .events import HTTP, AskLease, Fetch, Fetched, FetchFailed, Leased, NoLease
from .mpp import PROFILE_FIRST, ConvertingEnterprise, MppPhone, MppSpec
from .mpp_load import DOTTED, place
from .mpp_truth import LICENCE_NAME, SHIPPED, mpp_model
from .phone import SimPhone
from .provisioning import FILE_FIRST, OPTION_ORDER, PRL
from .web import WebServer

DEFAULT_PORTS = {"tftp": 69, "http": 80}


def _ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


class MppSimPhone(SimPhone):
    """An MPP phone (or a 7800/8800 on its way to or from MPP) of `model` with MAC `mac` running `start`
    (an MPP, transition or Enterprise load; default: a real MPP load of its family, mpp_truth.SHIPPED).

    Readings (mpp.MppSpec): option_order, order, ua_version, licence_check, tftp_slash, device_wrapper,
    raw_components, direct, v24_bound, trans_auth_type.  enterprise_http_port: where the Enterprise firmware
    (before a conversion, or after going back) asks over HTTP (6970, as every 7800/8800).  lease_options: the
    DHCP options of the fixed lease a run(server=...) gets (code -> bytes; default {66: server}).  Result:
    run() as SimPhone's, its summary with `firmware` (enterprise, transition, mpp), `user_agent`, and each
    fetch's `user_agent`."""

    spec: MppSpec                 # type: ignore[assignment]
    machine: MppPhone             # type: ignore[assignment]

    def __init__(self, mac: str, model: str = "8851", start: str | None = None, *, vid: str | None = None,
                 platform: int = 1, option_order: tuple[int, ...] = OPTION_ORDER, order: str = FILE_FIRST,
                 ua_version: str = DOTTED, licence_check: str = LICENCE_NAME, tftp_slash: bool = True,
                 device_wrapper: bool = True, raw_components: bool = False, direct: str = PROFILE_FIRST,
                 v24_bound: bool = False, v20_floor: str = floors.V20_RN, hardware_bit: int | None = None,
                 trans_auth_type: str | None = None, tftp_port: int = 69, http_port: int = 80,
                 retry_s: float = 5.0, reboot_s: float = 3.0, register_s: float = 30.0,
                 lease_options: dict[int, bytes] | None = None, tftp_options: dict | None = None,
                 web_port: int = 0, enterprise_http_port: int = 6970):
        hexmac = mac.replace(":", "").replace("-", "").upper()
        if len(hexmac) != 12 or any(c not in "0123456789ABCDEF" for c in hexmac):
            raise ValueError(f"not a MAC: {mac!r}")
        m = mpp_model(model)
        text = start or SHIPPED[m.families[0]]
        fw = place(text)
        if fw is None:
            raise ValueError(f"the simulator cannot place load {text!r}")
        self.spec = MppSpec(m, hexmac, fw, vid=vid, platform=platform, option_order=tuple(option_order),
                            order=order, ua_version=ua_version, licence_check=licence_check, tftp_slash=tftp_slash,
                            device_wrapper=device_wrapper, raw_components=raw_components, direct=direct,
                            v24_bound=v24_bound, v20_floor=v20_floor, hardware_bit=hardware_bit,
                            trans_auth_type=trans_auth_type, retry_s=retry_s, reboot_s=reboot_s,
                            register_s=register_s)
        self.machine = MppPhone(self.spec)
        self.web_port, self.tftp_port, self.http_port = web_port, tftp_port, http_port
        self.enterprise_http_port = enterprise_http_port
        self.tftp_options = tftp_options
        self.lease_options = lease_options
        self.ip: str | None = None
        self._lock = threading.Lock()
        self._inbox: queue.Queue = queue.Queue()
        self.started_at: float | None = None
        self.timeline: list[dict] = []
        self.web = WebServer("127.0.0.1", web_port, self.device_information)

    def _lease(self, action: AskLease, interface, server, clock, timeout: float):
        if not interface:
            self.ip = self.ip or "127.0.0.1"
            options = self.lease_options if self.lease_options is not None else {66: server.encode("ascii")}
            return Leased(clock(), self.ip, server, dict(options))
        client = DhcpClient(bytes.fromhex(self.mac), action.vendor_class, action.hostname,
                            int.from_bytes(os.urandom(4), "big"), prl=PRL)
        asked = clock()
        lease = net.acquire(client, interface, timeout)
        acked = clock()
        self.timeline.append({"kind": "dhcp", "t0": asked, "t1": acked, "ok": lease is not None})
        if lease is None:
            return NoLease(clock())
        net.configure(interface, lease.ip, lease.mask, self.ip)
        self.timeline.append({"kind": "address", "t0": acked, "t1": clock()})
        self.ip = lease.ip
        return Leased(clock(), lease.ip, lease.tftp, lease.options)

    def _fetch(self, action: Fetch, clock):
        step = self.machine.boot.current
        marks: dict = {}
        asked = clock()
        data: bytes | None
        err: str | None
        port = action.port
        if port is None:                          # the Enterprise firmware: HTTP :6970 then TFTP (machine.py)
            port = self.enterprise_http_port if action.via == HTTP else self.tftp_port
        elif port == DEFAULT_PORTS.get(action.via):
            port = self.http_port if action.via == HTTP else self.tftp_port
        if not _ipv4(action.server):
            data, err = None, f"{action.server[:60]}: a host name (the model does no DNS)"
        elif action.via == HTTP:
            headers = {"User-Agent": action.user_agent} if action.user_agent else None
            data, err = net.http_get(action.server, port, action.name, source=self.ip, marks=marks, headers=headers)
        else:
            data, err = net.tftp_get(action.server, port, action.name, source=self.ip, options=self.tftp_options,
                                     marks=marks)
        self.timeline.append({"kind": "fetch", "name": action.name, "via": action.via,
                              "role": step.role.value if step is not None else None, "t0": asked,
                              "first": marks["first"] - self.started_at if "first" in marks else None,
                              "t1": clock(), "ok": data is not None, "bytes": len(data or b"")})
        if data is None:
            return FetchFailed(clock(), action.name, action.via, err or "failed")
        return Fetched(clock(), action.name, action.via, data)

    @contextmanager
    def web_page(self, host: str = "127.0.0.1"):
        """As SimPhone.web_page: the page of the load in flash, yielding its port; None on MPP firmware (no
        DeviceInformationX there) and whenever the Enterprise phone serves none."""
        inner = self.machine.inner
        running = inner.flash.running if isinstance(inner, ConvertingEnterprise) else None
        if not isinstance(inner, ConvertingEnterprise) or running is None or not inner.flash.web:
            yield None
            return
        page = deviceinfo.render(inner.spec.model, self.mac, running, inner.flash.components, vid=self.spec.vid,
                                 hardware_revision=inner.spec.hardware_revision)
        server = WebServer(host, self.web_port, lambda: page)
        server.start()
        try:
            yield server.port if server.running else None
        finally:
            server.stop()
