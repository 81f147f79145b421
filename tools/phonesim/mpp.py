"""An MPP (multiplatform, 3PCC) phone as a pure state machine, and a 7800/8800 that converts between firmwares.

MppMachine (phone-families.md §3.4): DHCP, then its profile (`<PSN>.xml`, then `/Cisco/<PN>/<mac>.cfg`, over
tftp, http, https: provisioning.py), HTTP requests carrying `Cisco-<PN>/<version> (<mac>)`; the profile's
`<Upgrade_Rule>` names a `.loads` (flatprofile.py) which it fetches from that URL, checks as the 7800 model
checks a 5th-generation load (container5.py, manifest5.py: its own platform's files, their sizes), installs,
reboots and asks its profile again.  It is done when the Upgrade_Rule names the load it runs.  HTTPS: the
model has no TLS with the station: every https request is recorded as tried and failed, then the next one
is made (whether a phone verifies the station's certificate is UNCONFIRMED, §8 item 12).

Conversion (§3.1-§3.5, mpp_truth.py):
- Enterprise -> MPP: an Enterprise 7800/8800 (machine.PhoneMachine) whose config names a transition load
  (`sip78xx.TLexE2M-11-2-3C-12`) installs it like any load and boots into MPP provisioning; from 14.0(1) one
  whose config names an MPP load goes into MPP provisioning without it (`direct`: PROFILE_FIRST, the default,
  takes the MPP load from the profile's Upgrade_Rule; LOAD_FIRST fetches the MPP load the config names over
  the Enterprise path first and keeps it until the licence came.  Which is right is UNCONFIRMED: Cisco only
  says the load server and load name are set, then Transition Authorization Rule/Type "on the MPP phone").
  There it installs the MPP load only after the licence its `<Trans_Auth_Rule>` names passed
  mpp_truth.licence_verdict; without one it stays where it is and shows so.
- MPP -> Enterprise: from MPP 11.3(5), licence as above unless it was converted with Trans_Auth_Type
  Classic or WxC [F7]; then it is an Enterprise phone again (machine.PhoneMachine).
MppPhone holds whichever of the two the firmware in flash makes it and swaps them at the reboot.
"""
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import container5, floors, machine, manifest5, mpp_truth
from .events import HTTP, HTTPS, TFTP, AskLease, Event, Fetch, Fetched, FetchFailed, Leased, NoLease, PowerOn, Sleep, TimerFired
from .flatprofile import Profile, ProfileError, RuleError, Url, macros, rule_url
from .flatprofile import parse as parse_profile
from .loadid import LoadId
from .models import FAMILY_MODELS
from .mpp_load import DOTTED, ENTERPRISE, MPP, TRANSITION, UA_VERSIONS, Firmware, place
from .mpp_truth import MppModel
from .provisioning import FILE_FIRST, OPTION_ORDER, ORDERS, profile_requests, servers, user_agent, vendor_class
from .truth import CHECKSUM_ERROR, LOAD_ID_INCORRECT, OK, VERSION_ERROR, Verdict, hwcompat_verdict

PROFILE_FIRST, LOAD_FIRST = "profile-first", "load-first"
DIRECT_READINGS = (PROFILE_FIRST, LOAD_FIRST)
NO_TLS = "https: the model does no TLS with the station (UNCONFIRMED whether a phone would)"


class State(enum.Enum):
    OFF = "off"
    DHCP = "dhcp"
    FETCH = "fetch"
    WAIT = "wait"


class Wake(enum.Enum):
    LEASE = "retry DHCP"
    REBOOT = "reboot"
    PROFILE = "ask for the profile again"     # after a refusal, a missing profile, or settled (resync)


class Role(enum.Enum):
    PROFILE = "profile"
    LICENCE = "licence"
    MANIFEST = "manifest"
    COMPONENT = "component"


@dataclass(frozen=True)
class MppSpec:
    """An MPP-capable phone as it powers on.  `start` is the load in flash (MPP, transition or Enterprise).

    Readings where the evidence is open: `option_order` (DHCP options, provisioning.py), `order` (FILE_FIRST or
    PROTOCOL_FIRST), `ua_version` (mpp_load.UA_VERSIONS), `licence_check` (mpp_truth.LICENCE_CHECKS),
    `tftp_slash` (the TFTP name keeps the URL's leading '/'), `device_wrapper` (a <device> around the
    <flat-profile> is read), `raw_components` (components not in a container: raw SquashFS per [F3], low
    authority), `direct` (DIRECT_READINGS), `v24_bound` (7821 above V24 not eligible).  `trans_auth_type` is
    what an earlier conversion set (Classic/WxC: back to Enterprise without a licence, [F7])."""
    model: MppModel
    mac: str                                   # 12 upper-case hex digits
    start: Firmware
    vid: str | None = None
    platform: int = 1
    option_order: tuple[int, ...] = OPTION_ORDER
    order: str = FILE_FIRST
    ua_version: str = DOTTED
    licence_check: str = mpp_truth.LICENCE_NAME
    tftp_slash: bool = True
    device_wrapper: bool = True
    raw_components: bool = False
    direct: str = PROFILE_FIRST
    v24_bound: bool = False
    v20_floor: str = floors.V20_RN
    hardware_bit: int | None = None
    trans_auth_type: str | None = None
    retry_s: float = 5.0
    reboot_s: float = 3.0
    register_s: float = 30.0
    dhcp_retry_s: float = 4.0

    def __post_init__(self):
        m, s = self.model, self.start
        if s.kind == ENTERPRISE and m.enterprise is None:
            raise ValueError(f"the {m.name} runs MPP firmware only: it cannot start on {s.text}")
        if s.family not in m.families:
            raise ValueError(f"{s.text} is not a load for the {m.name}")
        if not 1 <= self.platform <= len(m.platforms):
            raise ValueError(f"the {m.name} has platforms 1 to {len(m.platforms)}, not {self.platform}")
        if self.vid is not None:
            floors.vid_number(self.vid)
        checks = ((self.order, ORDERS, "profile request order"), (self.ua_version, UA_VERSIONS, "User-Agent version"),
                  (self.licence_check, mpp_truth.LICENCE_CHECKS, "licence check"),
                  (self.direct, DIRECT_READINGS, "direct migration reading"))
        for value, allowed, what in checks:
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, not {value!r}")
        if s.kind == MPP and (v := mpp_truth.mpp_floor(m, self.vid)) and s.key < mpp_truth.V15_MPP_FLOOR:
            raise ValueError(f"a {m.name} {self.vid} cannot run {s.text}: {v.why}")
        if not self.option_order or any(c not in (66, 150, 159, 160) for c in self.option_order):
            raise ValueError(f"DHCP option order {self.option_order!r}: only 66, 150, 159, 160 are read")


@dataclass
class MppFlash:
    """What survives a reboot."""
    running: Firmware
    components: tuple[str, ...] = ()
    migrating: bool = False                 # an Enterprise load that asked for MPP (direct path)
    staged: Firmware | None = None          # LOAD_FIRST: fetched, waiting for the licence
    trans_auth_type: str | None = None
    web: bool = False                       # no DeviceInformationX on MPP firmware (its pages differ)


@dataclass(frozen=True)
class Step:
    role: Role
    scheme: str
    host: str
    port: int
    path: str                               # URL path, '/'-rooted


@dataclass
class Boot:
    ip: str | None = None
    bases: list = field(default_factory=list)
    queue: deque = field(default_factory=deque)
    current: Step | None = None
    profile: Profile | None = None
    target: Firmware | None = None
    rule: Url | None = None
    listed: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


