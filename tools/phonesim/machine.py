"""One Cisco phone as a pure state machine: events in, actions out, `now` passed in, no I/O.

The boot flow per family follows cisco-phones.md §2.2:
- 79x1/2/5 (and 7906/11/31/797x) with an application: CTLSEP<MAC>.tlv, ITLSEP<MAC>.tlv, ITLFile.tlv,
  then SEP<MAC>.cnf.xml (XMLDefault.cnf.xml if that is missing); a phone holding a trust list asks for
  SEP<MAC>.cnf.xml.sgn instead and ignores unsigned config (§6.1).
- 79x1/2/5 after a factory reset: no application, so DHCP + termNN.default.loads in a loop until a
  term file it can verify is served (§0.0 item 7; a 7906 asks twice per round).
- 7940/60: OS79XX.TXT (a load of the other protocol there converts the phone, §2.2), CTLSEP<MAC>.tlv,
  then SCCP: SEP<MAC>.cnf.xml `loadInformation` (§0.0 item 9); SIP: SEP<MAC>.cnf.xml, SIPDefault.cnf,
  SIP<MAC>.cnf `image_version`.  Flash is two-stage: <ID>.sbn, reboot, <ID>.sb2 (installed only then).
- 6921/6941/6961 and 8941/8945: the 79x1 chain (a 6921 SIP log shows CTLSEP, ITLSEP, ITLFile, SEP<MAC>.cnf.xml,
  §2.2), TLV-signed manifests listing their components (phone-families.md §4.1, §4.2); 894x HTTP first.
- 7800/8800 (phone-families.md §1.2, §2): the same config chain, HTTP :6970 first then TFTP, per file; the
  manifest and components in the 5th-generation container (container5.py: SHA-256 and signed name
  checked), the manifest an INI file (manifest5.py) from which the phone takes its own [PLATFORM_n] files
  only, each checked against its listed size.  A load under the unit's hardware floor (floors.py, by VID)
  is refused after the manifest: "remains on the preinstalled" load, nothing else fetched (§1.4).
When the config names another load: <ID>.loads, then its components, install, reboot.  A load the
phone cannot verify (truth.py) or a file whose header or signed name is wrong (signed.py) is refused
without a reboot and without a new lease: it fetched the .loads, fetches no component, keeps its load
and asks for its config again `retry_s` later (§0.0 item 5).

Transitions are data: TABLE maps (state, event type) to a handler, ON_FILE / ON_MISSING map the role
of the file just fetched to what follows, WAKE maps why the phone slept to what it does on waking.
"""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from . import container5, content, deviceinfo, floors, manifest5
from .events import (
    HTTP,
    TFTP,
    Action,
    AskLease,
    Event,
    Fetch,
    Fetched,
    FetchFailed,
    Leased,
    NoLease,
    PowerOn,
    Sleep,
    TimerFired,
    TrustListErased,
)
from .loadid import SCCP, LoadId, human, load_of_jar, parse_load
from .models import CD34, FIVEG, P79XX, Model
from .signed import verify
from .truth import CHECKSUM_ERROR, LOAD_ID_INCORRECT, VERSION_ERROR, hwcompat_verdict, screen_for, verdict

# 7940/60 loaders older than this send option 60 without a model (§1.3, [3]); the version the universal
# application loader arrived with is UNCONFIRMED, 8.0 is the choice.
P79XX_MODEL_IN_VENDOR_CLASS_FROM = human("8.0(0)")
ANOTHER_CLUSTER, STATION = "another cluster", "station"


class State(enum.Enum):
    OFF = "off"
    DHCP = "dhcp"          # waiting for a lease
    FETCH = "fetch"        # one file in flight
    WAIT = "wait"          # sleeping until a timer (see Wake)


class Wake(enum.Enum):
    LEASE = "retry DHCP"
    CONFIG = "ask for the config again"     # same lease, same load: after a refusal, or when settled
    REBOOT = "reboot"                       # web page down, then DHCP again
    TERM = "factory-reset loop"             # DHCP + term file again


