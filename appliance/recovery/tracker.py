"""Sans-I/O per-phone state machine: bus events in, phone.state / phone.load events out.

Fed with plain dicts shaped like rows of the events table (kind, ts, mac, ip,
file, model, ...); `replan(phone)` supplies the plan so this module needs no
catalog.  A phone is "done" when it takes the config naming its target and
fetches no load; "stuck" always carries a diagnosis a tech can act on.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from appliance import events as E
from appliance.firmware.models import by_name

TRUST_WAIT_S = 60.0
STALL_S = 30.0
DONE_WAIT_S = 20.0
# DHCP and the file service write the bus from different processes in batches, so a phone's
# last component may show up after its next lease; a return with no component waits this long.
BACK_GRACE_S = 4.0
# File events from an address whose lease is not on the bus yet (DHCP flushes its events every
# 0.2 s, a phone asks for its config milliseconds after the ACK): kept, per address and bounded,
# until the ACK names the phone; dropping them once left a phone told the stone it had just taken.
EARLY_PER_IP = 32
EARLY_IPS = 256
EARLY_S = 30.0
# States whose detail is an action for the tech ("waiting" ends by itself when the phone restarts)
NEEDS_TECH = ("stuck", "waiting")
# Old 7940/60 loaders send no model in option 60; both models run the same P003 loads.
LOADER_7940_MODEL = "CP-7940G"


@dataclass
class Phone:
    mac: str
    model: str = ""
    ip: str = ""
    current: str | None = None
    plan: list[str] = field(default_factory=list)
    step: int = 0
    state: str = "seen"
    diagnosis: str = ""
    offered: str | None = None
    loads_taken: bool = False
    components: int = 0
    asked_signed_at: float | None = None
    took_config: bool = False
    rejected: set[str] = field(default_factory=set)
    last: float = 0.0
    vendor_class: str | None = None
    back_at: float | None = None
    trust_boots: int = 0
    file_ts: list[float] = field(default_factory=list)
    applied: int = 0      # every bus event up to this id is in this memory (set when it is saved)
    resume_after: int = 0  # a restored phone's `applied`: a restarted tracker skips its events up to here
    timeline: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return self.plan[-1] if self.plan else self.current

    @property
    def step_load(self) -> str | None:
        """The load this phone's config names now: its plan's current step, else what it runs."""
        return self.plan[min(self.step, len(self.plan) - 1)] if self.plan else self.current

    def memory(self) -> dict:
        """What the state machine knows beyond the phones table's columns (kept in its `hints`),
        so a restarted file service resumes each phone where it was instead of from scratch."""
        return {k: getattr(self, k) for k in MEMORY} | {"rejected": sorted(self.rejected)}

    @classmethod
    def from_row(cls, row: dict) -> "Phone":
        """The phone as a phones-table row (store.phone) recorded it; missing or odd memory is skipped."""
        hints = row.get("hints") if isinstance(row.get("hints"), dict) else {}
        p = cls(str(row["mac"]), model=row.get("model") or "", ip=row.get("ip") or "",
                current=row.get("current_load"), plan=[str(x) for x in row.get("plan") or []],
                step=int(row.get("step") or 0), state=row.get("state") or "seen",
                diagnosis=row.get("diagnosis") or "")
        mem = hints.get("memory") if isinstance(hints.get("memory"), dict) else {}
        for key, types in MEMORY.items():
            if key in mem and isinstance(mem[key], types):
                setattr(p, key, mem[key])
        p.file_ts = [float(x) for x in p.file_ts if isinstance(x, (int, float))]
        p.rejected = {str(x) for x in mem.get("rejected") or [] if isinstance(x, str)}
        p.timeline = [tuple(t) for t in hints.get("timeline") or [] if isinstance(t, list) and len(t) == 3]
        return p


# Phone fields kept in hints["memory"], with the JSON types each may come back as (rejected: a list)
_OPT_NUM, _OPT_STR = (int, float, type(None)), (str, type(None))
MEMORY = {"offered": _OPT_STR, "loads_taken": (bool,), "components": (int,), "asked_signed_at": _OPT_NUM,
          "took_config": (bool,), "last": (int, float), "vendor_class": _OPT_STR, "back_at": _OPT_NUM,
          "trust_boots": (int,), "file_ts": (list,), "applied": (int,)}


def _ts(ev: dict) -> float:
    return float(ev.get("ts") or 0.0)


def _no_manifest(model: str) -> str:
    """The diagnosis for a model whose loads have no .loads manifest (reference §0.0 item 10), else ""."""
    m = by_name(model) if model else None
    if m is None or m.manifest:
        return ""
    return (f"not upgradable by manifest ({m.name} firmware is {m.images or 'images'} files with no .loads "
            "manifest; the station cannot offer it a load: upgrade it by hand)")


class Tracker:
    def __init__(self, replan: Callable[[Phone], list[str]], reject_hint: Callable[[Phone], str] | None = None,
                 reset_keys: Callable[[str], str | None] | None = None):
        self.replan = replan
        self.reject_hint = reject_hint or (lambda p: "")
        self.reset_keys = reset_keys or (lambda model: None)
        self.phones: dict[str, Phone] = {}
        self.by_ip: dict[str, str] = {}
        self.early: OrderedDict[str, list[dict]] = OrderedDict()

    def restore(self, phones: Iterable[Phone]) -> None:
        """Phones as the station last recorded them (a restart mid-plan resumes each one)."""
        for p in phones:
            p.resume_after = p.applied
            if p.plan and p.step_load == p.current and p.step_load != p.plan[-1] and not p.loads_taken:
                p.plan, p.step = self.replan(p), 0    # recorded between taking a step and its re-plan
            self.phones[p.mac] = p
            if p.ip:
                self.by_ip[p.ip] = p.mac

    def _go(self, p: Phone, ts: float, state: str, detail: str = "") -> list[dict]:
        p.state, p.last = state, ts
        p.diagnosis = detail if state in NEEDS_TECH else ""
        p.timeline.append((ts, state, detail))
        n = len(p.plan)
        return [{"kind": E.PHONE_STATE, "source": "tracker", "ts": ts, "mac": p.mac, "state": state, "detail": detail,
                 "step": min(p.step + 1, n) if n else 0, "steps": n, "load": p.current, "diagnosis": p.diagnosis or None}]

    def feed(self, ev: dict) -> list[dict]:
        kind, ts = ev.get("kind", ""), _ts(ev)
        if kind in (E.DHCP_DISCOVER, E.DHCP_ACK):
            return self._dhcp(ev, ts)
        if kind == E.PHONE_RETRY:
            return self._retry(ev, ts)
        if not kind.startswith("file."):
            return []
        mac = self.by_ip.get(ev.get("ip") or "")
        if not mac:
            self._keep_early(ev)
            return []
        if self.phones[mac].state == "stuck":
            return []  # a diagnosis stays until the tech acts (phone.retry): the phone keeps looping
        return self._file(self.phones[mac], kind, ev.get("file", ""), ev, ts)

    def _keep_early(self, ev: dict) -> None:
        ip = ev.get("ip")
        if not ip:
            return
        kept = self.early.setdefault(ip, [])
        self.early.move_to_end(ip)
        kept.append(ev)
        del kept[:-EARLY_PER_IP]
        now = _ts(ev)
        while self.early and (len(self.early) > EARLY_IPS or
                              _ts(next(iter(self.early.values()))[-1]) < now - EARLY_S):
            self.early.popitem(last=False)     # least recently heard from first

    def _dhcp(self, ev: dict, ts: float) -> list[dict]:
        mac = (ev.get("mac") or "").lower()
        if not mac:
            return []
        out: list[dict] = []
        p = self.phones.get(mac)
        if p is None:
            p = self.phones[mac] = Phone(mac, model=ev.get("model") or "")
            if why := _no_manifest(p.model):
                out += self._go(p, ts, "stuck", why)
            else:
                p.plan = self.replan(p)
                out += self._go(p, ts, "seen", f"model {p.model or '?'}")
        elif ev.get("model") and not p.model:
            p.model = ev["model"]
            if why := _no_manifest(p.model):
                out += self._go(p, ts, "stuck", why)
            else:
                p.plan = self.replan(p)
        out += self._vendor_class(p, ev.get("vendor_class"), ts)
        ack = ev.get("kind") == E.DHCP_ACK
        if ack and ev.get("ip"):
            p.ip = ev["ip"]
            self.by_ip[p.ip] = mac
        # A lease older than files already seen from the phone began a boot those files belong to
        # (DHCP and the file service write the bus separately): old news, not another reboot.
        fresh = ack and ts >= p.last
        if fresh and p.asked_signed_at is not None and not p.took_config and p.state != "stuck":
            p.trust_boots += 1
            out += self._trust_stuck(p, ts)
        if fresh and p.state in ("rebooting", "downloading", "configured") and p.loads_taken:
            out += self._came_back(p, ts)
        if ack and ev.get("ip"):
            late = sorted((e for e in self.early.pop(ev["ip"], []) if _ts(e) >= ts), key=_ts)
            for e in late:                     # this lease's files, read before the lease itself
                if p.state != "stuck":
                    out += self._file(p, e.get("kind", ""), e.get("file", ""), e, _ts(e))
        return out

    def _vendor_class(self, p: Phone, vc: str | None, ts: float) -> list[dict]:
        """Old 7940/60 images send option 60 without a model; gaining one after a load means the load took (§1.3)."""
        if vc is None:
            return []
        vc = vc.replace("\x00", "").strip()
        before, p.vendor_class = p.vendor_class, vc
        if before is not None and before.endswith("IP Phone") and vc != before and "CP-79" in vc and p.loads_taken and p.offered:
            p.components = max(p.components, 1)
            return self.learn(p.mac, p.offered, "option60", ts)
        return []

    def learn(self, mac: str, load: str, how: str, ts: float) -> list[dict]:
        """The phone's running load became known (completed step, option 60, DeviceInformationX)."""
        p = self.phones.get(mac)
        if p is None or not load or load == p.current:
            return []
        p.current = load
        out = [{"kind": E.PHONE_LOAD, "source": "tracker", "ts": ts, "mac": mac, "load": load, "how": how}]
        if p.state in ("seen", "configured", "rebooting") and not p.loads_taken:
            p.plan, p.step = self.replan(p), 0
            if not p.plan or p.plan[-1] == load:
                p.offered = load
        return out

    def _retry(self, ev: dict, ts: float) -> list[dict]:
        p = self.phones.get((ev.get("mac") or "").lower())
        if p is None:
            return []
        p.rejected.clear()
        p.loads_taken, p.components, p.asked_signed_at, p.took_config = False, 0, None, False
        if why := _no_manifest(p.model):
            return self._go(p, ts, "stuck", why)
        p.plan, p.step = self.replan(p), 0
        return self._go(p, ts, "seen", f"plan restarted on request ({ev.get('by') or 'api'})")

    def _came_back(self, p: Phone, ts: float, settle: bool = False) -> list[dict]:
        if p.components == 0 and not settle:
            p.back_at = ts
            return []
        p.loads_taken, p.back_at = False, None
        if p.components == 0:
            p.rejected.add(p.offered or "")
            new = self.replan(p)
            if new and new[0] not in p.rejected:
                p.plan, p.step = new, 0
                return self._go(p, ts, "rebooting", f"load {p.offered} rejected; moving to {new[0]}")
            hint = self.reject_hint(p)
            return self._go(p, ts, "stuck", f"load {p.offered} rejected (Auth Fail / File auth error / Load rejected HC); {hint}".rstrip("; "))
        out = self.learn(p.mac, p.offered or "", "step", ts) if p.offered != p.current else []
        p.plan = self.replan(p)
        p.step = 0
        return out + self._go(p, ts, "rebooting", f"now on {p.current}")

    def _file(self, p: Phone, kind: str, name: str, ev: dict, ts: float) -> list[dict]:
        low = name.lower()
        p.last = max(p.last, ts)
        if p.back_at is not None:
            if kind == E.FILE_DONE and ts <= p.back_at and not low.endswith(".loads"):
                p.components += 1
                return self._came_back(p, p.back_at)
            if ts > p.back_at:
                return self._came_back(p, p.back_at, settle=True) + self._file(p, kind, name, ev, ts)
        if kind == E.FILE_NOT_FOUND and not (low.endswith(".sgn") or low.startswith(("ctl", "itl"))):
            if low.endswith(".cnf.xml") or low.endswith(".loads") or p.loads_taken:
                return self._go(p, ts, "stuck", f"station does not have {name}: add it to the firmware library")
            return []
        if low.endswith(".cnf.xml.sgn") or low.startswith(("itl", "ctl")):
            if p.asked_signed_at is None and low.endswith(".sgn"):
                p.asked_signed_at = ts
            return []
        if kind != E.FILE_DONE:
            if kind == E.FILE_REQUEST and p.loads_taken and p.state != "downloading":
                return self._go(p, ts, "downloading", name)
            return []
        if low == "os79xx.txt" and not p.model:
            p.model = LOADER_7940_MODEL
            p.plan, p.step = self.replan(p), 0
        if (low.startswith("sep") and low.endswith(".cnf.xml")) or low == "os79xx.txt":
            out: list[dict] = []
            if p.loads_taken and p.back_at is None and p.components > 0:
                # asking for its config again after taking a load's components means it rebooted onto it,
                # whether or not its new lease is on the bus yet (DHCP ACK and config are ~30 ms apart)
                out += self._came_back(p, ts)
            p.took_config, p.asked_signed_at = True, None
            p.offered = p.plan[p.step] if p.plan else p.current
            n = len(p.plan)
            return out + self._go(p, ts, "configured", f"step {min(p.step + 1, n)} of {n}: {p.offered}")
        if low.endswith(".loads"):
            # components may be on the bus ahead of their .loads (writers flush separately): count by time
            p.loads_taken, p.components = True, sum(1 for x in p.file_ts if x >= ts)
            return self._go(p, ts, "downloading", name)
        p.file_ts = (p.file_ts + [ts])[-32:]
        if p.loads_taken:
            p.components += 1
            return self._go(p, ts, "downloading", f"{name} {ev.get('bytes', '')}/{ev.get('total', '')}".strip())
        return []

    def _settled(self, p: Phone, now: float) -> list[dict]:
        """Took its config and fetched no load: it runs what the config named.  On a stone (told it before
        the station learned it was already there) it stays put until restarted, so say so."""
        if p.offered == p.target:
            p.current = p.offered
            return self._go(p, now, "done", f"on {p.current}")
        out = self.learn(p.mac, p.offered or "", "settled", now)
        nxt = p.step_load
        if nxt == p.current:
            return out + self._go(p, now, "done", f"on {p.current}")
        return out + self._go(p, now, "waiting", f"already on {p.current}, which its config named, so it stays there: "
                              f"restart it (unplug power) to go on to {nxt}")

    def _trust_stuck(self, p: Phone, ts: float) -> list[dict]:
        """Asked for the signed config and came back (or waited out) without taking the unsigned one."""
        keys = self.reset_keys(p.model)
        reset = f"factory reset ({keys})" if keys else "factory reset"
        return self._go(p, ts, "stuck", "holds another cluster's trust list and never took the unsigned config: "
                        f"erase it (Settings > Security > Trust List, **# to unlock, Erase) or {reset}")

    def offer(self, mac: str, ts: float, pending: Iterable[dict] = ()) -> tuple[bool, str | None]:
        """(known, load): what the phone is told if it takes its config at `ts`, without changing any state.

        Runs the very transition the config's file.done will cause, on a copy of the phone, after
        `pending` (this process's transfer events not yet on the bus), so the answer the file service
        renders and the step the tracker records later are the same."""
        p = self.phones.get(mac)
        if p is None:
            return False, None
        trial = copy.deepcopy(p)
        self.phones[mac] = trial
        try:
            for ev in pending:
                if self.by_ip.get(ev.get("ip", "")) == mac and str(ev.get("kind", "")).startswith("file."):
                    self.feed(ev)
            self.feed({"kind": E.FILE_DONE, "ts": ts, "ip": trial.ip, "file": f"SEP{mac.upper()}.cnf.xml"})
        finally:
            self.phones[mac] = p
        return True, trial.step_load

    def tick(self, now: float) -> list[dict]:
        out: list[dict] = []
        for p in self.phones.values():
            if p.back_at is not None and now - p.back_at > BACK_GRACE_S:
                out += self._came_back(p, p.back_at, settle=True)
            if p.state in ("done", "stuck"):
                continue
            if p.asked_signed_at is not None and not p.took_config and now - p.asked_signed_at > TRUST_WAIT_S:
                out += self._trust_stuck(p, now)
            elif p.state == "downloading" and now - p.last > STALL_S:
                out += self._go(p, now, "stuck", f"transfer stalled since {p.last:.0f}")
            elif p.state == "configured" and not p.loads_taken and now - p.last > DONE_WAIT_S and p.offered:
                out += self._settled(p, now)
        return out