class MppMachine:
    """The MPP phone; events in, actions out (events.py), no clock, no I/O."""

    def __init__(self, spec: MppSpec, flash: MppFlash | None = None):
        self.spec = spec
        self.flash = flash or MppFlash(spec.start, trans_auth_type=spec.trans_auth_type)
        self.state: State = State.OFF
        self.wake: Wake | None = None
        self.boot = Boot()
        self.boots = 0
        self.settled = False
        self.attempts = 0
        self.fetches: list[dict] = []
        self.screens: list[tuple[float, str]] = []
        self.installed: list[str] = []
        self.refused: list[dict] = []
        self.notes: list[str] = []
        self.handoff: LoadId | None = None      # set at the install of an Enterprise load (MppPhone swaps)
        self.macros = macros(spec.mac, spec.model.pn, spec.model.psn)

    # --- what the outside sees ------------------------------------------------------------------

    @property
    def user_agent(self) -> str:
        return user_agent(self.spec.model.pn, self.flash.running.ua_version(self.spec.ua_version), self.spec.mac)

    @property
    def vendor_class(self) -> str:
        return vendor_class(self.spec.model.pn)

    @property
    def web_serving(self) -> bool:
        return False

    def device_information(self) -> str | None:
        return None

    def summary(self) -> dict:
        f = self.flash
        return {"mac": self.spec.mac, "model": self.spec.model.name, "start": self.spec.start.text,
                "load": f.running.text, "firmware": f.running.kind, "migrating": f.migrating,
                "staged": f.staged.text if f.staged else None, "trans_auth_type": f.trans_auth_type,
                "user_agent": self.user_agent, "boots": self.boots, "settled": self.settled,
                "installed": list(self.installed), "refused": list(self.refused),
                "screens": [s for _, s in self.screens], "vid": self.spec.vid, "platform": self.spec.platform,
                "fetched": list(self.fetches)}

    # --- the table ------------------------------------------------------------------------------

    def handle(self, event: Event) -> list:
        handler = _TABLE.get((self.state, type(event)))
        if handler is None:
            self.notes.append(f"{event.now:.1f} ignored {type(event).__name__} in {self.state.value}")
            return []
        return handler(self, event)

    def resume_after_reboot(self) -> None:
        """Taken over from the other firmware mid-reboot: wake as a reboot."""
        self.state, self.wake = State.WAIT, Wake.REBOOT

    def _power_on(self, ev: PowerOn) -> list:
        self.boots = 1
        return self._ask_lease(ev.now)

    def _ask_lease(self, now: float) -> list:
        self.state, self.wake = State.DHCP, None
        self.boot = Boot()
        # option 12: an MPP phone's host name is not in the reference; SEP<MAC> as the Enterprise firmware (UNCONFIRMED)
        return [AskLease(self.vendor_class, "SEP" + self.spec.mac)]

    def _leased(self, ev: Leased) -> list:
        bases = servers(ev.options or {}, self.spec.option_order, ev.tftp)
        self.boot = Boot(ip=ev.ip, bases=bases)
        if not bases:
            self._screen(ev.now, mpp_truth.PROFILE_NOT_FOUND)
            self.notes.append(f"{ev.now:.1f} the lease names no provisioning server (66, 160, 159, 150)")
            return self._sleep(ev.now, self.spec.dhcp_retry_s, Wake.LEASE)
        return self._profile_round(ev.now)

    def _no_lease(self, ev: NoLease) -> list:
        self._screen(ev.now, "DHCP timeout")
        return self._sleep(ev.now, self.spec.dhcp_retry_s, Wake.LEASE)

    def _fetched(self, ev: Fetched) -> list:
        step = self.boot.current
        if step is None or ev.name != self._asked(step) or ev.via != step.scheme:
            self.notes.append(f"{ev.now:.1f} ignored a reply for {ev.name!r}")
            return []
        self._record(ev.now, step, True, None, len(ev.data))
        return _ON_FILE[step.role](self, ev.now, step, ev.data)

    def _failed(self, ev: FetchFailed) -> list:
        step = self.boot.current
        if step is None or ev.name != self._asked(step) or ev.via != step.scheme:
            self.notes.append(f"{ev.now:.1f} ignored a failure for {ev.name!r}")
            return []
        self._record(ev.now, step, False, ev.error, 0)
        return self._step_failed(ev.now, step, ev.error)

    def _woke(self, ev: TimerFired) -> list:
        if self.wake == Wake.REBOOT:
            self.boots += 1
            return self._ask_lease(ev.now)
        if self.wake == Wake.LEASE:
            return self._ask_lease(ev.now)
        return self._profile_round(ev.now)

    # --- requests -------------------------------------------------------------------------------

    def _asked(self, step: Step) -> str:
        if step.scheme == TFTP and not self.spec.tftp_slash:
            return step.path.lstrip("/")
        return step.path

    def _profile_round(self, now: float) -> list:
        self.attempts += 1
        asks = profile_requests(self.boot.bases, self.spec.model.psn, self.spec.model.pn, self.spec.mac,
                                self.spec.order)
        self.boot.queue = deque(Step(Role.PROFILE, a.scheme, a.host, a.port, a.path) for a in asks)
        self.boot.profile = None
        return self._next(now)

    def _url_step(self, role: Role, url: Url) -> Step:
        return Step(role, url.scheme, url.host, url.port, url.path)

    def _next(self, now: float) -> list:
        b = self.boot
        while b.queue:
            step = b.queue.popleft()
            if step.scheme == HTTPS:
                self._record(now, step, False, NO_TLS, 0)
                if step.role == Role.PROFILE:
                    continue
                return self._step_failed(now, step, NO_TLS)
            b.current = step
            self.state = State.FETCH
            ua = self.user_agent if step.scheme == HTTP else None
            return [Fetch(self._asked(step), step.scheme, step.host, step.port, ua)]
        b.current = None
        self._screen(now, mpp_truth.PROFILE_NOT_FOUND)
        return self._sleep(now, self.spec.retry_s, Wake.PROFILE)

    def _step_failed(self, now: float, step: Step, error: str) -> list:
        if step.role == Role.PROFILE:
            return self._next(now)
        target = self.boot.target.text if self.boot.target else step.path
        if step.role == Role.LICENCE:
            return self._refuse(now, target, mpp_truth.LICENCE_MISSING,
                                f"no licence at {step.scheme}://{step.host}:{step.port}{step.path} ({error})")
        if step.role == Role.MANIFEST:
            return self._refuse(now, target, mpp_truth.UPGRADE_FAILED, f"{step.path} not fetched ({error})")
        return self._refuse(now, target, f"File not found {step.path.rsplit('/', 1)[-1]}", error)

    # --- what each file means -------------------------------------------------------------------

    def _profile(self, now: float, step: Step, data: bytes) -> list:
        try:
            prof = parse_profile(data, device_wrapper=self.spec.device_wrapper)
        except ProfileError as exc:
            return self._refuse(now, step.path, mpp_truth.PROFILE_INVALID, str(exc))
        self.boot.profile = prof
        self.boot.queue.clear()
        rule = prof.get("Upgrade_Rule")
        f = self.flash
        if rule is None:
            return self._settle(now)
        try:
            url = rule_url(rule, self.macros, ".loads")
        except RuleError as exc:
            return self._refuse(now, rule[:80], mpp_truth.UPGRADE_FAILED, f"Upgrade_Rule: {exc}")
        target = place(url.file)
        if target is None:
            return self._refuse(now, url.file, LOAD_ID_INCORRECT, "names no load the phone can place")
        if target.text.lower() == f.running.text.lower() and not f.migrating:
            return self._settle(now)
        verdict, licence = mpp_truth.take(self.spec.model, f.running, target, vid=self.spec.vid,
                                          migrating=f.migrating, trans_auth_type=f.trans_auth_type,
                                          v20_floor=self.spec.v20_floor)
        if not verdict.accepted:
            return self._refuse(now, target.text, verdict.screen or LOAD_ID_INCORRECT, verdict.why)
        self.settled = False
        self.boot.target, self.boot.rule = target, url
        if licence:
            lic = prof.get("Trans_Auth_Rule")
            if lic is None:
                return self._refuse(now, target.text, mpp_truth.LICENCE_MISSING, "the profile names no Trans_Auth_Rule")
            try:
                lic_url = rule_url(lic, self.macros)
            except RuleError as exc:
                return self._refuse(now, target.text, mpp_truth.LICENCE_MISSING, f"Trans_Auth_Rule: {exc}")
            self.boot.queue.append(self._url_step(Role.LICENCE, lic_url))
            return self._next(now)
        return self._fetch_load(now)

    def _fetch_load(self, now: float) -> list:
        b, f = self.boot, self.flash
        assert b.target is not None and b.rule is not None
        if f.staged is not None and f.staged.text.lower() == b.target.text.lower():
            return self._install(now, f.staged, f.components)        # LOAD_FIRST: fetched before the licence
        b.queue.append(self._url_step(Role.MANIFEST, b.rule))
        return self._next(now)

    def _licence(self, now: float, step: Step, data: bytes) -> list:
        assert self.boot.target is not None
        v = mpp_truth.licence_verdict(data, step.path, self.spec.mac, self.spec.licence_check)
        if not v.accepted:
            return self._refuse(now, self.boot.target.text, v.screen or mpp_truth.LICENCE_INVALID, v.why)
        return self._fetch_load(now)

    def _manifest(self, now: float, step: Step, data: bytes) -> list:
        b = self.boot
        target = b.target
        assert target is not None and b.rule is not None
        box, bad = container5.verify(b.rule.file, data)
        if box is None:
            screen = CHECKSUM_ERROR if bad is not None and bad.checksum else mpp_truth.UPGRADE_FAILED
            return self._refuse(now, target.text, screen, str(bad))
        try:
            man = manifest5.parse(box.payload)
        except manifest5.ManifestError as exc:
            return self._refuse(now, target.text, LOAD_ID_INCORRECT, f"manifest unreadable: {exc}")
        if man.version.lower() != target.version.lower():
            return self._refuse(now, target.text, VERSION_ERROR,
                                f"the manifest is version {man.version[:40]!r}, not {target.text}")
        v = hwcompat_verdict(self.spec.hardware_bit, man.hwcompat)
        if not v.accepted:
            return self._refuse(now, target.text, v.screen or LOAD_ID_INCORRECT, v.why)
        mine = man.platforms.get(self.spec.platform)
        if not mine:
            return self._refuse(now, target.text, LOAD_ID_INCORRECT,
                                f"the manifest lists no files for [PLATFORM_{self.spec.platform}]")
        b.listed, b.sizes = [x.name for x in mine], {}
        for x in mine:
            comp = self._url_step(Role.COMPONENT, b.rule.sibling(x.name))
            b.sizes[comp.path] = x.size
            b.queue.append(comp)
        self._screen(now, "Upgrading")
        return self._next(now)

    def _component(self, now: float, step: Step, data: bytes) -> list:
        b = self.boot
        assert b.target is not None
        name = step.path.rsplit("/", 1)[-1]
        if not self.spec.raw_components:
            _, bad = container5.verify(name, data)
            if bad is not None:
                return self._refuse(now, b.target.text, CHECKSUM_ERROR if bad.checksum else mpp_truth.UPGRADE_FAILED,
                                    str(bad))
        want = b.sizes.get(step.path)
        if want is not None and want != len(data):
            return self._refuse(now, b.target.text, CHECKSUM_ERROR, f"{name}: {len(data)} bytes, the manifest lists {want}")
        if b.queue:
            return self._next(now)
        return self._install(now, b.target, tuple(b.listed))

    def _install(self, now: float, load: Firmware, components: tuple[str, ...]) -> list:
        f = self.flash
        converting = load.kind != f.running.kind or f.migrating
        if converting and load.kind == MPP and self.boot.profile is not None:
            f.trans_auth_type = self.boot.profile.get("Trans_Auth_Type")
        f.running, f.components, f.migrating, f.staged = load, components, False, None
        self.installed.append(load.text)
        self.attempts = 0
        if load.kind == ENTERPRISE:
            self.handoff = load.enterprise
        return self._reboot(now)

    # --- ends -----------------------------------------------------------------------------------

    def _settle(self, now: float) -> list:
        self.settled = True
        return self._sleep(now, self.spec.register_s, Wake.PROFILE)

    def _refuse(self, now: float, load: str, screen: str, why: str) -> list:
        """Refused: nothing installed, the load in flash kept, the profile asked again `retry_s` later."""
        self.settled = False
        self.refused.append({"t": round(now, 3), "load": load, "screen": screen, "why": why})
        self._screen(now, screen)
        return self._sleep(now, self.spec.retry_s, Wake.PROFILE)

    def _sleep(self, now: float, delay: float, wake: Wake) -> list:
        self.state, self.wake = State.WAIT, wake
        self.boot.current = None
        return [Sleep(now + delay, wake.value)]

    def _reboot(self, now: float) -> list:
        self.settled = False
        return self._sleep(now, self.spec.reboot_s, Wake.REBOOT)

    def _screen(self, now: float, text: str) -> None:
        self.screens.append((round(now, 3), text))

    def _record(self, now: float, step: Step, ok: bool, error: str | None, size: int) -> None:
        self.fetches.append({"t": round(now, 3), "name": self._asked(step), "via": step.scheme, "server": step.host,
                             "port": step.port, "ok": ok, "error": error, "bytes": size, "role": step.role.value,
                             "user_agent": self.user_agent if step.scheme != TFTP else None})