class Role(enum.Enum):
    TRUST = "trust list"
    SIGNED_CONFIG = "signed config"
    CONFIG = "config"
    DEFAULT_CONFIG = "default config"
    OS79XX = "OS79XX.TXT"
    SIP_XML = "SIP phone's SEP config"
    SIP_DEFAULT = "SIPDefault.cnf"
    SIP_MAC = "SIP<MAC>.cnf"
    MANIFEST = "manifest"
    TERM = "term manifest"
    COMPONENT = "component"
    LOADER = "7940 loader"
    APP = "7940 application"


@dataclass(frozen=True)
class Step:
    name: str      # as asked (capitalised or '/'-prefixed when the phone does that)
    role: Role


@dataclass(frozen=True)
class PhoneSpec:
    """A phone as it is when it powers on.  `start` is its load; with factory_reset it is the load it
    had before the reset (its boot code still holds that load's keys, UNCONFIRMED: §0.0 item 7 only says
    a reset phone that needs the stone cannot take a 9.x term file).

    `web` and `http_first` None take the family's default (models.py: 7800/8800 web off, HTTP first).
    7800/8800 only: `platform` is the [PLATFORM_n] the unit fetches (which hardware is which is UNCONFIRMED),
    `vid` its hardware version (V04): with it the floor comes from floors.py unless `hardware_floor` is
    given; `v20_floor` picks the V20 reading (floors.V20_RN or V20_SR3); `hardware_bit` set makes the unit
    refuse a manifest whose hwcompat lacks that bit (truth.hwcompat_verdict; None: hwcompat ignored).
    `device_type` replaces the model's <loadInformationNNN> number (the 6921/6941 sources disagree)."""
    model: Model
    mac: str                               # 12 upper-case hex digits
    start: LoadId
    factory_reset: bool = False
    itl: bool = False                      # holds another cluster's ITL
    web: bool | None = None                # web access on at power-on (None: the family's default)
    obey_web_access: bool = True           # apply <webAccess> from the config it takes (§7.2)
    http_first: bool | None = None         # try HTTP :6970 before TFTP for every file (§2.1); None: family
    capitalised: bool = False              # TERM65.DEFAULT.LOADS, Jar45sccp... (§0.0 item 10)
    leading_slash: bool = False            # /SEP....cnf.xml, /jar45... (§2.1)
    hardware_floor: LoadId | None = None   # oldest load this hardware runs ("Load rejected HC")
    retry_s: float = 5.0                   # config asked again this long after a refusal
    term_retry_s: float = 10.0             # factory-reset loop period (real 7906: minutes)
    reboot_s: float = 3.0
    register_s: float = 30.0               # a settled phone asks for its config again this often
    dhcp_retry_s: float = 4.0
    platform: int = 1
    vid: str | None = None
    v20_floor: str = floors.V20_RN
    hardware_bit: int | None = None
    hardware_revision: str = "1.0"         # DeviceInformationX <hardwareRevision>; its values per VID: UNCONFIRMED
    device_type: int | None = None

    def __post_init__(self):
        m = self.model
        if m.family == P79XX and (self.itl or self.factory_reset):
            raise ValueError("the 7940/60 model has no ITL and keeps its application over a factory reset")
        if self.factory_reset and m.term is None:
            raise ValueError(f"the {m.name} has no term file: what it asks for after a factory reset is not known")
        if self.start.family not in m.load_families:
            raise ValueError(f"{self.start.text} is not a load for the {m.name}")
        object.__setattr__(self, "web", m.web if self.web is None else self.web)
        object.__setattr__(self, "http_first", m.http_first if self.http_first is None else self.http_first)
        if m.container == CD34 and not 1 <= self.platform <= len(m.platforms):
            raise ValueError(f"the {m.name} has platforms 1 to {len(m.platforms)}, not {self.platform}")
        if self.vid is not None:
            floors.vid_number(self.vid)
        if self.hardware_bit is not None and not 0 <= self.hardware_bit < 64:
            raise ValueError(f"hardware_bit {self.hardware_bit} is not a bit of a 64-bit mask")
        floor = self.floor
        if m.family == FIVEG and floor is not None and self.start.key < floor.key:
            unit = " ".join(filter(None, (m.name, self.vid)))
            raise ValueError(f"a {unit} cannot run {self.start.text}: its hardware needs {floor.text} or later")

    @property
    def floor(self) -> LoadId | None:
        """The oldest load this unit runs: `hardware_floor` if given, else its VID's row in floors.py."""
        if self.hardware_floor is not None:
            return self.hardware_floor
        if self.vid is None or self.model.family != FIVEG:
            return None
        return floors.floor(self.model.name, self.model.loads, self.vid, self.v20_floor)


@dataclass
class Flash:
    """What survives a reboot."""
    running: LoadId | None                 # the application; None after a factory reset
    knows: LoadId                          # whose signing keys the boot code holds
    components: tuple[str, ...] = ()       # as the manifest listed them
    loader: LoadId | None = None           # 7940/60 loader in flash
    pending_app: LoadId | None = None      # 7940/60: .sbn flashed, .sb2 not yet
    app_name: str | None = None            # the .sb2 to ask for
    itl: str | None = None
    web: bool = True


@dataclass
class Boot:
    """What one boot knows; dropped at the next DHCP."""
    ip: str | None = None
    server: str | None = None
    queue: deque = field(default_factory=deque)
    current: Step | None = None
    via: str = TFTP
    offered_text: str | None = None
    offered: LoadId | None = None
    listed: list[str] = field(default_factory=list)
    sip_image: str | None = None
    term_asks_left: int = 0
    trust_done: bool = False
    sizes: dict[str, int] = field(default_factory=dict)     # 5th generation: each listed file's size


class PhoneMachine:
    def __init__(self, spec: PhoneSpec):
        self.spec = spec
        running = None if spec.factory_reset else spec.start
        self.flash = Flash(running, spec.start, loader=running, itl=ANOTHER_CLUSTER if spec.itl else None,
                           web=bool(spec.web))
        self.state: State = State.OFF
        self.wake: Wake | None = None
        self.boot = Boot()
        self.boots = 0
        self.settled = False
        self.attempts = 0                 # config (or term file) requests since the last install
        self.fetches: list[dict] = []
        self.screens: list[tuple[float, str]] = []
        self.installed: list[str] = []
        self.refused: list[dict] = []
        self.notes: list[str] = []

    # --- the table ------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; returns what the phone does next (possibly nothing)."""
        if isinstance(event, TrustListErased):
            self.flash.itl = None
            self.notes.append(f"{event.now:.1f} trust list erased")
            return []
        handler = TABLE.get((self.state, type(event)))
        if handler is None:
            self.notes.append(f"{event.now:.1f} ignored {type(event).__name__} in {self.state.value}")
            return []
        return handler(self, event)

    def _power_on(self, ev: PowerOn) -> list[Action]:
        self.boots = 1
        return self._ask_lease()

    def _leased(self, ev: Leased) -> list[Action]:
        self.boot = Boot(ip=ev.ip, server=ev.tftp)
        if not ev.tftp:
            self._screen(ev.now, "TFTP timeout")          # no TFTP server in the lease (§8.1)
            return self._sleep(ev.now, self.spec.dhcp_retry_s, Wake.LEASE)
        self.boot.queue.extend(self._boot_steps())
        return self._next()

    def _no_lease(self, ev: NoLease) -> list[Action]:
        self._screen(ev.now, "DHCP timeout")
        return self._sleep(ev.now, self.spec.dhcp_retry_s, Wake.LEASE)

    def _fetched(self, ev: Fetched) -> list[Action]:
        step = self.boot.current
        if step is None or ev.name != step.name:
            self.notes.append(f"{ev.now:.1f} ignored a reply for {ev.name!r}")
            return []
        self._record(ev.now, step, ev.via, True, None, len(ev.data))
        return ON_FILE[step.role](self, ev.now, step, ev.data)

    def _failed(self, ev: FetchFailed) -> list[Action]:
        step = self.boot.current
        if step is None or ev.name != step.name:
            self.notes.append(f"{ev.now:.1f} ignored a failure for {ev.name!r}")
            return []
        self._record(ev.now, step, ev.via, False, ev.error, 0)
        if ev.via == HTTP:                 # "HTTP download error, try tftp download" (§2.1)
            self.boot.via = TFTP
            return [Fetch(step.name, TFTP, self.boot.server)]
        return ON_MISSING[step.role](self, ev.now, step, ev.error)

    def _woke(self, ev: TimerFired) -> list[Action]:
        return WAKE[self.wake](self, ev.now)

    # --- steps ----------------------------------------------------------------------------------

    def _asked(self, name: str, role: Role) -> str:
        if self.spec.capitalised and role in (Role.TERM, Role.COMPONENT, Role.LOADER):
            name = name.upper() if role == Role.TERM else name[:1].upper() + name[1:]
        return "/" + name if self.spec.leading_slash else name

    def _step(self, name: str, role: Role) -> Step:
        return Step(self._asked(name, role), role)

    @property
    def sep(self) -> str:
        return "SEP" + self.spec.mac

    def _boot_steps(self) -> list[Step]:
        model, f = self.spec.model, self.flash
        if f.pending_app is not None:
            self.boot.trust_done = True
            return [Step(f.app_name, Role.APP)]
        if f.running is None:
            self.boot.trust_done = True
            self.boot.term_asks_left = 1 if model.name == "7906" else 0     # "in pairs" (§0.0 item 7)
            return [self._step(model.term, Role.TERM)]
        if model.family == P79XX:
            return [self._step("OS79XX.TXT", Role.OS79XX), self._step(f"CTL{self.sep}.tlv", Role.TRUST)]
        return [self._step(n, Role.TRUST) for n in (f"CTL{self.sep}.tlv", f"ITL{self.sep}.tlv", "ITLFile.tlv")]

    def _config_steps(self) -> list[Step]:
        if self.spec.model.family == P79XX and self.flash.running.protocol != SCCP:
            return [self._step(f"{self.sep}.cnf.xml", Role.SIP_XML), self._step("SIPDefault.cnf", Role.SIP_DEFAULT),
                    self._step(f"SIP{self.spec.mac}.cnf", Role.SIP_MAC)]
        if self.flash.itl:
            return [self._step(f"{self.sep}.cnf.xml.sgn", Role.SIGNED_CONFIG)]
        return [self._step(f"{self.sep}.cnf.xml", Role.CONFIG)]

    def _next(self) -> list[Action]:
        b = self.boot
        if not b.queue and not b.trust_done:
            b.trust_done = True
            b.queue.extend(self._config_steps())
        b.current = b.queue.popleft()
        b.via = HTTP if self.spec.http_first else TFTP
        self.state = State.FETCH
        return [Fetch(b.current.name, b.via, b.server)]

    # --- what each file means -------------------------------------------------------------------

    def _go_on(self, now: float, step: Step, _data=None) -> list[Action]:
        return self._next()

    def _trust(self, now: float, step: Step, data: bytes) -> list[Action]:
        if data and self.flash.itl is None:       # it installs the first trust list it gets (§6.1 [27])
            self.flash.itl = STATION
            self._screen(now, "ITL installed")
        elif data:
            self._screen(now, "Trust List Update Failed")     # not signed by what it trusts (§8.3 [54])
        return self._next()

    def _signed_config(self, now: float, step: Step, data) -> list[Action]:
        """Whatever comes back, the station cannot sign for the phone's trust list: it keeps its last
        config and loops (§6.1 [28])."""
        self.attempts += 1
        self.settled = False
        self.notes.append(f"{now:.1f} {step.name}: not signed by a certificate in its trust list, config ignored")
        return self._sleep(now, self.spec.retry_s, Wake.CONFIG)

    def _config(self, now: float, step: Step, data: bytes) -> list[Action]:
        self._sip_xml_web(data)
        return self._decide(now, content.load_information(data, self.spec.device_type or self.spec.model.device_type))

    def _config_missing(self, now: float, step: Step, error: str) -> list[Action]:
        if step.role == Role.CONFIG:
            self.boot.queue.appendleft(self._step("XMLDefault.cnf.xml", Role.DEFAULT_CONFIG))
            return self._next()
        self._screen(now, "CFG file not found")
        self.attempts += 1
        return self._sleep(now, self.spec.retry_s, Wake.CONFIG)

    def _os79xx(self, now: float, step: Step, data: bytes) -> list[Action]:
        named = content.os79xx(data)
        if named and named[:4].upper() != self.flash.running.text[:4].upper():
            return self._decide(now, named)       # the universal loader converts the phone (§2.2 [21])
        return self._next()

    def _sip_xml(self, now: float, step: Step, data: bytes) -> list[Action]:
        self._sip_xml_web(data)
        return self._next()

    def _sip_xml_web(self, data: bytes) -> None:
        """<webAccess> in a config it takes turns the web server on or off (§7.2)."""
        web = content.web_access(data)
        if web is not None and self.spec.obey_web_access:
            self.flash.web = web

    def _sip_default(self, now: float, step: Step, data: bytes) -> list[Action]:
        self.boot.sip_image = content.image_version(data)
        return self._next()

    def _sip_mac(self, now: float, step: Step, data: bytes) -> list[Action]:
        return self._decide(now, content.image_version(data) or self.boot.sip_image)

    def _sip_mac_missing(self, now: float, step: Step, error: str) -> list[Action]:
        return self._decide(now, self.boot.sip_image)

    def _decide(self, now: float, named: str | None) -> list[Action]:
        self.attempts += 1
        running = self.flash.running
        if not named or named.lower() == running.text.lower():
            if not self.settled:
                self._screen(now, "Registering")
            self.settled = True
            return self._sleep(now, self.spec.register_s, Wake.CONFIG)
        self.settled = False
        self.boot.offered_text = named
        self.boot.queue.clear()
        self.boot.queue.append(self._step(f"{named}.loads", Role.MANIFEST))
        return self._next()

    def _manifest(self, now: float, step: Step, data: bytes) -> list[Action]:
        if self.spec.model.container == CD34:
            return self._take5(now, step, data)
        return self._take(now, step, data, Wake.CONFIG, lambda listed: parse_load(self.boot.offered_text))

    def _term(self, now: float, step: Step, data: bytes) -> list[Action]:
        """A term file names no load: the phone installs what it lists, known here by its jar."""
        return self._take(now, step, data, Wake.TERM,
                          lambda listed: next((load for c in listed if (load := load_of_jar(c))), None))

    def _take(self, now: float, step: Step, data: bytes, wake: Wake, identify) -> list[Action]:
        """A manifest or term file: verify header and name, then whether the running load can verify it."""
        header, bad = verify(step.name, data)
        if bad:
            return self._refuse(now, self.boot.offered_text or step.name, screen_for(self.spec.model), bad, wake)
        listed = content.manifest_components(data[header.length:])
        offered = identify(listed)
        if offered is None:
            return self._refuse(now, self.boot.offered_text or step.name, LOAD_ID_INCORRECT,
                                "names no load the phone can place", wake)
        v = verdict(self.spec.model, self.flash.knows, offered, self.spec.floor)
        if not v.accepted:
            return self._refuse(now, offered.text, v.screen, v.why, wake)
        b = self.boot
        b.offered, b.listed = offered, listed
        b.queue.clear()
        if self.spec.model.family == P79XX:
            sbn = next((c for c in listed if c.lower().endswith(".sbn")), None)
            sb2 = next((c for c in listed if c.lower().endswith(".sb2")), None)
            if not (sbn and sb2):
                return self._refuse(now, offered.text, LOAD_ID_INCORRECT, "manifest lacks the .sbn or .sb2", wake)
            self.flash.app_name = self._asked(sb2, Role.COMPONENT)
            b.queue.append(self._step(sbn, Role.LOADER))
        else:
            if not listed:
                return self._refuse(now, offered.text, LOAD_ID_INCORRECT, "manifest lists no files", wake)
            b.queue.extend(self._step(c, Role.COMPONENT) for c in listed)
        self._screen(now, "Upgrading")
        return self._next()

    def _take5(self, now: float, step: Step, data: bytes) -> list[Action]:
        """A 5th-generation manifest: container, INI, the load's version, the hardware's floor and (when the
        unit reads it) hwcompat; then its own platform's files, nothing else."""
        offered_text = self.boot.offered_text or step.name
        box, bad = container5.verify(step.name, data)
        if box is None:
            screen = CHECKSUM_ERROR if bad is not None and bad.checksum else screen_for(self.spec.model)
            return self._refuse(now, offered_text, screen, str(bad), Wake.CONFIG)
        try:
            man = manifest5.parse(box.payload)
        except manifest5.ManifestError as exc:
            return self._refuse(now, offered_text, LOAD_ID_INCORRECT, f"manifest unreadable: {exc}", Wake.CONFIG)
        offered = self._place(self.boot.offered_text)
        if offered is None or offered.family not in self.spec.model.load_families:
            return self._refuse(now, offered_text, LOAD_ID_INCORRECT, "names no load the phone can place", Wake.CONFIG)
        # The manifest says its version ([CISCO-ID] version = 11-0-1-11 in sip78xx.11-0-1-11.loads, §1.2); a
        # phone comparing it with the load it was told to take is the reading chosen here (UNCONFIRMED).
        if man.version.lower() != offered.text.split(".", 1)[1].lower():
            return self._refuse(now, offered.text, VERSION_ERROR,
                                f"the manifest is version {man.version[:40]!r}, not {offered.text}", Wake.CONFIG)
        v = self._verdict(offered)
        if v.accepted:
            v = hwcompat_verdict(self.spec.hardware_bit, man.hwcompat)
        if not v.accepted:
            return self._refuse(now, offered.text, v.screen or LOAD_ID_INCORRECT, v.why, Wake.CONFIG)
        mine = man.platforms.get(self.spec.platform)
        if not mine:
            return self._refuse(now, offered.text, LOAD_ID_INCORRECT,
                                f"the manifest lists no files for [PLATFORM_{self.spec.platform}]", Wake.CONFIG)
        b = self.boot
        b.offered, b.listed = offered, [f.name for f in mine]
        b.queue.clear()
        b.sizes = {}
        for f in mine:
            asked = self._step(f.name, Role.COMPONENT)
            b.sizes[asked.name] = f.size
            b.queue.append(asked)
        self._screen(now, "Upgrading")
        return self._next()

    def _place(self, text: str | None) -> LoadId | None:
        """The load a 5th-generation config names (a subclass places more: tools/phonesim/mpp.py)."""
        return parse_load(text)

    def _verdict(self, offered: LoadId):
        """Whether the running load takes `offered` (truth.py; a subclass adds conversions)."""
        return verdict(self.spec.model, self.flash.knows, offered, self.spec.floor)

    def _refuse(self, now: float, load: str, screen: str, why: str, wake: Wake) -> list[Action]:
        """Refused: no component fetched, lease and load kept (§0.0 item 5)."""
        self.refused.append({"t": round(now, 3), "load": load, "screen": screen, "why": why})
        self._screen(now, screen)
        if wake == Wake.TERM and self.boot.term_asks_left > 0:
            self.boot.term_asks_left -= 1
            self.boot.queue.appendleft(self.boot.current)
            return self._next()
        self.attempts += wake == Wake.TERM
        delay = self.spec.term_retry_s if wake == Wake.TERM else self.spec.retry_s
        return self._sleep(now, delay, wake)

    def _manifest_missing(self, now: float, step: Step, error: str) -> list[Action]:
        """The load file is not on the server (§8.1): as a refusal, the phone stays as it is."""
        wake = Wake.TERM if step.role == Role.TERM else Wake.CONFIG
        return self._refuse(now, self.boot.offered_text or step.name, "TFTP file not found", error, wake)

    def _component(self, now: float, step: Step, data: bytes) -> list[Action]:
        if self.spec.model.container == CD34:
            return self._component5(now, step, data)
        _, bad = verify(step.name, data)
        if bad:
            return self._abort(now, step, screen_for(self.spec.model), bad)
        if step.role == Role.LOADER:                      # two-stage flash: reboot into the new loader
            self.flash.loader = self.flash.pending_app = self.boot.offered
            return self._reboot(now)
        if step.role == Role.APP:
            return self._install(now, self.flash.pending_app, (self.flash.app_name,))
        if self.boot.queue:
            return self._next()
        return self._install(now, self.boot.offered, tuple(self.boot.listed))

    def _component5(self, now: float, step: Step, data: bytes) -> list[Action]:
        """A 5th-generation component: its container, then its size against the manifest's `size=` (that a
        phone checks the listed size is UNCONFIRMED; the real sizes equal the files', §2.1)."""
        _, bad = container5.verify(step.name, data)
        if bad is not None:
            return self._abort(now, step, CHECKSUM_ERROR if bad.checksum else screen_for(self.spec.model), str(bad))
        want = self.boot.sizes.get(step.name)
        if want is not None and want != len(data):
            return self._abort(now, step, CHECKSUM_ERROR, f"{len(data)} bytes, the manifest lists {want}")
        if self.boot.queue:
            return self._next()
        assert self.boot.offered is not None          # set by _take5 before any component is queued
        return self._install(now, self.boot.offered, tuple(self.boot.listed))

    def _component_missing(self, now: float, step: Step, error: str) -> list[Action]:
        if step.role == Role.APP:             # loader in, application not found (§8.3)
            self._screen(now, "Protocol Application Invalid")
            return self._sleep(now, self.spec.retry_s, Wake.REBOOT)
        return self._abort(now, step, f"File not found {step.name}", error)

    def _abort(self, now: float, step: Step, screen: str, why: str) -> list[Action]:
        """A component failed: nothing installed, the old load kept (UNCONFIRMED: a real phone may reboot)."""
        if step.role == Role.APP:
            self._screen(now, "Protocol Application Invalid")
            return self._sleep(now, self.spec.retry_s, Wake.REBOOT)
        wake = Wake.TERM if self.flash.running is None else Wake.CONFIG
        self.refused.append({"t": round(now, 3), "load": self.boot.offered.text, "screen": screen, "why": why})
        self._screen(now, screen)
        return self._sleep(now, self.spec.term_retry_s if wake == Wake.TERM else self.spec.retry_s, wake)

    def _install(self, now: float, load: LoadId, components: tuple[str, ...]) -> list[Action]:
        f = self.flash
        f.running = f.knows = f.loader = load
        f.components, f.pending_app, f.app_name = components, None, None
        self.installed.append(load.text)
        self.attempts = 0
        return self._reboot(now)

    # --- sleeping and waking --------------------------------------------------------------------

    def _sleep(self, now: float, delay: float, wake: Wake) -> list[Action]:
        self.state, self.wake = State.WAIT, wake
        self.boot.current = None
        return [Sleep(now + delay, wake.value)]

    def _reboot(self, now: float) -> list[Action]:
        self.settled = False
        return self._sleep(now, self.spec.reboot_s, Wake.REBOOT)

    def _ask_lease(self, now: float | None = None) -> list[Action]:
        self.state, self.wake = State.DHCP, None
        self.boot = Boot()
        return [AskLease(self.vendor_class, self.sep)]

    def _reboot_now(self, now: float) -> list[Action]:
        self.boots += 1
        return self._ask_lease()

    def _config_again(self, now: float) -> list[Action]:
        self.boot.queue = deque(self._config_steps())
        self.boot.trust_done = True
        return self._next()

    # --- what the outside sees ------------------------------------------------------------------

    @property
    def vendor_class(self) -> str:
        """Option 60 (§1.3): old 7940/60 loaders send no model."""
        m = self.spec.model
        if m.family == P79XX and self.flash.loader is not None and self.flash.loader.key < P79XX_MODEL_IN_VENDOR_CLASS_FROM:
            return "Cisco Systems, Inc. IP Phone\x00"
        return f"Cisco Systems, Inc. IP Phone {m.number}\x00"

    @property
    def web_serving(self) -> bool:
        """Whether the application's web server answers now: web access on, an application running, an
        address held, not rebooting."""
        f = self.flash
        return (f.web and f.running is not None and f.pending_app is None and self.boot.ip is not None
                and (self.state == State.FETCH or (self.state == State.WAIT and self.wake == Wake.CONFIG)))

    def device_information(self) -> str | None:
        """The DeviceInformationX page, or None when the phone serves none."""
        if not self.web_serving:
            return None
        return deviceinfo.render(self.spec.model, self.spec.mac, self.flash.running, self.flash.components,
                                 vid=self.spec.vid, hardware_revision=self.spec.hardware_revision)

    def _screen(self, now: float, text: str) -> None:
        self.screens.append((round(now, 3), text))

    def _record(self, now: float, step: Step, via: str, ok: bool, error: str | None, size: int) -> None:
        self.fetches.append({"t": round(now, 3), "name": step.name, "via": via, "ok": ok, "error": error,
                             "bytes": size, "role": step.role.value})

    def summary(self) -> dict:
        f = self.flash
        return {"mac": self.spec.mac, "model": self.spec.model.name, "start": self.spec.start.text,
                "factory_reset": self.spec.factory_reset, "load": f.running.text if f.running else None,
                "pending_app": f.pending_app.text if f.pending_app else None, "trust_list": f.itl,
                "web": f.web, "boots": self.boots, "settled": self.settled, "installed": list(self.installed),
                "refused": list(self.refused), "screens": [s for _, s in self.screens], "vid": self.spec.vid,
                "platform": self.spec.platform if self.spec.model.container == CD34 else None,
                "fetched": list(self.fetches)}


