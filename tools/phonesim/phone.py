"""SimPhone: one model phone on real sockets, the state machine driven by a bounded loop.

The loop turns each action into I/O (DHCP on an interface, or a fixed loopback
lease; TFTP or HTTP :6970 downloads; sleeping) and the result into the next
event, starts and stops the phone's web page as the machine says, and ends when
the phone has settled (config names the load it runs), is stuck (max_attempts
config or term-file rounds with nothing installed), or time or events run out.

It also writes down, without changing anything it does, when each action began
and ended (`timeline`, seconds since power-on, see `run`): the phone's own view of
where its time went, the same whichever server it talks to (bench/fleet.py).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from . import deviceinfo, floors, net
from .dhcp import DhcpClient
from .events import HTTP, AskLease, Fetch, Fetched, FetchFailed, Leased, NoLease, PowerOn, Sleep, TimerFired, TrustListErased
from .loadid import parse_load
from .machine import PhoneMachine, PhoneSpec
from .models import TNP
from .models import model as find_model
from .web import WebServer

SLICE_S = 0.05      # how often a sleeping phone looks at its inbox (e.g. a tech erasing the trust list)


def shipped_load(model_name: str) -> str:
    """The load a phone is assumed to run when none is given: 8.3(2), what 79x1/2/5 shipped with when the
    key changed (§5.1); 7.2(3) for a 7940/60 (older than the 8.1(1) gate, §5.2); for the other families a
    real load of theirs (models.py)."""
    m = find_model(model_name)
    if m.shipped:
        return m.shipped
    return f"SCCP{m.loads}.8-3-2S" if m.family == TNP else "P00307020300"


class SimPhone:
    """A Cisco phone of `model` with MAC `mac`, running `start` (for a factory-reset phone: the load it had
    before the reset).  Flags as PhoneSpec (web and http_first None: the family's default); ports are where
    it reaches the station and serves its page.

    7800/8800: `platform` (1, 2, ...: the [PLATFORM_n] it fetches), `vid` ("V20": its floor from floors.py,
    and the VID line of its page's <udi>), `v20_floor` (floors.V20_RN "14.0(1)" or V20_SR3 "14.0(1)SR3"),
    `hardware_bit` (None: hwcompat ignored; n: a manifest whose hwcompat lacks bit n is refused),
    `hardware_revision` (<hardwareRevision>).  `device_type` overrides the model's loadInformationNNN."""

    def __init__(self, mac: str, model: str = "7965", start: str | None = None, *, web: bool | None = None,
                 obey_web_access: bool = True, http_first: bool | None = None, itl: bool = False,
                 factory_reset: bool = False, capitalised: bool = False, leading_slash: bool = False,
                 hardware_floor: str | None = None, web_port: int = 80, tftp_port: int = 69,
                 http_port: int = 6970, retry_s: float = 5.0, term_retry_s: float = 10.0, reboot_s: float = 3.0,
                 register_s: float = 30.0, tftp_options: dict | None = None, platform: int = 1,
                 vid: str | None = None, v20_floor: str = floors.V20_RN, hardware_bit: int | None = None,
                 hardware_revision: str = "1.0", device_type: int | None = None):
        hexmac = mac.replace(":", "").replace("-", "").upper()
        if len(hexmac) != 12 or any(c not in "0123456789ABCDEF" for c in hexmac):
            raise ValueError(f"not a MAC: {mac!r}")
        m = find_model(model)
        load = parse_load(start or shipped_load(model))
        if load is None:
            raise ValueError(f"the simulator cannot place load {start!r}")
        floor = parse_load(hardware_floor) if hardware_floor else None
        if hardware_floor and floor is None:
            raise ValueError(f"the simulator cannot place load {hardware_floor!r}")
        self.spec = PhoneSpec(m, hexmac, load, factory_reset, itl, web, obey_web_access, http_first, capitalised,
                              leading_slash, floor, retry_s, term_retry_s, reboot_s, register_s,
                              platform=platform, vid=vid, v20_floor=v20_floor, hardware_bit=hardware_bit,
                              hardware_revision=hardware_revision, device_type=device_type)
        self.machine = PhoneMachine(self.spec)
        self.web_port, self.tftp_port, self.http_port = web_port, tftp_port, http_port
        self.tftp_options = tftp_options
        self.ip: str | None = None
        self._lock = threading.Lock()
        self._inbox: queue.Queue = queue.Queue()
        self.started_at: float | None = None        # time.monotonic() at the last run's power-on
        self.timeline: list[dict] = []
        self.web = WebServer("127.0.0.1", web_port, self.device_information)

    @property
    def mac(self) -> str:
        return self.spec.mac

    def device_information(self) -> str | None:
        """The page the phone serves now, None when it serves none (thread-safe: the web server calls it)."""
        with self._lock:
            return self.machine.device_information()

    @contextmanager
    def web_page(self, host: str = "127.0.0.1"):
        """The page of the load in flash on host:web_port without booting, for poller tests; yields the
        bound port, or None when this phone serves no page (web access off, no application)."""
        f = self.machine.flash
        if not (f.web and f.running is not None):
            yield None
            return
        page = deviceinfo.render(self.spec.model, self.mac, f.running, f.components, vid=self.spec.vid,
                                 hardware_revision=self.spec.hardware_revision)
        server = WebServer(host, self.web_port, lambda: page)
        server.start()
        try:
            yield server.port if server.running else None
        finally:
            server.stop()

    def erase_trust_list(self) -> None:
        """The tech erases the ITL on the phone; the phone takes it at its next config request."""
        self._inbox.put(TrustListErased)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, interface: str | None = None, server: str | None = None, *, deadline: float = 120.0,
            max_events: int = 5000, max_attempts: int = 12, linger_s: float = 0.0,
            dhcp_timeout: float = 15.0) -> dict:
        """Power on and run until settled (and `linger_s` more), stuck, or `deadline` seconds pass.

        interface: do DHCP there (inside a namespace the caller made).  server: no DHCP, a fixed lease on
        127.0.0.1 (or `self.ip`) naming this TFTP server: loopback tests.  Returns a JSON-able summary with
        the load the phone truly runs at the end and every file it fetched.

        Meanwhile `timeline` gets one record per action, times in seconds since this power-on
        (`started_at`, monotonic): {"kind": "dhcp", "t0": DISCOVER about to go, "t1": ACK in (or given
        up), "ok"}, {"kind": "address", "t0", "t1"} (the leased address put on the interface),
        {"kind": "fetch", "name", "via", "role", "t0": request about to go, "first": the server's first
        reply (None: none came), "t1": last byte in (or failure), "ok", "bytes"}, {"kind": "sleep",
        "why", "t0", "t1"} (a modelled pause: reboot, retry), and last {"kind": "end", "t0", "how"}."""
        if not interface and not server:
            raise ValueError("give an interface (DHCP) or a server (fixed lease)")
        start = time.monotonic()
        end = start + deadline
        clock = lambda: time.monotonic() - start  # noqa: E731   (the machine's `now`)
        self.started_at, self.timeline = start, []
        actions = self._handle(PowerOn(clock()))
        events, settled_at, how = 1, None, "deadline"
        try:
            while time.monotonic() < end:
                if not actions:
                    how = "idle"                  # the machine asked for nothing: never expected
                    break
                if events >= max_events:
                    how = "events"
                    break
                action = actions.pop(0)
                if isinstance(action, Sleep):
                    if not self.machine.settled:
                        settled_at = None
                    elif settled_at is None:
                        settled_at = clock()
                    if settled_at is not None and clock() - settled_at >= linger_s:
                        how = "settled"
                        break
                    if settled_at is None and self.machine.attempts >= max_attempts:
                        how = "stuck"
                        break
                    wake = action.until if settled_at is None else min(action.until, settled_at + linger_s)
                    slept = clock()
                    awake = self._sleep(start + wake, end, clock)
                    self.timeline.append({"kind": "sleep", "why": action.why, "t0": slept, "t1": clock()})
                    if not awake:
                        break
                    event = TimerFired(clock())
                elif isinstance(action, AskLease):
                    event = self._lease(action, interface, server, clock,
                                        min(dhcp_timeout, max(1.0, end - time.monotonic())))
                elif isinstance(action, Fetch):
                    event = self._fetch(action, clock)
                else:
                    raise TypeError(f"unknown action {action!r}")
                events += 1
                actions += self._handle(event)
        finally:
            self.web.stop()
            self.timeline.append({"kind": "end", "t0": clock(), "how": how})
        out = self.machine.summary()
        out.update(end=how, ip=self.ip, elapsed_s=round(time.monotonic() - start, 3),
                   log=[f"{f['name']}:{'ok' if f['ok'] else f['error']}" for f in out["fetched"]])
        return out

    def _handle(self, event) -> list:
        with self._lock:
            actions = self.machine.handle(event)
            serving = self.machine.web_serving
        if serving and not self.web.running and self.ip:
            self.web.start(self.ip)
        elif not serving and self.web.running:
            self.web.stop()
        return list(actions)

    def _sleep(self, until: float, end: float, clock) -> bool:
        """Sleep to `until` (monotonic), taking inbox events meanwhile; False when the deadline came first."""
        while True:
            now = time.monotonic()
            if now >= end:
                return False
            if now >= until:
                return True
            try:
                kind = self._inbox.get(timeout=min(SLICE_S, until - now, end - now))
            except queue.Empty:
                continue
            self._handle(kind(clock()))

    def _lease(self, action: AskLease, interface, server, clock, timeout: float):
        if not interface:
            self.ip = self.ip or "127.0.0.1"
            return Leased(clock(), self.ip, server)
        client = DhcpClient(bytes.fromhex(self.mac), action.vendor_class, action.hostname,
                            int.from_bytes(os.urandom(4), "big"))
        asked = clock()
        lease = net.acquire(client, interface, timeout)
        acked = clock()
        self.timeline.append({"kind": "dhcp", "t0": asked, "t1": acked, "ok": lease is not None})
        if lease is None:
            return NoLease(clock())
        net.configure(interface, lease.ip, lease.mask, self.ip)
        self.timeline.append({"kind": "address", "t0": acked, "t1": clock()})
        self.ip = lease.ip
        return Leased(clock(), lease.ip, lease.tftp)

    def _fetch(self, action: Fetch, clock):
        step = self.machine.boot.current
        marks: dict = {}
        asked = clock()
        if action.via == HTTP:
            data, err = net.http_get(action.server, self.http_port, action.name, source=self.ip, marks=marks)
        else:
            data, err = net.tftp_get(action.server, self.tftp_port, action.name, source=self.ip,
                                     options=self.tftp_options, marks=marks)
        self.timeline.append({"kind": "fetch", "name": action.name, "via": action.via,
                              "role": step.role.value if step is not None else None, "t0": asked,
                              "first": marks["first"] - self.started_at if "first" in marks else None,
                              "t1": clock(), "ok": data is not None, "bytes": len(data or b"")})
        if data is None:
            return FetchFailed(clock(), action.name, action.via, err or "failed")
        return Fetched(clock(), action.name, action.via, data)


def run_fleet(phones: list[SimPhone], interface: str | None = None, server: str | None = None, *,
              deadline: float = 120.0, workers: int = 64, **kw) -> list[dict]:
    """Run phones side by side (one thread each, at most `workers`); summaries in the phones' order."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(phones)))) as ex:
        return list(ex.map(lambda p: p.run(interface, server, deadline=deadline, **kw), phones))
