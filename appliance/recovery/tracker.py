"""The recovery tracker, sans-I/O: facts in, phone states out, and the load each phone's config names.

It lives where the facts arrive (the file service), fed in the order they
happen: DHCP sends each lease before its ACK leaves, the file service its own
requests as they come, so a phone's config is asked after everything that
caused it.  Each phone keeps one per-boot record (`Boot`: what its config or
term file named, the manifest and files it took since); reading a fact against
it gives a Signal (state.py), and TABLE says what that signal does.

What real phones do (reference cisco-phones.md §0.0):
- Auth Fail does not reboot (item 5): the phone takes the `.loads`, no file of
  it, and later asks its config (or that manifest) again.  That pattern is a
  rejection, with or without a new lease, and so is a manifest followed by
  nothing for MANIFEST_WAIT_S.
- A factory-reset phone asks `termNN.default.loads` until one it can verify is
  served (item 7); the term file served is tied to the load it lists, so the
  config after that load boots names the next step.
- 7940/60 flash `<ID>.sbn`, reboot, then fetch `<ID>.sb2` (item 9): installed
  only after the `.sb2`.
- A phone that took its config and fetched nothing runs what it was told; when
  that was not the step it needed, it is told the next one the next time it
  asks (real phones ask again when they fail to register).
Pure: no I/O, `now` always passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from appliance.firmware.names import Kind, Name, classify
from appliance.firmware.versions import SIP, protocol

from .facts import Fact, FileAsked, FileMissing, FileSent, Lease, LoadLearned, LoadReported, Output, PhoneChanged, Retry
from .facts import PhoneState as S
from .state import Signal, transition

SETTLE_S = 20.0          # took its config, fetched nothing: it runs what it was named
MANIFEST_WAIT_S = 20.0   # a manifest and then silence: rejected (real phones fetch the first file at once)
STALL_S = 45.0           # a download that stopped part way
REBOOT_S = 300.0         # installed and not back: 79x1 flash writes take a minute or two
TRUST_WAIT_S = 60.0      # asked for the signed config and never took the unsigned one
TIMELINE = 50
LOADER_7940_MODEL = "CP-7940G"   # old 7940/60 loaders send no model in option 60; both run the same loads

KEY_CHANGE = ("it could not verify the load's signature (Auth Fail / File auth error): its running load "
              "predates the signing key that load uses")
# A stepping stone is chosen because old loads can verify it (reference §0.0 item 6: 8.3(3)-8.5(2) know both
# keys; §5.2: 8.1(1) for 7940/60), so a refused stone is not an old load meeting a new key: late-production
# hardware refuses loads too old for it ("Load rejected HC", §5.1, §8.1).
STONE_REFUSED = ("it refused the stepping stone, which old loads can verify, so the signing key is not why: its "
                 "hardware is probably too new for that load (Load rejected HC, late-production phones)")


@dataclass
class Plan:
    steps: list[str]
    missing: str | None = None       # what the tech must add, by name


@dataclass
class Boot:
    """What the phone did since the station last drew a conclusion about it."""
    offered: str | None = None       # what its last config or term file named
    term: str | None = None          # "term65.default.loads" when the offer came as a term file
    manifest: str | None = None      # key of the manifest (or term file) it took
    manifest_at: float | None = None
    files: set[str] = field(default_factory=set)   # components of that manifest it took
    loader: bool = False             # 7940/60 .sbn
    app: bool = False                # 7940/60 .sb2
    config_at: float | None = None   # last config asked
    took_config: bool = False
    signed_at: float | None = None   # asked for SEP<MAC>.cnf.xml.sgn
    progress_at: float = 0.0         # last firmware byte

    @property
    def took_firmware(self) -> bool:
        return bool(self.files) or self.loader or self.app

    def as_dict(self) -> dict:
        return {"offered": self.offered, "term": self.term, "manifest": self.manifest, "manifest_at": self.manifest_at,
                "files": sorted(self.files), "loader": self.loader, "app": self.app, "config_at": self.config_at,
                "took_config": self.took_config, "signed_at": self.signed_at, "progress_at": self.progress_at}

    @classmethod
    def from_dict(cls, d: dict) -> "Boot":
        b = cls()
        for key, types in (("offered", (str,)), ("term", (str,)), ("manifest", (str,)), ("manifest_at", (int, float)),
                           ("config_at", (int, float)), ("signed_at", (int, float)), ("progress_at", (int, float)),
                           ("loader", (bool,)), ("app", (bool,)), ("took_config", (bool,))):
            if isinstance(d.get(key), types):
                setattr(b, key, d[key])
        b.files = set(_strings(d.get("files")))
        return b


@dataclass
class Phone:
    mac: str
    model: str = ""
    ip: str = ""
    current: str | None = None       # the load ID it runs, when known
    how: str | None = None           # how `current` was learned
    before: str | None = None        # the load it ran when the station first learned one (not one it installed)
    protocol: str | None = None      # from evidence when `current` is unknown (a SIPDefault.cnf request)
    plan: list[str] = field(default_factory=list)
    step: int = 0
    state: S = S.SEEN
    detail: str = ""
    diagnosis: str = ""
    stuck_on: str = ""               # "missing" when adding a file would move it on by itself
    rejected: set[str] = field(default_factory=set)
    installed_app: str | None = None  # a 7940/60 load counted as installed after its .sb2
    reported: str | None = None      # a page/CDP string that maps to no load: shown, never used
    boot: Boot = field(default_factory=Boot)
    last: float = 0.0
    timeline: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return self.plan[-1] if self.plan else self.current

    @property
    def step_load(self) -> str | None:
        """The load this phone's config names now."""
        return self.plan[min(self.step, len(self.plan) - 1)] if self.plan else self.current

    @property
    def protocol_hint(self) -> str | None:
        return protocol(self.current) or self.protocol

    def memory(self) -> dict:
        """Everything beyond the phones table's columns, so a restarted file service resumes the phone."""
        return {"how": self.how, "before": self.before, "protocol": self.protocol, "detail": self.detail,
                "stuck_on": self.stuck_on, "rejected": sorted(self.rejected), "installed_app": self.installed_app,
                "reported": self.reported, "boot": self.boot.as_dict(), "last": self.last}

    @classmethod
    def from_row(cls, row: dict) -> "Phone":
        """The phone as a phones-table row recorded it; missing or odd memory is skipped."""
        hints: dict = row["hints"] if isinstance(row.get("hints"), dict) else {}
        mem: dict = hints["memory"] if isinstance(hints.get("memory"), dict) else {}
        try:
            state = S(row.get("state") or "seen")
        except ValueError:
            state = S.SEEN
        p = cls(str(row["mac"]).lower(), model=row.get("model") or "", ip=row.get("ip") or "",
                current=row.get("current_load"), plan=[str(x) for x in row.get("plan") or []],
                step=int(row.get("step") or 0), state=state, diagnosis=row.get("diagnosis") or "")
        for key in ("how", "before", "protocol", "detail", "stuck_on", "installed_app", "reported"):
            if isinstance(mem.get(key), str):
                setattr(p, key, mem[key])
        p.rejected = set(_strings(mem.get("rejected")))
        p.boot = Boot.from_dict(mem["boot"] if isinstance(mem.get("boot"), dict) else {})
        p.last = float(mem["last"]) if isinstance(mem.get("last"), (int, float)) else 0.0
        timeline: list = hints["timeline"] if isinstance(hints.get("timeline"), list) else []
        p.timeline = [tuple(t) for t in timeline if isinstance(t, list) and len(t) == 3]
        return p


Planner = Callable[[Phone], Plan]


def _strings(value) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


class Tracker:
    """Every phone's state machine.  Public entry points: feed, config, term, tick, restore, phone_at."""

    def __init__(self, planner: Planner, components_of: Callable[[str], int] | None = None,
                 reset_keys: Callable[[str], str | None] | None = None,
                 lease_of: Callable[[str], tuple[str, str] | None] | None = None,
                 upgradable: Callable[[str], str | None] | None = None):
        """
        Args:
            planner: the plan for a phone (its model, current load, protocol and rejected loads).
            components_of: how many files a load's manifest lists (0 if unknown): all taken means rebooting.
            reset_keys: the factory-reset key sequence for a model, for diagnoses.
            lease_of: (mac, model) for an address whose lease the tracker has not been told (restart, static IP).
            upgradable: None if a model takes loads by manifest, else why not (shown as its diagnosis).
        """
        self.planner = planner
        self.components_of = components_of or (lambda load: 0)
        self.reset_keys = reset_keys or (lambda model: None)
        self.lease_of = lease_of or (lambda ip: None)
        self.upgradable = upgradable or (lambda model: None)
        self.phones: dict[str, Phone] = {}
        self.by_ip: dict[str, str] = {}
        self._born: list[Output] = []      # "seen" of phones created while answering, handed out with the answer

    # ---- entry points ------------------------------------------------------------------------------
    def restore(self, phones: Iterable[Phone]) -> None:
        """Phones as the station last recorded them: a restart resumes each where it was."""
        for p in phones:
            self.phones[p.mac] = p
            if p.ip:
                self.by_ip[p.ip] = p.mac

    def feed(self, fact: Fact) -> list[Output]:
        """Apply one fact.

        Args:
            fact: a Lease, FileAsked, FileSent, FileMissing, LoadReported or Retry, in the order they happened.
        Returns:
            what changed (PhoneChanged, LoadLearned), for the store and the dashboard.
        """
        out = self._feed(fact)
        born, self._born = self._born, []
        return born + out

    def _feed(self, fact: Fact) -> list[Output]:
        if isinstance(fact, Lease):
            return self._lease(fact)
        if isinstance(fact, Retry):
            p = self.phones.get(fact.mac.lower())
            return self._run(p, Signal.RETRY, fact.ts, fact) if p else []
        if isinstance(fact, LoadReported):
            p = self.phones.get(fact.mac.lower())
            return self._run(p, Signal.REPORTED, fact.ts, fact) if p else []
        p = self.phone_at(fact.ip, fact.mac, fact.ts)
        if p is None:
            return []
        name = classify(fact.name)
        p.last = max(p.last, fact.ts)
        signal = self._file_signal(p, name, fact)
        return self._run(p, signal, fact.ts, (name, fact)) if signal else []

    def config(self, ip: str, name: str, now: float, mac: str | None = None) -> tuple[str | None, list[Output]]:
        """A phone asks for its config (SEP<MAC>.cnf.xml, OS79XX.TXT, SIPDefault.cnf...): conclude, then name.

        Returns:
            (the load its config names, or None if the station has none for it; what changed).
        """
        out = self.feed(FileAsked(now, ip, name, mac=mac or classify(name).mac))
        p = self.phone_at(ip, mac or classify(name).mac, now)
        return (p.step_load if p else None), out

    def term(self, ip: str, term: str, now: float, model: str) -> tuple[str | None, list[Output]]:
        """A factory-reset phone asks for termNN.default.loads: the load whose term file to serve.

        The answer is tied to the phone's boot record, so that load's files and the next config are
        read as installing it (reference §0.0 item 7)."""
        p = self.phone_at(ip, None, now)
        if p is None:
            return None, []
        out: list[Output] = self._born
        self._born = []
        if p.model != model and not p.model:
            p.model = model
            p.plan, p.step = self._plan(p)
        key = classify(term).key
        b = p.boot
        if b.term and b.manifest == key and not b.took_firmware:
            out += self._run(p, Signal.REJECTED, now, None)       # the same term file again, nothing taken
        load = p.step_load
        b = p.boot
        b.offered, b.term = load, term.lower()
        return load, out

    def tick(self, now: float) -> list[Output]:
        """Conclusions that come from time passing (settled, rejected by silence, stalled, not back)."""
        out: list[Output] = []
        for p in list(self.phones.values()):
            b = p.boot
            if b.signed_at is not None and not b.took_config and now - b.signed_at > TRUST_WAIT_S \
                    and p.state != S.STUCK:
                out += self._run(p, Signal.TRUST_TIMEOUT, now, None)
            elif p.state == S.CONFIGURED and b.took_config and not b.manifest and b.config_at is not None \
                    and now - b.config_at > SETTLE_S:
                out += self._run(p, Signal.SETTLED, now, None)
            elif p.state == S.DOWNLOADING and now - max(b.progress_at, b.manifest_at or 0) > \
                    (MANIFEST_WAIT_S if not b.took_firmware else STALL_S):
                out += self._run(p, Signal.STALLED, now, None)
            elif p.state == S.REBOOTING and now - b.progress_at > REBOOT_S:
                out += self._run(p, Signal.NO_RETURN, now, None)
        return out

    def phone_at(self, ip: str | None, mac: str | None, ts: float = 0.0) -> Phone | None:
        """The phone at an address (or with a MAC), asking `lease_of` for addresses not yet heard of."""
        if mac:
            p = self.phones.get(mac.lower())
            if p is not None:
                if ip and p.ip != ip:
                    self._bind(p, ip)
                return p
        known = self.by_ip.get(ip or "")
        if known:
            return self.phones.get(known)
        found = self.lease_of(ip) if ip else None
        if not found and not mac:
            return None
        mac, model = found or (mac or "", "")
        p = self._new(mac.lower(), model or "", ts)
        self._bind(p, ip or "")
        return p

    # ---- reading facts -----------------------------------------------------------------------------
    def _file_signal(self, p: Phone, name: Name, fact) -> Signal | None:
        b, kind = p.boot, name.kind
        if kind == Kind.SIGNED_CONFIG:             # asked at all (the station answers "not found")
            return Signal.SIGNED_CONFIG if isinstance(fact, (FileAsked, FileMissing)) else None
        if isinstance(fact, FileMissing):
            return Signal.MISSING if kind in (Kind.MANIFEST, Kind.TERM, Kind.COMPONENT, Kind.LOADER_7940,
                                              Kind.APP_7940) else None
        if kind == Kind.CONFIG:
            if not isinstance(fact, FileAsked):
                return None
            if name.path.lower() in ("sipdefault.cnf",) or name.path.lower().startswith("sip"):
                p.protocol = p.protocol or SIP
            if b.manifest and b.took_firmware and (b.app or not (b.loader and not b.app)):
                return Signal.INSTALLED
            if b.manifest and not b.took_firmware:
                return Signal.REJECTED
            if b.loader and not b.app:
                return None       # a 7940/60 between its loader and its application: nothing to conclude yet
            return Signal.CONFIG
        if not isinstance(fact, FileSent) or fact.result != "complete":
            return None
        if kind in (Kind.MANIFEST, Kind.TERM):
            load = name.load if kind == Kind.MANIFEST else None
            if b.manifest == name.key and not b.took_firmware and b.manifest_at is not None:
                return Signal.REJECTED                             # the same manifest again, nothing taken
            if load and p.installed_app and load.lower() == p.installed_app.lower():
                return Signal.OLD_APP
            return Signal.MANIFEST
        if kind == Kind.COMPONENT:
            return Signal.COMPONENT if b.manifest else None
        if kind == Kind.LOADER_7940:
            if p.installed_app and name.load and name.load.lower() == p.installed_app.lower():
                return Signal.OLD_APP
            return Signal.LOADER
        if kind == Kind.APP_7940:
            if p.installed_app and name.load and name.load.lower() == p.installed_app.lower():
                return Signal.OLD_APP                               # the same .sb2 again: its old app booted
            return Signal.APP
        return None

    # ---- running the table ---------------------------------------------------------------------------
    def _run(self, p: Phone, signal: Signal, ts: float, arg) -> list[Output]:
        t = transition(p.state, signal)
        if t is None:
            return []
        before = (p.state, p.detail, p.step, p.current)
        out: list[Output] = getattr(self, "_" + t.action)(p, ts, arg) or []
        if p.state not in t.targets:
            raise AssertionError(f"{t.action} took {p.mac} from {before[0].value} to {p.state.value}, "
                                 f"not one of {[s.value for s in t.targets]}")
        if (p.state, p.detail, p.step, p.current) != before:
            out.append(self._changed(p, ts))
        return out

    def _go(self, p: Phone, state: S, detail: str = "") -> None:
        p.state, p.detail = state, detail
        p.diagnosis = detail if state.needs_tech else ""
        if state != S.STUCK:
            p.stuck_on = ""

    def _changed(self, p: Phone, ts: float) -> PhoneChanged:
        p.timeline = (p.timeline + [(ts, p.state.value, p.detail)])[-TIMELINE:]
        n = len(p.plan)
        return PhoneChanged(ts, p.mac, p.state, p.detail, min(p.step + 1, n) if n else 0, n, p.current,
                            p.diagnosis or None)

    def _new(self, mac: str, model: str, ts: float) -> Phone:
        p = self.phones[mac] = Phone(mac, model=model, last=ts)
        p.plan, p.step = self._plan(p)
        self._born.append(self._changed(p, p.last))
        why = self.upgradable(model) if model else None
        if why:
            self._go(p, S.STUCK, why)
            self._born.append(self._changed(p, p.last))
        return p

    def _bind(self, p: Phone, ip: str) -> None:
        if not ip:
            return
        if p.ip and self.by_ip.get(p.ip) == p.mac:
            del self.by_ip[p.ip]
        p.ip = ip
        self.by_ip[ip] = p.mac

    def _plan(self, p: Phone) -> tuple[list[str], int]:
        return self.planner(p).steps, 0

    def _learn(self, p: Phone, load: str, how: str, ts: float) -> list[Output]:
        if not load or load == p.current:
            return []
        if p.before is None and p.current is None and how != "step":
            p.before = load
        p.current, p.how = load, how
        return [LoadLearned(ts, p.mac, load, how)]

    def _offer(self, p: Phone, ts: float) -> None:
        """Name the plan's current step in this config (and say so)."""
        b = p.boot
        b.offered, b.term, b.took_config, b.config_at = p.step_load, None, True, ts
        if b.offered is None:
            why = self.upgradable(p.model)
            plan = self.planner(p)
            self._go(p, S.STUCK, why or plan.missing or f"no load for {p.model or 'this model'} in the firmware library")
            p.stuck_on = "missing"
        elif p.current and b.offered.lower() == p.current.lower() and b.offered == p.target:
            self._go(p, S.DONE, f"on {p.current}")
        else:
            n = len(p.plan)
            self._go(p, S.CONFIGURED, f"step {min(p.step + 1, n)} of {n}: {b.offered}")

    # ---- actions (TABLE names them) ----------------------------------------------------------------
    def _lease(self, fact: Lease) -> list[Output]:
        mac = fact.mac.lower()
        out: list[Output] = []
        p = self.phones.get(mac)
        if p is None:
            p = self._new(mac, fact.model or "", fact.ts)
        if fact.ip and fact.acked:
            self._bind(p, fact.ip)
        if fact.model and fact.model != p.model and (not p.model or p.model == LOADER_7940_MODEL):
            p.model = fact.model
            if not p.boot.manifest:
                p.plan, p.step = self._plan(p)
        return out + self._run(p, Signal.LEASE, fact.ts, fact)

    def _lease_seen(self, p: Phone, ts: float, fact: Lease) -> list[Output]:
        b = p.boot
        if fact.acked and b.signed_at is not None and not b.took_config and p.state != S.STUCK:
            self._trust(p)
        return []

    def _configure(self, p: Phone, ts: float, arg) -> list[Output]:
        p.boot = Boot(signed_at=p.boot.signed_at)
        if p.model == "" and isinstance(arg, tuple) and arg[0].path.upper() == "OS79XX.TXT":
            p.model = LOADER_7940_MODEL
        if not p.plan or (p.current and p.step_load == p.current and p.current != p.target):
            p.plan, p.step = self._plan(p)
        self._offer(p, ts)
        return []

    def _configure_stuck(self, p: Phone, ts: float, arg) -> list[Output]:
        if p.stuck_on == "missing":
            p.plan, p.step = self._plan(p)
            if p.step_load is not None and not self.planner(p).missing:
                return self._configure(p, ts, arg)
        p.boot = Boot(offered=p.step_load, took_config=True, config_at=ts, signed_at=p.boot.signed_at)
        return []

    def _installed(self, p: Phone, ts: float, arg) -> list[Output]:
        b = p.boot
        load = b.offered or (classify(b.manifest).load if b.manifest else None)
        out = self._learn(p, load or "", "step", ts)
        p.installed_app = load if b.app else None
        if p.plan and p.step < len(p.plan) and p.plan[p.step] == load:
            p.step += 1
            if p.step >= len(p.plan):
                p.plan, p.step = self._plan(p)
        else:
            p.plan, p.step = self._plan(p)
        if p.current and p.current == (p.plan[-1] if p.plan else p.current) and p.step >= len(p.plan) - 1 \
                and p.step_load == p.current:
            p.boot = Boot(offered=p.current, took_config=True, config_at=ts)
            self._go(p, S.DONE, f"on {p.current}")
            return out
        p.boot = Boot()
        self._offer(p, ts)
        return out

    def _rejected(self, p: Phone, ts: float, arg) -> list[Output]:
        b = p.boot
        load = b.offered or (classify(b.manifest).load if b.manifest else None) or "?"
        term = b.term
        stone = bool(p.plan) and load != p.plan[-1]      # offered on the way to the target, not the target
        p.rejected.add(load)
        plan = self.planner(p)
        p.plan, p.step = plan.steps, 0
        p.boot = Boot(signed_at=b.signed_at)
        nxt = p.step_load
        why = (STONE_REFUSED if stone else KEY_CHANGE if not p.current
               else "it refused the load (Auth Fail / File auth error / Load rejected HC)")
        if nxt and nxt not in p.rejected:
            p.boot = Boot(offered=nxt, took_config=True, config_at=ts)
            n = len(p.plan)
            self._go(p, S.CONFIGURED, f"rejected {load}: {why}; now step 1 of {n}: {nxt}")
            return []
        if term:
            add = plan.missing or f"add the package of a stepping-stone load that carries {term}"
            self._go(p, S.STUCK, f"factory-reset phone loops on {term}: it cannot verify the one served "
                                 f"(for {load}); {add}")
        else:
            self._go(p, S.STUCK, f"rejected {load}: {why}; "
                                 f"{plan.missing or 'no other load in the library it could take: add a stepping stone'}")
        p.stuck_on = "missing"
        return []

    def _manifest(self, p: Phone, ts: float, arg) -> list[Output]:
        name, _ = arg
        b = p.boot
        if name.kind == Kind.MANIFEST and name.load and (not b.offered or b.offered.lower() != name.load.lower()):
            b.offered, b.term = name.load, None      # it installs what it fetched, whoever named it
        b.manifest, b.manifest_at, b.files, b.progress_at = name.key, ts, set(), ts
        b.loader = b.app = False
        self._go(p, S.DOWNLOADING, name.path)
        return []

    def _component(self, p: Phone, ts: float, arg) -> list[Output]:
        name, fact = arg
        b = p.boot
        b.files.add(name.key)
        b.progress_at = ts
        want = self.components_of(b.offered or "")
        if want and len(b.files) >= want:
            self._go(p, S.REBOOTING, f"installing {b.offered}")
        else:
            self._go(p, S.DOWNLOADING, f"{name.path} ({len(b.files)}/{want or '?'})")
        return []

    def _loader(self, p: Phone, ts: float, arg) -> list[Output]:
        return self._stage(p, ts, arg[0], app=False)

    def _app(self, p: Phone, ts: float, arg) -> list[Output]:
        return self._stage(p, ts, arg[0], app=True)

    def _stage(self, p: Phone, ts: float, name: Name, app: bool) -> list[Output]:
        """A 7940/60 took its loader (.sbn: it reboots, then fetches the .sb2) or its application (.sb2)."""
        b = p.boot
        if app:
            b.app = True
        else:
            b.loader = True
        b.progress_at = ts
        b.manifest = b.manifest or name.key
        b.offered = b.offered or name.load
        self._go(p, S.REBOOTING, f"installing {b.offered}" if app
                 else f"flashing the loader {name.path}; after its reboot it fetches the .sb2")
        return []

    def _old_app(self, p: Phone, ts: float, arg) -> list[Output]:
        load = p.installed_app
        p.current, p.how, p.installed_app = None, None, None
        p.rejected.add(load or "")
        self._go(p, S.STUCK, f"took {load}.sb2 and booted its old application again (seen on 7960s that refuse "
                             f"loads above 8.0(4)): it will not run {load}; try an 8.0(4) load, or SIP P0S3-8-12-00")
        return []

    def _signed_config(self, p: Phone, ts: float, arg) -> list[Output]:
        if p.boot.signed_at is None:
            p.boot.signed_at = ts
        return []

    def _missing(self, p: Phone, ts: float, arg) -> list[Output]:
        name, _ = arg
        if name.kind == Kind.TERM:
            load = p.step_load
            self._go(p, S.STUCK, f"factory-reset phone asks for {name.path}, and no package of {load or 'its next load'} "
                                 f"in the library has it: add that load's cmterm zip (it carries {name.path.lower()})")
        else:
            self._go(p, S.STUCK, f"station does not have {name.path}: add it to the firmware library")
        p.stuck_on = "missing"
        return []

    def _reported(self, p: Phone, ts: float, fact: LoadReported) -> list[Output]:
        if fact.load is None:
            p.reported = fact.raw[:80] or None
            return []
        p.reported = None
        out = self._learn(p, fact.load, fact.how, ts)
        if out:
            p.plan, p.step = self._plan(p)
            if p.state == S.WAITING or (p.state == S.CONFIGURED and p.step_load == p.current):
                self._offer(p, ts)
        return out

    def _keep(self, p: Phone, ts: float, arg) -> list[Output]:
        return []

    def _settled(self, p: Phone, ts: float, arg) -> list[Output]:
        b = p.boot
        out = self._learn(p, b.offered or "", "settled", ts)
        p.plan, p.step = self._plan(p)
        if p.step_load is None or p.step_load == p.current:
            self._go(p, S.DONE, f"on {p.current}")
        else:
            self._go(p, S.WAITING, f"already on {p.current}, which its config named, so it stays there until it "
                                   f"asks again: restart it (unplug power) to go on to {p.step_load}")
        return out

    def _stalled(self, p: Phone, ts: float, arg) -> list[Output]:
        b = p.boot
        if not b.took_firmware:
            return self._rejected(p, ts, arg)
        if not self.components_of(b.offered or ""):
            self._go(p, S.REBOOTING, f"installing {b.offered}")
            return []
        self._go(p, S.STUCK, f"download of {b.offered} stopped after {len(b.files)} of "
                             f"{self.components_of(b.offered or '')} files: check the cable, then restart the phone")
        return []

    def _no_return(self, p: Phone, ts: float, arg) -> list[Output]:
        self._go(p, S.STUCK, f"installed {p.boot.offered} and did not come back within {int(REBOOT_S // 60)} minutes: "
                             "check its power (a 7970 needs a power brick or full PoE)")
        return []

    def _trust(self, p: Phone) -> None:
        keys = self.reset_keys(p.model)
        reset = f"factory reset ({keys})" if keys else "factory reset"
        self._go(p, S.STUCK, "holds another cluster's trust list and never took the unsigned config: "
                             f"erase it (Settings > Security > Trust List, **# to unlock, Erase) or {reset}")

    def _trust_stuck(self, p: Phone, ts: float, arg) -> list[Output]:
        self._trust(p)
        return []

    def _retry(self, p: Phone, ts: float, arg) -> list[Output]:
        p.rejected.clear()
        p.boot, p.installed_app = Boot(), None
        p.plan, p.step = self._plan(p)
        self._go(p, S.SEEN, f"plan restarted on request ({getattr(arg, 'by', 'api')})")
        return []