_TABLE: dict[tuple[State, type], Callable[..., list]] = {
    (State.OFF, PowerOn): MppMachine._power_on,
    (State.DHCP, Leased): MppMachine._leased,
    (State.DHCP, NoLease): MppMachine._no_lease,
    (State.FETCH, Fetched): MppMachine._fetched,
    (State.FETCH, FetchFailed): MppMachine._failed,
    (State.WAIT, TimerFired): MppMachine._woke,
}
_ON_FILE: dict[Role, Callable[..., list]] = {
    Role.PROFILE: MppMachine._profile,
    Role.LICENCE: MppMachine._licence,
    Role.MANIFEST: MppMachine._manifest,
    Role.COMPONENT: MppMachine._component,
}


# --- the Enterprise side of a conversion -------------------------------------------------------------------

class ConvertingEnterprise(machine.PhoneMachine):
    """The 7800/8800 Enterprise model (machine.PhoneMachine), plus what it does when its config names a
    transition or MPP load (mpp_truth.enterprise_to_mpp).  `handoff` is an MppFlash once it boots as MPP."""

    def __init__(self, spec: machine.PhoneSpec, mpp: MppSpec):
        super().__init__(spec)
        self.mpp = mpp
        self.handoff: MppFlash | None = None

    def _decide(self, now: float, named: str | None) -> list:
        fw = place(named) if named else None
        if fw is None or fw.kind == ENTERPRISE:
            return super()._decide(now, named)
        self.attempts += 1
        self.settled = False
        running = self.flash.running
        assert running is not None
        if fw.family not in self.spec.model.load_families:
            return self._refuse(now, fw.text, LOAD_ID_INCORRECT, f"{fw.text} is not a load for the {self.spec.model.name}",
                                machine.Wake.CONFIG)
        v = mpp_truth.enterprise_to_mpp(self.spec.model.name, self.spec.vid, running.key, fw, self.mpp.v24_bound)
        if not v.accepted:
            return self._refuse(now, fw.text, v.screen or mpp_truth.NOT_ELIGIBLE, v.why, machine.Wake.CONFIG)
        if fw.kind == MPP and self.mpp.direct == PROFILE_FIRST:
            self.handoff = MppFlash(_as_firmware(running), self.flash.components, migrating=True)
            return self._reboot(now)
        self.boot.offered_text = fw.text
        self.boot.queue.clear()
        self.boot.queue.append(self._step(f"{fw.text}.loads", machine.Role.MANIFEST))
        return self._next()

    def _place(self, text: str | None) -> LoadId | None:
        fw = place(text)
        if fw is not None and fw.kind != ENTERPRISE:
            return fw.enterprise
        return super()._place(text)

    def _verdict(self, offered: LoadId) -> Verdict:
        fw = place(offered.text)
        if fw is not None and fw.kind != ENTERPRISE:
            return OK                          # checked in _decide (eligibility, release, V15)
        return super()._verdict(offered)

    def _install(self, now: float, load: LoadId, components: tuple[str, ...]) -> list:
        fw = place(load.text)
        if fw is None or fw.kind == ENTERPRISE:
            return super()._install(now, load, components)
        running = self.flash.running
        assert running is not None
        self.attempts = 0
        if fw.kind == TRANSITION:
            self.installed.append(fw.text)
            self.handoff = MppFlash(fw, components)
        else:                                   # LOAD_FIRST: kept until the licence came
            self.handoff = MppFlash(_as_firmware(running), components, migrating=True, staged=fw)
        return self._reboot(now)


def _as_firmware(load: LoadId) -> Firmware:
    return Firmware(load.text, ENTERPRISE, load.family, load.key)


def enterprise_spec(spec: MppSpec, start: LoadId, **kw) -> machine.PhoneSpec:
    """The machine.PhoneSpec of this unit as an Enterprise phone (same MAC, VID, platform, timings)."""
    assert spec.model.enterprise is not None
    return machine.PhoneSpec(FAMILY_MODELS[spec.model.enterprise], spec.mac, start, vid=spec.vid,
                             platform=spec.platform, v20_floor=spec.v20_floor, hardware_bit=spec.hardware_bit,
                             retry_s=spec.retry_s, reboot_s=spec.reboot_s, register_s=spec.register_s,
                             dhcp_retry_s=spec.dhcp_retry_s, **kw)


_SHARED = ("fetches", "screens", "installed", "refused", "notes", "boots")


class MppPhone:
    """One 7800/8800/6800 unit whichever firmware it runs: the Enterprise model or the MPP model, swapped at
    the reboot after a conversion.  Everything else (handle, settled, attempts, summary, ...) is the
    current one's; `firmware` says which."""

    def __init__(self, spec: MppSpec, **enterprise_kw):
        self.spec, self._kw = spec, enterprise_kw
        if spec.start.kind == ENTERPRISE:
            self.inner: MppMachine | ConvertingEnterprise = ConvertingEnterprise(
                enterprise_spec(spec, spec.start.enterprise, **enterprise_kw), spec)
        else:
            self.inner = MppMachine(spec)

    @property
    def firmware(self) -> str:
        if isinstance(self.inner, ConvertingEnterprise):
            return ENTERPRISE
        return self.inner.flash.running.kind          # an Enterprise load in migration mode stays "enterprise"

    def handle(self, event: Event) -> list:
        actions = self.inner.handle(event)
        if self.inner.handoff is not None:
            self._swap()
        return actions

    def _swap(self) -> None:
        old = self.inner
        if isinstance(old, ConvertingEnterprise):
            assert old.handoff is not None
            new: MppMachine | ConvertingEnterprise = MppMachine(self.spec, old.handoff)
        else:
            assert old.handoff is not None
            new = ConvertingEnterprise(enterprise_spec(self.spec, old.handoff, **self._kw), self.spec)
            new.flash.components = old.flash.components
        for name in _SHARED:
            setattr(new, name, getattr(old, name))
        if isinstance(new, MppMachine):
            new.resume_after_reboot()
        else:
            new.state, new.wake = machine.State.WAIT, machine.Wake.REBOOT
        self.inner = new

    def summary(self) -> dict:
        out = self.inner.summary()
        out["firmware"] = self.firmware
        if isinstance(self.inner, ConvertingEnterprise):
            out["user_agent"] = None
        return out

    def __getattr__(self, name: str):
        if name == "inner":                     # not set yet (copy, pickle): never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)
