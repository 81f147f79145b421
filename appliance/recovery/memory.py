"""The phone's memory across restarts: a Phone to the phones table's row and back.

The row's columns hold what the API shows (state, plan, loads); `hints`
holds the rest (the per-boot record, rejected loads, the note as code and
arguments) so a restarted file service resumes each phone where it was.
Anything missing or odd in a row is skipped, never trusted.  Pure: no I/O.
"""
from __future__ import annotations

from .diagnosis import Code, Note
from .facts import PhoneState as S
from .identify import MAX_REVISION, vid_text
from .phone import Boot, Phone
from .words import say

_BOOT_FIELDS = (("offered", (str,)), ("term", (str,)), ("manifest", (str,)), ("manifest_at", (int, float)),
                ("config_at", (int, float)), ("signed_at", (int, float)), ("progress_at", (int, float)),
                ("loader", (bool,)), ("app", (bool,)), ("took_config", (bool,)))


def boot_to_dict(b: Boot) -> dict:
    return {"offered": b.offered, "term": b.term, "manifest": b.manifest, "manifest_at": b.manifest_at,
            "files": sorted(b.files), "loader": b.loader, "app": b.app, "config_at": b.config_at,
            "took_config": b.took_config, "signed_at": b.signed_at, "progress_at": b.progress_at}


def boot_from_dict(d: dict) -> Boot:
    b = Boot()
    for key, types in _BOOT_FIELDS:
        if isinstance(d.get(key), types):
            setattr(b, key, d[key])
    b.files = set(_strings(d.get("files")))
    return b


def diagnosis(p: Phone) -> str | None:
    """The words a tech sees when the phone needs them (stuck or waiting), else None."""
    return say(p.note) or None if p.state.needs_tech else None


def to_row(p: Phone) -> dict:
    """The phones-table fields for a phone (the store adds first/last seen)."""
    return {"model": p.model or None, "ip": p.ip or None, "current_load": p.current, "target_load": p.target,
            "load_before": p.before, "plan": list(p.plan), "step": p.step, "state": p.state.value,
            "diagnosis": diagnosis(p),
            "hints": {"timeline": [[ts, state, say(note)] for ts, state, note in p.timeline], "memory": {
                "how": p.how, "before": p.before, "protocol": p.protocol, "note": p.note.as_list(),
                "stuck_on": p.stuck_on, "rejected": sorted(p.rejected), "installed_app": p.installed_app,
                "term_served": p.term_served, "vid": p.vid, "hardware_revision": p.hardware_revision,
                "reported": p.reported, "converted_from": p.converted_from, "boot": boot_to_dict(p.boot),
                "last": p.last}}}


def from_row(row: dict) -> Phone:
    """The phone as a phones-table row recorded it.

    Raises:
        KeyError, TypeError, ValueError: a row without a usable MAC.
    """
    hints: dict = row["hints"] if isinstance(row.get("hints"), dict) else {}
    mem: dict = hints["memory"] if isinstance(hints.get("memory"), dict) else {}
    try:
        state = S(row.get("state") or "seen")
    except ValueError:
        state = S.SEEN
    p = Phone(str(row["mac"]).lower(), model=row.get("model") or "", ip=row.get("ip") or "",
              current=row.get("current_load"), plan=[str(x) for x in row.get("plan") or []],
              step=int(row.get("step") or 0), state=state)
    note = Note.from_list(mem.get("note"))
    if note is None:     # a row from before notes were typed: keep its words
        words = mem.get("detail") if isinstance(mem.get("detail"), str) else row.get("diagnosis")
        note = Note(Code.RESTORED, (str(words or ""),)) if words else Note(Code.SEEN)
    p.note = note
    for key in ("how", "before", "protocol", "stuck_on", "installed_app", "reported", "term_served",
                "converted_from"):
        if isinstance(mem.get(key), str):
            setattr(p, key, mem[key])
    p.vid = vid_text(mem.get("vid"))
    if isinstance(mem.get("hardware_revision"), str):
        p.hardware_revision = mem["hardware_revision"][:MAX_REVISION] or None
    p.rejected = set(_strings(mem.get("rejected")))
    p.boot = boot_from_dict(mem["boot"] if isinstance(mem.get("boot"), dict) else {})
    p.last = float(mem["last"]) if isinstance(mem.get("last"), (int, float)) else 0.0
    timeline: list = hints["timeline"] if isinstance(hints.get("timeline"), list) else []
    p.timeline = [(float(t[0]), str(t[1]), Note(Code.RESTORED, (str(t[2]),))) for t in timeline
                  if isinstance(t, list) and len(t) == 3 and isinstance(t[0], (int, float))]
    return p


def _strings(value) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []
