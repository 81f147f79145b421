"""What each transition does to a phone: one function per action, referenced directly by state.TABLE.

Every action takes (ctx, phone, ts, arg) and returns outputs; `ctx` is the
core (for its Library and `learn`), `arg` what the signal came with (the
fact, or (Name, fact) for file facts).  An action may only end in the states
its row of the table lists; the core checks.  Pure: no I/O.
"""
from __future__ import annotations

from typing import Any, Protocol

from appliance.firmware.names import Kind, Name, classify
from appliance.firmware.versions import SIP

from .diagnosis import Code, Note, Why
from .facts import LoadLearned, LoadReported, Output
from .facts import PhoneState as S
from .library import Library
from .phone import Boot, Phone
from .plan import Plan


class Context(Protocol):
    """What an action may ask of the core (tracker.Tracker is one)."""
    lib: Library

    def plan(self, p: Phone) -> Plan: ...

    def term_model(self, name: Name) -> str | None: ...

SETTLE_S = 20.0          # took its config, fetched nothing: it runs what it was named
MANIFEST_WAIT_S = 20.0   # a manifest and then silence: rejected (real phones fetch the first file at once)
STALL_S = 45.0           # a download that stopped part way
REBOOT_S = 300.0         # installed and not back: 79x1 flash writes take a minute or two
TRUST_WAIT_S = 60.0      # asked for the signed config and never took the unsigned one
LOADER_7940_MODEL = "CP-7940G"   # old 7940/60 loaders send no model in option 60; both run the same loads


# ---- helpers the actions share -----------------------------------------------------------------------
def go(p: Phone, state: S, note: Note) -> None:
    p.state, p.note = state, note
    if state != S.STUCK:
        p.stuck_on = ""


def replan(ctx: Context, p: Phone) -> None:
    p.plan, p.step = ctx.plan(p).steps, 0


def learn(p: Phone, load: str, how: str, ts: float) -> list[Output]:
    if not load or load == p.current:
        return []
    if p.before is None and p.current is None and how != "step":
        p.before = load
    p.current, p.how = load, how
    return [LoadLearned(ts, p.mac, load, how)]


def offer(ctx: Context, p: Phone, ts: float) -> None:
    """Name the plan's current step in this config (and say so)."""
    b = p.boot
    b.offered, b.term, b.took_config, b.config_at = p.step_load, None, True, ts
    if b.offered is None:
        images = ctx.lib.upgradable(p.model)
        need = ctx.plan(p).missing
        go(p, S.STUCK, Note(Code.NOT_UPGRADABLE, images) if images else Note(Code.NO_LOAD, (need,)))
        p.stuck_on = "missing"
    elif p.current and b.offered.lower() == p.current.lower() and b.offered == p.target:
        go(p, S.DONE, Note(Code.ON_LOAD, (p.current,)))
    else:
        n = len(p.plan)
        go(p, S.CONFIGURED, Note(Code.STEP, (min(p.step + 1, n), n, b.offered)))


def _name(arg: Any) -> Name | None:
    return arg[0] if isinstance(arg, tuple) and arg and isinstance(arg[0], Name) else None


# ---- actions ---------------------------------------------------------------------------------------------
def lease_seen(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    b = p.boot
    if b.signed_at is not None and not b.took_config and p.state != S.STUCK:
        trust(ctx, p)
    return []


def configure(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    name = _name(arg)
    p.boot = Boot(signed_at=p.boot.signed_at)
    if name is not None and name.path.lower().startswith("sip"):
        p.protocol = p.protocol or SIP        # SIPDefault.cnf / SIP<MAC>.cnf: a 7940/60 on SIP
    if p.model == "" and name is not None and name.path.upper() == "OS79XX.TXT":
        p.model = LOADER_7940_MODEL
    if not p.plan or (p.current and p.step_load == p.current and p.current != p.target):
        replan(ctx, p)
    offer(ctx, p, ts)
    return []


def configure_stuck(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    if p.stuck_on == "missing":
        plan = ctx.plan(p)
        p.plan, p.step = plan.steps, 0
        if p.step_load is not None and not plan.missing:
            return configure(ctx, p, ts, arg)
    p.boot = Boot(offered=p.step_load, took_config=True, config_at=ts, signed_at=p.boot.signed_at)
    return []


def installed(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    b = p.boot
    load = b.offered or (classify(b.manifest).load if b.manifest else None)
    out = learn(p, load or "", "step", ts)
    p.installed_app = load if b.app else None
    if p.plan and p.step < len(p.plan) and p.plan[p.step] == load:
        p.step += 1
        if p.step >= len(p.plan):
            replan(ctx, p)
    else:
        replan(ctx, p)
    if p.current and p.current == (p.plan[-1] if p.plan else p.current) and p.step >= len(p.plan) - 1 \
            and p.step_load == p.current:
        p.boot = Boot(offered=p.current, took_config=True, config_at=ts)
        go(p, S.DONE, Note(Code.ON_LOAD, (p.current,)))
        return out
    p.boot = Boot()
    offer(ctx, p, ts)
    return out


def rejected(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    b = p.boot
    load = b.offered or (classify(b.manifest).load if b.manifest else None) or "an unknown load"
    term = b.term
    stone = bool(p.plan) and load != p.plan[-1]      # offered on the way to the target, not the target
    p.rejected.add(load)
    plan = ctx.plan(p)
    p.plan, p.step = plan.steps, 0
    p.boot = Boot(signed_at=b.signed_at)
    nxt = p.step_load
    why = Why.STONE_REFUSED if stone else Why.KEY_CHANGE if not p.current else Why.REFUSED
    if nxt and nxt not in p.rejected:
        p.boot = Boot(offered=nxt, took_config=True, config_at=ts)
        go(p, S.CONFIGURED, Note(Code.REJECTED_NEXT, (load, why, len(p.plan), nxt)))
        return []
    if term:
        go(p, S.STUCK, Note(Code.TERM_LOOP, (term, load, plan.missing)))
    else:
        go(p, S.STUCK, Note(Code.REJECTED_STUCK, (load, why, plan.missing)))
    p.stuck_on = "missing"
    return []


def term_offered(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    """A factory-reset phone asked its term file: it was served the one listing `served` (reference §0.0 item 7);
    that load's files and the next config are then read as installing it."""
    name, fact = arg
    if not p.model:
        model = ctx.term_model(name)
        if model:
            p.model = model
            replan(ctx, p)
    p.boot.offered, p.boot.term = fact.served, name.path.lower()
    if fact.served:
        p.term_served = fact.served
    return []


def manifest(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    name, _ = arg
    b = p.boot
    if name.kind == Kind.MANIFEST and name.load and (not b.offered or b.offered.lower() != name.load.lower()):
        b.offered, b.term = name.load, None      # it installs what it fetched, whoever named it
    b.manifest, b.manifest_at, b.files, b.progress_at = name.key, ts, set(), ts
    b.loader = b.app = False
    go(p, S.DOWNLOADING, Note(Code.DOWNLOADING, (name.path, 0, 0)))
    return []


def manifest_while_stuck(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    """A stuck phone took a manifest (or term file) again.  When it is one it already refused -- a
    factory-reset phone looping on a term file it cannot verify asks it every few seconds -- it stays stuck
    with its diagnosis, rather than flickering to "downloading" and back; anything else is news."""
    name, _ = arg
    b = p.boot
    load = b.offered if name.kind == Kind.TERM else (name.load or b.offered)
    if load and load in p.rejected:
        b.manifest, b.manifest_at, b.files, b.progress_at = name.key, ts, set(), ts
        return []
    return manifest(ctx, p, ts, arg)


def component(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    name, _ = arg
    b = p.boot
    b.files.add(name.key)
    b.progress_at = ts
    want = ctx.lib.components_of(b.offered or "")
    if want and len(b.files) >= want:
        go(p, S.REBOOTING, Note(Code.INSTALLING, (b.offered,)))
    else:
        go(p, S.DOWNLOADING, Note(Code.DOWNLOADING, (name.path, len(b.files), want)))
    return []


def _stage(p: Phone, ts: float, name: Name, app: bool) -> list[Output]:
    """A 7940/60 took its loader (.sbn: it reboots, then fetches the .sb2) or its application (.sb2)."""
    b = p.boot
    if app:
        b.app = True
    else:
        b.loader = True
    b.progress_at = ts
    b.manifest = b.manifest or name.key
    b.offered = b.offered or name.load
    go(p, S.REBOOTING, Note(Code.INSTALLING, (b.offered,)) if app else Note(Code.FLASHING_LOADER, (name.path,)))
    return []


def loader(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    return _stage(p, ts, arg[0], app=False)


def app(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    return _stage(p, ts, arg[0], app=True)


def old_app(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    load = p.installed_app
    p.current, p.how, p.installed_app = None, None, None
    p.rejected.add(load or "")
    go(p, S.STUCK, Note(Code.OLD_APP, (load,)))
    return []


def signed_config(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    if p.boot.signed_at is None:
        p.boot.signed_at = ts
    return []


def missing(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    name, _ = arg
    if name.kind == Kind.TERM:
        go(p, S.STUCK, Note(Code.TERM_MISSING, (name.path, p.step_load)))
    else:
        go(p, S.STUCK, Note(Code.FILE_MISSING, (name.path,)))
    p.stuck_on = "missing"
    return []


def reported(ctx: Context, p: Phone, ts: float, fact: LoadReported) -> list[Output]:
    if fact.load is None:
        p.reported = fact.raw[:80] or None
        return []
    p.reported = None
    out = learn(p, fact.load, fact.how, ts)
    if out:
        replan(ctx, p)
        if p.state == S.WAITING or (p.state == S.CONFIGURED and p.step_load == p.current):
            offer(ctx, p, ts)
    return out


def keep(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    return []


def settled(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    out = learn(p, p.boot.offered or "", "settled", ts)
    replan(ctx, p)
    if p.step_load is None or p.step_load == p.current:
        go(p, S.DONE, Note(Code.ON_LOAD, (p.current,)))
    else:
        go(p, S.WAITING, Note(Code.RESTART_TO_GO_ON, (p.current, p.step_load)))
    return out


def stalled(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    b = p.boot
    if not b.took_firmware:
        return rejected(ctx, p, ts, arg)
    want = ctx.lib.components_of(b.offered or "")
    if not want:
        go(p, S.REBOOTING, Note(Code.INSTALLING, (b.offered,)))
        return []
    go(p, S.STUCK, Note(Code.STALLED, (b.offered, len(b.files), want)))
    return []


def no_return(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    go(p, S.STUCK, Note(Code.NO_RETURN, (p.boot.offered, int(REBOOT_S // 60))))
    return []


def trust(ctx: Context, p: Phone) -> None:
    go(p, S.STUCK, Note(Code.TRUST_LIST, (ctx.lib.reset_keys(p.model) or "",)))


def trust_stuck(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    trust(ctx, p)
    return []


def retry(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    p.rejected.clear()
    p.boot, p.installed_app = Boot(), None
    replan(ctx, p)
    go(p, S.SEEN, Note(Code.RETRIED, (getattr(arg, "by", "api"),)))
    return []
