"""What each transition does to a phone: one function per action, referenced directly by state.TABLE.

Every action takes (ctx, phone, ts, arg) and returns outputs; `ctx` is the
core (for its Library and `learn`), `arg` what the signal came with (the
fact, or (Name, fact) for file facts).  An action may only end in the states
its row of the table lists; the core checks.  Pure: no I/O.
"""
from __future__ import annotations

from typing import Any, Protocol

from appliance.firmware.names import Kind, Name, classify
from appliance.firmware.versions import SIP, version_key

from .diagnosis import Code, Need, Note, Why
from .facts import LoadLearned, LoadReported, Output, PollPage
from .facts import PhoneState as S
from .library import Library
from .phone import Boot, Phone
from .plan import HardwareFloor, Plan


class Context(Protocol):
    """What an action may ask of the core (tracker.Tracker is one)."""
    lib: Library

    def plan(self, p: Phone) -> Plan: ...

    def floor(self, p: Phone) -> HardwareFloor | None: ...

    def term_model(self, name: Name) -> str | None: ...

    def conversion_need(self, p: Phone) -> Need | None: ...

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
    convert_need = ctx.conversion_need(p)
    if convert_need is not None:
        # [upgrade] convert asks what cannot be done (no licence, a model or VID Cisco excludes): its config names
        # the load it runs, and the tech reads what is missing (phone-families.md §3.6: refuse without a licence).
        p.plan, p.step = [], 0
        b.offered, b.term, b.took_config, b.config_at = p.current, None, True, ts
        go(p, S.STUCK, Note(Code.CONVERT_REFUSED, (convert_need,)))
        p.stuck_on = "conversion"
        return
    b.offered, b.term, b.took_config, b.config_at = p.step_load, None, True, ts
    floor_need = _floor_need(ctx, p)
    if floor_need is not None:
        # Nothing in the library at or above its floor: its config names the load it runs (or none), never one
        # it would refuse, and the tech reads which load to add.
        go(p, S.STUCK, Note(Code.NO_LOAD, (floor_need,)))
        p.stuck_on = "missing"
    elif b.offered is None:
        images = ctx.lib.upgradable(p.model)
        need = ctx.plan(p).missing
        go(p, S.STUCK, Note(Code.NOT_UPGRADABLE, images) if images else Note(Code.NO_LOAD, (need,)))
        p.stuck_on = "missing"
    elif p.current and b.offered.lower() == p.current.lower() and b.offered == p.target:
        go(p, S.DONE, Note(Code.ON_LOAD, (p.current,)))
    else:
        n = len(p.plan)
        go(p, S.CONFIGURED, Note(Code.STEP, (min(p.step + 1, n), n, b.offered)))


def _floor_need(ctx: Context, p: Phone) -> Need | None:
    """What to add when the phone's known VID puts every load of the library under its floor, else None."""
    if not p.vid:
        return None
    need = ctx.plan(p).missing
    return need if need is not None and need.kind == "floor" else None


def _below_floor(ctx: Context, p: Phone, load: str) -> bool:
    """The phone's VID is known and `load` is under its floor (either reading: it refused it, so the stricter)."""
    floor = ctx.floor(p)
    key = version_key(load)
    return floor is not None and key is not None and key < (version_key(floor.safe) or ())


def _hardware_need(ctx: Context, p: Phone, load: str, refused: tuple[str, ...]) -> Need | None:
    """For a refusal of `load` with no stepping stone in play and the VID unknown: the model's highest documented
    floor, when `load` is under it (a load over every floor is not refused for its hardware, as far as known)."""
    found = ctx.lib.floor(p.model, None) if p.model else None
    key = version_key(load)
    if not found or key is None or key >= (version_key(found[1]) or ()):
        return None
    low, safe = found
    return Need("floor", p.model, p.protocol_hint, low or safe, safe, refused=refused)


def _hardware_unknown(ctx: Context, p: Phone) -> list[Output]:
    """Its page may say its VID now (the config that named the load turned its web server on): read it again."""
    return [PollPage(p.mac, p.ip)] if p.ip and not p.vid and ctx.lib.floor(p.model, None) else []


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
    if p.stuck_on == "conversion" and ctx.conversion_need(p) is None:
        return configure(ctx, p, ts, arg)         # its licence was added (or [upgrade] convert changed)
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
    need = plan.missing
    # A refusal with no stepping stone in play (a 7800/8800: no rule applies) is not the signing key: on a
    # model with documented hardware floors it is most likely "Load rejected HC" (phone-families.md §1.3-1.4).
    no_stone = not stone and not ctx.lib.has_stones(p.model) and (need is None or need.kind != "stone")
    out: list[Output] = []
    hw = _hardware_need(ctx, p, load, tuple(sorted(p.rejected))) if no_stone and not p.vid else None
    if _below_floor(ctx, p, load):
        why = Why.BELOW_FLOOR
    elif hw is not None:
        why = Why.HARDWARE
        out = _hardware_unknown(ctx, p)
    elif no_stone:
        why = Why.REFUSED
        if need is not None and need.kind == "other":     # no stone exists for it: what it lacks is another load
            need = Need("newer", need.model, need.proto, refused=need.refused)
    hardware = why in (Why.BELOW_FLOOR, Why.HARDWARE)
    # With nothing left to plan, step_load falls back to the load it runs; a phone refused for its hardware
    # stays stuck with what to add, when something is missing (its config names that load, so it keeps it).
    if nxt and nxt not in p.rejected and (p.plan or not hardware or need is None):
        p.boot = Boot(offered=nxt, took_config=True, config_at=ts)
        go(p, S.CONFIGURED, Note(Code.REJECTED_NEXT, (load, why, len(p.plan), nxt)))
        return out
    if hardware and (need is None or need.kind != "floor"):
        need = hw or need
    if term:
        go(p, S.STUCK, Note(Code.TERM_LOOP, (term, load, need)))
    else:
        go(p, S.STUCK, Note(Code.REJECTED_STUCK, (load, why, need)))
    p.stuck_on = "missing"
    return out


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
    taken, want = _taken(ctx, b)
    if want and taken >= want:
        go(p, S.REBOOTING, Note(Code.INSTALLING, (b.offered,)))
    else:
        go(p, S.DOWNLOADING, Note(Code.DOWNLOADING, (name.path, taken, want)))
    return []


def _taken(ctx: Context, b: Boot) -> tuple[int, int]:
    """(files of the load taken, files the phone needs): a 7800/8800 fetches only its own platform's
    (phone-families.md §1.2), which the files it took so far say; before that, or for one list, the manifest's."""
    load = b.offered or ""
    for files in ctx.lib.platforms_of(load):
        mine = set(files)
        if mine and b.files & mine:
            return len(b.files & mine), len(mine)
    return len(b.files), ctx.lib.components_of(load)


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


def _hardware_seen(p: Phone, fact: Any) -> bool:
    """Keep what its page says of its hardware; True when its VID is new (its floor may have changed)."""
    if not isinstance(fact, LoadReported):
        return False
    if fact.hardware_revision:
        p.hardware_revision = fact.hardware_revision[:16]
    if fact.vid and fact.vid != p.vid:
        p.vid = fact.vid
        return True
    return False


def reported(ctx: Context, p: Phone, ts: float, fact: LoadReported) -> list[Output]:
    new_vid = _hardware_seen(p, fact)
    out: list[Output] = []
    if fact.load is None:
        p.reported = fact.raw[:80] or None
    else:
        p.reported = None
        out = learn(p, fact.load, fact.how, ts)
    if out or new_vid:
        replan(ctx, p)
        if p.state == S.WAITING or (p.state == S.CONFIGURED and p.step_load == p.current):
            offer(ctx, p, ts)
        elif new_vid and p.state == S.STUCK:
            _refloor(ctx, p)
    return out


def _refloor(ctx: Context, p: Phone) -> None:
    """A stuck phone's VID arrived after its diagnosis: say its floor instead of the model's highest."""
    need = _floor_need(ctx, p)
    if p.note.code == Code.REJECTED_STUCK and len(p.note.args) == 3 and isinstance(p.note.args[0], str):
        load = p.note.args[0]
        if need is not None or _below_floor(ctx, p, load):
            go(p, S.STUCK, Note(Code.REJECTED_STUCK, (load, Why.BELOW_FLOOR, need or p.note.args[2])))
            p.stuck_on = "missing"
    elif need is not None and p.note.code == Code.NO_LOAD:
        go(p, S.STUCK, Note(Code.NO_LOAD, (need,)))
        p.stuck_on = "missing"


def keep(ctx: Context, p: Phone, ts: float, arg: Any) -> list[Output]:
    """Mid-install its page still shows the old load (stale); its hardware is what it is, so that is kept.

    Mid-download (not yet rebooting, when its page may already be the new load's) the load it shows is still
    the one it ran before this step: when nothing earlier said what that was (its page read only after it had
    taken its config, on a loaded station), it is the phone's load before, though never its current load."""
    _hardware_seen(p, arg)
    if (p.state == S.DOWNLOADING and isinstance(arg, LoadReported) and arg.load and p.before is None
            and p.current is None and arg.load != p.boot.offered):
        p.before = arg.load
        return [LoadLearned(ts, p.mac, arg.load, arg.how)]     # what it runs now, said; its current stays unknown
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
    taken, want = _taken(ctx, b)
    if not want or taken >= want:
        go(p, S.REBOOTING, Note(Code.INSTALLING, (b.offered,)))
        return []
    go(p, S.STUCK, Note(Code.STALLED, (b.offered, taken, want)))
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
