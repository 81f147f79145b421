"""The recovery core, sans-I/O (in the style of aioquic's connection): events in, outputs out, timers asked for.

    outputs = tracker.handle(event, now)
    when = tracker.next_deadline()        # then handle(Timer(when), when)

It lives where the facts arrive (the file service's parent, hub.py), fed in
the order they happen: DHCP tells each lease before its ACK leaves, the file
workers their requests as they come.  It answers three questions and nothing
else does: which phone is this (identity.py: only the address a phone leased
speaks for it), what does this fact mean for it (signals.py against its
boot record), and which load its config names next (the plan, and the
`Answers` table it pushes to the workers, which serve configs from it
without asking).  What real phones do is in signals.py and actions.py
(reference cisco-phones.md §0.0).

Pure: no store, clock, threads, sockets or logging; `now` is always passed
in.  An input it cannot apply comes back as `Dropped`, never an exception
for bad input; a bug in the library it is handed (a catalog error) is an
error and propagates.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from appliance.firmware.mpp import is_mpp_vendor_class, licence_name, parse_user_agent, reports
from appliance.firmware.names import Kind, Name, classify
from appliance.firmware.versions import ENTERPRISE, MPP, SIP, TRANSITION, protocol, version_key

from . import neighbours
from .actions import LOADER_7940_MODEL, MANIFEST_WAIT_S, REBOOT_S, SETTLE_S, STALL_S, TRUST_WAIT_S, go, learn
from .diagnosis import Code, Need, Note
from .facts import (
    Answer,
    Answers,
    CatalogChanged,
    Dropped,
    FileAsked,
    FileMissing,
    FileSent,
    Forget,
    Lease,
    LoadReported,
    OtherRead,
    Output,
    PhoneChanged,
    PollPage,
    Restored,
    Retry,
    Timer,
)
from .facts import PhoneState as S
from .identity import DEFAULT_LEASE_S, Identity
from .library import Library
from .phone import Phone
from .plan import HardwareFloor, Plan
from .signals import Signal, read
from .state import transition

TIMELINE = 50
MAX_PENDING_CLAIMS = 1024     # CDP/LLDP claims for MACs that hold no lease yet (a flood of fake ones is cut here)
NEIGHBOUR_HOWS = ("cdp", "lldp")
# What only a phone asks for: a lease holder without option 60 (old 7940/60 loaders send none) becomes a phone
# at the first of these; anything else (a laptop reading a manual, an unknown name) never does.
PHONE_FILES = (Kind.CONFIG, Kind.SIGNED_CONFIG, Kind.TRUST_LIST, Kind.TERM, Kind.MANIFEST, Kind.LOADER_7940,
               Kind.APP_7940, Kind.PROFILE)


class TransitionError(AssertionError):
    """An action ended in a state its row of the table does not allow: a bug in actions.py."""


class Tracker:
    """Every phone's state machine and the identity table.  Entry points: handle, next_deadline."""

    def __init__(self, lib: Library, lease_s: float = DEFAULT_LEASE_S):
        """
        Args:
            lib: what the core may ask of the firmware library (library.py).
            lease_s: how long a lease lasts when DHCP does not say (the [dhcp] lease time).
        """
        self.lib = lib
        self.identity = Identity(lease_s)
        self.phones: dict[str, Phone] = {}
        self.counters = {"facts": 0, "other reads": 0, "dropped": 0, "claims refused": 0}
        self._claims: dict[str, LoadReported] = {}     # neighbour claims waiting for their MAC's lease
        self._answers: dict[str, Answer] = {}          # what the workers were last told, per MAC
        self._defaults: tuple[tuple[str, str], ...] | None = None
        self._version = 0
        self._touched: set[str] = set()
        self._defaults_stale = True
        self._handlers: dict[type, Callable[[Any, float], list[Output]]] = {
            Lease: self._lease, FileAsked: self._file, FileSent: self._file, FileMissing: self._file,
            LoadReported: self._reported, Retry: self._retry, Forget: self._forget,
            CatalogChanged: self._catalog, Restored: self._restored, Timer: self._timer}

    # ---- entry points --------------------------------------------------------------------------------------
    def handle(self, event: object, now: float) -> list[Output]:
        """Apply one event.

        Args:
            event: a Lease, FileAsked, FileSent, FileMissing, LoadReported, Retry, Forget, CatalogChanged,
                Restored or Timer, in the order they happened.
            now: the station's clock (seconds, same base as the events' ts).
        Returns:
            what follows, in order: PhoneChanged and LoadLearned (for the store and dashboard), OtherRead
            (a read that is no phone's fact), PollPage (a page to read), Answers (what the workers' table
            must now say), Dropped (an input not applied, and why).
        """
        handler = self._handlers.get(type(event))
        if handler is None:
            self.counters["dropped"] += 1
            return [Dropped(now, f"unknown event {type(event).__name__}")]
        self.counters["facts"] += 1
        out = handler(event, now)
        self.counters["dropped"] += sum(1 for o in out if isinstance(o, Dropped))
        return out + self._answers_out()

    def next_deadline(self) -> float | None:
        """When `handle(Timer(...))` has something to conclude (a phone settled, stalled, not back), or None."""
        found = [d for p in self.phones.values() if (d := self._deadline(p)) is not None]
        return min(found) if found else None

    def answer(self, mac: str) -> Answer | None:
        """The row the workers were last told for `mac` (tests, and HTTP in this process)."""
        return self._answers.get(mac)

    def defaults(self) -> tuple[tuple[str, str], ...]:
        """(model, load) a config names for a phone of that model the core knows nothing else about."""
        return self._defaults or ()

    # ---- what the library says ------------------------------------------------------------------------------
    def plan(self, p: Phone) -> Plan:
        to = self.converting(p)
        if to is not None:
            if p.converted_from is None:         # for the API and report: a conversion is its own result
                p.converted_from = ENTERPRISE if to == MPP else MPP
            return self.lib.planner(p.model, p.current, p.protocol_hint, frozenset(p.rejected), self.floor(p), to)
        return self.lib.planner(p.model, p.current, p.protocol_hint, frozenset(p.rejected), self.floor(p))

    def _conversion(self, p: Phone) -> tuple[str | None, Need | None]:
        """(the firmware kind [upgrade] convert moves this phone to when it may go, what stops it otherwise).

        Only for a phone on the other kind: an MPP phone set to "mpp" (or one converted already) is no conversion.
        It may go when Cisco lists its model and hardware as eligible and its licence `<MAC>.lic` is in the volume
        (phone-families.md §3.1-3.2, §3.6); the licence is asked last, so a phone that can never convert says so
        rather than asking for a licence."""
        want = self.lib.conversion(p.mac, p.model) if p.model else None
        if want is None:
            return None, None
        running = protocol(p.current) or p.protocol
        if running == TRANSITION:
            running = MPP if want == MPP else running
        if running == want or (want == SIP and running in (None, "sccp", "mgcp")):
            return None, None
        refused = self.lib.convert_refusal(p.model, p.vid)
        if refused is not None:
            kind, why = refused
            return None, Need(f"convert {kind}", p.model, want, high=why, vid=p.vid or "")
        if not self.lib.licensed(p.mac):
            return None, Need("licence", p.model, want, low=licence_name(p.mac), high=self.lib.licence_problem(p.mac) or "")
        return want, None

    def converting(self, p: Phone) -> str | None:
        """MPP or SIP when the phone is being converted to that kind (allowed), else None."""
        return self._conversion(p)[0]

    def conversion_need(self, p: Phone) -> Need | None:
        """What stops the conversion [upgrade] convert asks for this phone (its licence, its model, its VID)."""
        return self._conversion(p)[1]

    def floor(self, p: Phone) -> HardwareFloor | None:
        """The phone's hardware floor: only for a known VID (an unknown one is never a floor)."""
        if not (p.vid and p.model):
            return None
        # A phone on (or being converted to) multiplatform firmware has MPP floors: a V15+ 88x1 takes nothing
        # under MPP 11.3(3) (floors.toml, firmware "mpp"; phone-families.md §1.4, §3.2).
        to = self._conversion(p)[0]
        mpp = to == MPP or (to is None and p.protocol_hint in (MPP, TRANSITION))
        found = self.lib.mpp_floor(p.model, p.vid) if mpp else self.lib.floor(p.model, p.vid)
        return HardwareFloor(p.vid, found[0], found[1]) if found else None

    def term_model(self, name: Name) -> str | None:
        """The model a term file belongs to (the first model that asks it)."""
        return next((m for m in self.lib.models() if (self.lib.term_of(m) or "").lower() == name.key), None)

    # ---- events ----------------------------------------------------------------------------------------------
    def _lease(self, ev: Lease, now: float) -> list[Output]:
        """A lease: the identity table always; a phone only for a client that says it is one (option 60)."""
        mac, out = ev.mac.lower(), list[Output]()
        p = self.phones.get(mac)
        if ev.acked and ev.ip:
            displaced = self.identity.lease(mac, ev.ip, ev.model or (p.model if p else ""), ev.expires, now)
            if displaced and displaced in self.phones:
                self.phones[displaced].ip = ""        # DHCP gave its address to another MAC: it is not there now
                self._touched.add(displaced)
        if p is None and ev.model:
            p, out = self._new(mac, ev.model, ev.ts)
        if p is None:
            return out          # a laptop, a printer -- or a 7940 loader without option 60: a phone at its first phone file
        if is_mpp_vendor_class(ev.vendor_class) and not p.current and p.protocol != MPP:
            p.protocol = MPP    # option 60 ends -3PCC: it runs multiplatform firmware (cisco-phones.md §1.3)
            if not p.boot.manifest:
                p.plan, p.step = self.plan(p).steps, 0
        if ev.model and ev.model != p.model and (not p.model or p.model == LOADER_7940_MODEL):
            p.model = ev.model
            if not p.boot.manifest:
                p.plan, p.step = self.plan(p).steps, 0
        self._touched.add(mac)
        if not (ev.acked and ev.ip):
            return out
        return out + self._bound(p, ev.ip, ev.ts, ev, now)

    def _bound(self, p: Phone, ip: str, ts: float, ev: Lease | None, now: float) -> list[Output]:
        """The phone holds `ip` now: read its page, apply the neighbour's word waiting for it, then the lease."""
        p.ip = ip
        out: list[Output] = [PollPage(p.mac, ip)]
        claim = self._claims.pop(p.mac, None)
        if claim is not None:                         # before the config this lease causes
            out += self._reported(claim, now)
        return out + (self._run(p, Signal.LEASE, ts, ev) if ev is not None else [])

    def _file(self, fact: FileAsked | FileSent | FileMissing, now: float) -> list[Output]:
        name = classify(fact.name)
        mac, why = self.identity.who(fact.ip, name.mac, now)
        p = self.phones.get(mac) if mac else None
        born: list[Output] = []
        if p is None and mac and name.kind in PHONE_FILES and name.key != "xmldefault.cnf.xml":
            holder = self.identity.of(mac)       # a lease holder that sent no option 60 asks what only phones ask
            p, born = self._new(mac, holder.model if holder else "", fact.ts)
            born += self._bound(p, fact.ip, fact.ts, None, now)
        if p is None:
            self.counters["other reads"] += 1
            return [OtherRead(fact.ts, fact.ip, fact.name, fact.proto, why or "no phone")]
        p.last = max(p.last, fact.ts)
        self._touched.add(p.mac)
        out: list[Output] = born
        if name.kind is Kind.PROFILE or isinstance(fact, FileAsked) and fact.agent:
            out += self._multiplatform(p, name, fact)
        signals = read(p, name, fact)
        for signal in signals:
            out += self._run(p, signal, fact.ts, (name, fact))
        if signals and isinstance(fact, FileAsked) and name.kind in (Kind.CONFIG, Kind.PROFILE) \
                and p.boot.offered != fact.served:
            p.boot.offered = fact.served          # the worker's table was a moment behind: it got what it got
        return out

    def _multiplatform(self, p: Phone, name: Name, fact: FileAsked | FileSent | FileMissing) -> list[Output]:
        """A profile request or an MPP User-Agent from the lease holder: it runs multiplatform firmware now.

        A profile asked with no install under way means the load the station thought it ran is not what it runs
        (a page read before a conversion, a phone swapped): that load is dropped, never carried into an MPP plan.
        The User-Agent's MAC must be the holder's (else it is no word about this phone); its version is matched to
        the plan's loads only (mpp.reports: "11.0" names no load), so a phone already on its target is known so."""
        ua = parse_user_agent(fact.agent) if isinstance(fact, FileAsked) and fact.agent else None
        if ua is not None and ua.mac != p.mac:
            ua = None
        if name.kind is not Kind.PROFILE and ua is None:
            return []
        if not p.model:
            p.model = name.model or (ua.model if ua else "")
        running = protocol(p.current)
        if running in (MPP, TRANSITION) or (p.boot.manifest and p.boot.took_firmware):
            return []                 # known, or an install whose next profile request says it took
        changed = p.protocol != MPP or p.current is not None
        p.current, p.protocol = None, MPP
        if ua is not None:
            for load in dict.fromkeys([*p.plan, *self.plan(p).steps]):
                if reports(ua.version, version_key(load)):
                    out = learn(p, load, "agent", fact.ts)
                    p.plan, p.step = self.plan(p).steps, 0
                    return out
        if changed:
            p.plan, p.step = self.plan(p).steps, 0
        return []

    def _reported(self, fact: LoadReported, now: float) -> list[Output]:
        mac = fact.mac.lower()
        p = self.phones.get(mac)
        if fact.how in NEIGHBOUR_HOWS:
            if p is None or self.identity.of(mac) is None:      # no phone yet, or its lease is not known
                if len(self._claims) >= MAX_PENDING_CLAIMS and mac not in self._claims:
                    self._claims.pop(next(iter(self._claims)))
                self._claims[mac] = fact          # applied at its lease: a claim never creates a phone
                return []
            if fact.load and neighbours.verdict(fact.load, p.current, p.how) is not None:
                self.counters["claims refused"] += 1     # the phone's own record outranks a neighbour's word
                return []
        if p is None:
            return [Dropped(now, f"a load report for {mac}, which holds no lease")]
        self._touched.add(mac)
        return self._run(p, Signal.REPORTED, fact.ts, fact)

    def _retry(self, fact: Retry, now: float) -> list[Output]:
        p = self.phones.get(fact.mac.lower())
        if p is None:
            return [Dropped(now, f"retry for {fact.mac}, a phone the station has not met")]
        self._touched.add(p.mac)
        return self._run(p, Signal.RETRY, fact.ts, fact)

    def _forget(self, ev: Forget, now: float) -> list[Output]:
        mac = ev.mac.lower()
        self.identity.forget(mac)
        if mac in self.phones:
            self.phones[mac].ip = ""
            self._touched.add(mac)
        return []

    def _catalog(self, ev: CatalogChanged, now: float) -> list[Output]:
        self._defaults_stale = True
        self._touched.update(self.phones)
        return []

    def _restored(self, ev: Restored, now: float) -> list[Output]:
        for p in ev.phones:
            self.phones[p.mac] = p
            self._touched.add(p.mac)
            b = p.boot
            if p.state == S.DOWNLOADING and not b.took_firmware:
                # A manifest and no file of it, when the station itself went down mid-download, proves nothing:
                # the transfers it was serving died with it.  Read as a refusal, it would cost the phone its stone.
                b.manifest = b.manifest_at = None
                b.took_config, b.config_at = False, None
                n = len(p.plan)
                go(p, S.CONFIGURED, Note(Code.STEP, (min(p.step + 1, n), n, b.offered or p.step_load)))
        for lease in ev.leases:
            if lease.ip and (lease.expires is None or lease.expires > now):
                self.identity.lease(lease.mac, lease.ip, lease.model or "", lease.expires, now)
                if lease.mac.lower() in self.phones:
                    self.phones[lease.mac.lower()].ip = lease.ip
        self._defaults_stale = True
        return []

    def _timer(self, ev: Timer, now: float) -> list[Output]:
        out: list[Output] = []
        for mac in self.identity.expired(now):
            self.identity.forget(mac)
        for p in list(self.phones.values()):
            d = self._deadline(p)
            if d is None or d > now:
                continue
            b = p.boot
            self._touched.add(p.mac)
            if b.signed_at is not None and not b.took_config and p.state != S.STUCK:
                out += self._run(p, Signal.TRUST_TIMEOUT, now, None)
            elif p.state == S.CONFIGURED:
                out += self._run(p, Signal.SETTLED, now, None)
            elif p.state == S.DOWNLOADING:
                out += self._run(p, Signal.STALLED, now, None)
            elif p.state == S.REBOOTING:
                out += self._run(p, Signal.NO_RETURN, now, None)
        return out

    # ---- the table --------------------------------------------------------------------------------------------
    def _deadline(self, p: Phone) -> float | None:
        b = p.boot
        if b.signed_at is not None and not b.took_config and p.state != S.STUCK:
            return b.signed_at + TRUST_WAIT_S
        if p.state == S.CONFIGURED and b.took_config and not b.manifest and b.config_at is not None:
            return b.config_at + SETTLE_S
        if p.state == S.DOWNLOADING:
            return max(b.progress_at, b.manifest_at or 0) + (STALL_S if b.took_firmware else MANIFEST_WAIT_S)
        if p.state == S.REBOOTING:
            return b.progress_at + REBOOT_S
        return None

    def _run(self, p: Phone, signal: Signal, ts: float, arg) -> list[Output]:
        t = transition(p.state, signal)
        if t is None:
            return []
        before = (p.state, p.note, p.step, p.current, p.vid)
        out = t.action(self, p, ts, arg)
        if p.state not in t.targets:
            raise TransitionError(f"{t.action.__name__} took {p.mac} from {before[0].value} to {p.state.value}, "
                                  f"not one of {[s.value for s in t.targets]}")
        if (p.state, p.note, p.step, p.current, p.vid) != before:      # a new VID is news for its row too
            out.append(self._changed(p, ts))
        return out

    def _changed(self, p: Phone, ts: float) -> PhoneChanged:
        p.timeline = (p.timeline + [(ts, p.state.value, p.note)])[-TIMELINE:]
        n = len(p.plan)
        return PhoneChanged(ts, p.mac, p.state, p.note, min(p.step + 1, n) if n else 0, n, p.current)

    def _new(self, mac: str, model: str, ts: float) -> tuple[Phone, list[Output]]:
        p = self.phones[mac] = Phone(mac, model=model, last=ts)
        p.plan, p.step = self.plan(p).steps, 0
        out: list[Output] = [self._changed(p, ts)]
        images = self.lib.upgradable(model) if model else None
        if images:
            go(p, S.STUCK, Note(Code.NOT_UPGRADABLE, images))
            out.append(self._changed(p, ts))
        return p, out

    # ---- the workers' table -------------------------------------------------------------------------------------
    def _simulate(self, p: Phone, asked: str) -> str | None:
        """What a config (or term file) named `asked` would name if the phone asked it now (nothing changes)."""
        sim = copy.deepcopy(p)
        name = classify(asked)
        fact = FileAsked(sim.last, sim.ip or "0.0.0.0", asked)
        for signal in read(sim, name, fact):
            t = transition(sim.state, signal)
            if t is not None:
                t.action(self, sim, sim.last, (name, fact))
        return sim.step_load

    def _answer(self, p: Phone) -> Answer:
        holder = self.identity.of(p.mac)
        ip = p.ip if holder is not None and holder.ip == p.ip and p.ip else None
        is_7940 = not p.model or p.model == LOADER_7940_MODEL or self.lib.is_7940(p.model)
        config = self._simulate(p, "OS79XX.TXT" if is_7940 else f"SEP{p.mac.upper()}.cnf.xml")
        sip = self._simulate(p, "SIPDefault.cnf") if is_7940 else config
        term_name = self.lib.term_of(p.model) if p.model else None
        # Nothing left to offer (stuck): the term file it already got, so a looping factory-reset phone is
        # served the same file and stays stuck, rather than being handed whatever the library holds.
        term = (self._simulate(p, term_name) or p.term_served) if term_name else None
        return Answer(p.mac, ip, p.model, config, sip, term)

    def _answers_out(self) -> list[Output]:
        rows = []
        for mac in sorted(self._touched):
            p = self.phones.get(mac)
            if p is None:
                continue
            row = self._answer(p)
            if self._answers.get(mac) != row:
                self._answers[mac] = row
                rows.append(row)
        self._touched.clear()
        defaults = None
        if self._defaults_stale:
            self._defaults_stale = False
            found = []
            for model in self.lib.models():
                steps = self.lib.planner(model, None, None, frozenset()).steps
                if steps:
                    found.append((model, steps[0]))
                # what an MPP phone's profile names when the core knows nothing else of it (generated.py)
                mpp = self.lib.planner(model, None, MPP, frozenset()).steps
                if mpp and protocol(mpp[0]) == MPP:
                    found.append((f"{model}-3PCC", mpp[0]))
            if tuple(found) != self._defaults:
                self._defaults = defaults = tuple(found)
        if not rows and defaults is None:
            return []
        self._version += 1
        return [Answers(self._version, tuple(rows), defaults)]

    def table(self) -> Answers:
        """The whole table as one change (for a worker that starts, or restarts, empty)."""
        return Answers(self._version, tuple(self._answers[m] for m in sorted(self._answers)), self._defaults or ())