TABLE = {
    (State.OFF, PowerOn): PhoneMachine._power_on,
    (State.DHCP, Leased): PhoneMachine._leased,
    (State.DHCP, NoLease): PhoneMachine._no_lease,
    (State.FETCH, Fetched): PhoneMachine._fetched,
    (State.FETCH, FetchFailed): PhoneMachine._failed,
    (State.WAIT, TimerFired): PhoneMachine._woke,
}
ON_FILE = {
    Role.TRUST: PhoneMachine._trust,
    Role.SIGNED_CONFIG: PhoneMachine._signed_config,
    Role.CONFIG: PhoneMachine._config,
    Role.DEFAULT_CONFIG: PhoneMachine._config,
    Role.OS79XX: PhoneMachine._os79xx,
    Role.SIP_XML: PhoneMachine._sip_xml,
    Role.SIP_DEFAULT: PhoneMachine._sip_default,
    Role.SIP_MAC: PhoneMachine._sip_mac,
    Role.MANIFEST: PhoneMachine._manifest,
    Role.TERM: PhoneMachine._term,
    Role.COMPONENT: PhoneMachine._component,
    Role.LOADER: PhoneMachine._component,
    Role.APP: PhoneMachine._component,
}
ON_MISSING = {
    Role.TRUST: PhoneMachine._go_on,
    Role.SIGNED_CONFIG: PhoneMachine._signed_config,
    Role.CONFIG: PhoneMachine._config_missing,
    Role.DEFAULT_CONFIG: PhoneMachine._config_missing,
    Role.OS79XX: PhoneMachine._go_on,
    Role.SIP_XML: PhoneMachine._go_on,
    Role.SIP_DEFAULT: PhoneMachine._go_on,
    Role.SIP_MAC: PhoneMachine._sip_mac_missing,
    Role.MANIFEST: PhoneMachine._manifest_missing,
    Role.TERM: PhoneMachine._manifest_missing,
    Role.COMPONENT: PhoneMachine._component_missing,
    Role.LOADER: PhoneMachine._component_missing,
    Role.APP: PhoneMachine._component_missing,
}
WAKE = {
    Wake.LEASE: PhoneMachine._ask_lease,
    Wake.REBOOT: PhoneMachine._reboot_now,
    Wake.TERM: PhoneMachine._reboot_now,
    Wake.CONFIG: PhoneMachine._config_again,
}
