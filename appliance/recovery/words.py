"""The words the station shows for a phone: its state and its note, for the store, API, report and dashboard.

One place, beside each other, so a tech reads the same sentence everywhere.
Plain and actionable: what happened, then what to do.  Citations live in
code comments and docs, never here.  Pure: no I/O.
"""
from __future__ import annotations

from appliance.firmware.versions import version_key

from .diagnosis import Code, Need, Note, Why
from .facts import PhoneState

STATE_WORDS = {
    PhoneState.SEEN.value: "seen on the network",
    PhoneState.CONFIGURED.value: "configuration served, phone checking its load",
    PhoneState.DOWNLOADING.value: "downloading firmware",
    PhoneState.REBOOTING.value: "installing and rebooting into the new load",
    PhoneState.WAITING.value: "waiting for the tech to restart it",
    PhoneState.DONE.value: "recovered",
    PhoneState.STUCK.value: "stuck",
}

WHY = {
    Why.KEY_CHANGE: "it could not verify the load's signature (Auth Fail / File auth error): its running load "
                    "predates the signing key that load uses",
    Why.STONE_REFUSED: "it refused the stepping stone, which old loads can verify, so the signing key is not why: "
                       "it may already run a newer load, or its hardware is too new for that load (Load rejected HC, "
                       "late-production phones)",
    Why.REFUSED: "it refused the load (Auth Fail / File auth error / Load rejected HC)",
    Why.BELOW_FLOOR: "its hardware will not run a load that old (Load rejected HC), so it keeps the load it runs",
    Why.HARDWARE: "it took the manifest and nothing else: on this model that is most likely its hardware refusing "
                  "the load (Load rejected HC), not a signing key",
}


def release(load: str) -> str:
    """A load ID as the release a tech looks for: sip78xx.11-0-1-11 -> 11.0(1), ...14-0-1-0201-169 -> 14.0(1)SR2."""
    key = version_key(load)
    if key is None or len(key) < 3:
        return load
    sr = f"SR{key[3]}" if len(key) > 3 and key[3] else ""
    return f"{key[0]}.{key[1]}({key[2]}){sr}"


def _short(model: str) -> str:
    """"CP-7841" -> "7841" (how a tech names the phone)."""
    return model.removeprefix("CP-") if model else "phone"


def _floor(n: Need) -> str:
    model = _short(n.model)
    other = f" ({n.high} or later to be safe: Cisco's notes differ)" if n.high and n.high != n.low else ""
    if n.vid:
        head = f"this {model} is {n.vid}: it needs {n.low} or later{other}"
    else:
        head = (f"its hardware may need a newer load: the highest documented floor for the {model} is "
                f"{n.low}{other}")
    newest = f"; the library's newest is {release(n.newest)} ({n.newest})" if n.newest else ""
    return (f"{head}{newest}: add a {model} load of {n.high or n.low} or later to the firmware library "
            "(its cmterm zip)")


def need(n: Need | None) -> str:
    """What to add, as a tech reads it."""
    if n is None:
        return "add a stepping stone to the firmware library"
    proto = f" {n.proto.upper()}" if n.proto else ""
    model = n.model or "this model"
    refused = f" (it refused {', '.join(n.refused)})" if n.refused else ""
    if n.kind == "stone":
        span = n.low if n.low == n.high else f"{n.low} to {n.high}"
        excl = f" (not {', '.join(n.excluded)})" if n.excluded else ""
        return f"add the{proto} {span} load for {model}{excl} to the firmware library (its cmterm zip){refused}"
    if n.kind == "floor":
        return _floor(n)
    if n.kind == "newer":
        return (f"the firmware library has no other{proto} load for {model} it could take: add a newer one "
                f"(its cmterm zip){refused}")
    if n.kind == "licence" and n.high:
        return (f"it is set to convert, and the {n.low} in the licences folder cannot be its licence ({n.high}): "
                f"put the {n.low} Cisco issued for this phone there and restart the phone, or take it out of "
                "[upgrade] convert")
    if n.kind == "licence":
        return (f"it is set to convert, and its licence {n.low} is not in the firmware volume's licences folder: "
                f"put the {n.low} Cisco issued for this phone there and restart the phone, or take it out of "
                "[upgrade] convert")
    if n.kind in ("convert model", "convert hardware"):
        vid = f" (this one is {n.vid})" if n.vid else ""
        return f"it cannot be converted: {n.high}{vid}; take it out of [upgrade] convert"
    if n.kind == "transition":
        return (f"converting a {_short(model)} from this release goes through a transition load: add its "
                "transition (TLexE2M) package to the firmware library")
    if n.kind == "convert minimum":
        kind = "multiplatform" if n.proto == "mpp" else "Enterprise"
        return (f"Cisco converts it only from {kind} {n.low} or later, and the library has no such load for "
                f"{model}: add one (its cmterm zip)")
    if n.kind == "target":
        return f"add a complete{proto} load for {model} to the firmware library (its cmterm zip){refused}"
    return f"the firmware library has no other load it could take: add a stepping stone for {model}{refused}"


def _say(code: Code, a: tuple) -> str:
    if code == Code.SEEN:
        return ""
    if code == Code.ON_LOAD:
        return f"on {a[0]}"
    if code == Code.STEP:
        return f"step {a[0]} of {a[1]}: {a[2]}"
    if code == Code.DOWNLOADING:
        return f"{a[0]} ({a[1]}/{a[2] or '?'})" if a[1] else str(a[0])
    if code == Code.INSTALLING:
        return f"installing {a[0]}"
    if code == Code.FLASHING_LOADER:
        return f"flashing the loader {a[0]}; after its reboot it fetches the .sb2"
    if code == Code.REJECTED_NEXT:
        return f"rejected {a[0]}: {WHY.get(a[1], WHY[Why.REFUSED])}; now step 1 of {a[2]}: {a[3]}"
    if code == Code.REJECTED_STUCK:
        return f"rejected {a[0]}: {WHY.get(a[1], WHY[Why.REFUSED])}; {need(a[2])}"
    if code == Code.TERM_LOOP:
        add = need(a[2]) if a[2] else f"add the package of a stepping-stone load that carries {a[0]}"
        return f"factory-reset phone loops on {a[0]}: it cannot verify the one served (for {a[1]}); {add}"
    if code == Code.TERM_MISSING:
        return (f"factory-reset phone asks for {a[0]}, and no package of {a[1] or 'its next load'} in the library "
                f"has it: add that load's cmterm zip (it carries {str(a[0]).lower()})")
    if code == Code.FILE_MISSING:
        return f"station does not have {a[0]}: add it to the firmware library"
    if code == Code.NO_LOAD:
        return need(a[0])
    if code == Code.NOT_UPGRADABLE:
        return (f"not upgradable by manifest ({a[0]} firmware is {a[1] or 'images'} files with no .loads "
                "manifest; the station cannot offer it a load: upgrade it by hand)")
    if code == Code.OLD_APP:
        return (f"took {a[0]}.sb2 and booted its old application again (seen on 7960s that refuse loads above "
                f"8.0(4)): it will not run {a[0]}; try an 8.0(4) load, or SIP P0S3-8-12-00")
    if code == Code.RESTART_TO_GO_ON:
        return (f"already on {a[0]}, which its config named, so it stays there until it asks again: restart it "
                f"(unplug power) to go on to {a[1]}")
    if code == Code.STALLED:
        return f"download of {a[0]} stopped after {a[1]} of {a[2]} files: check the cable, then restart the phone"
    if code == Code.NO_RETURN:
        return (f"installed {a[0]} and did not come back within {a[1]} minutes: check its power (a 7970 needs a "
                "power brick or full PoE)")
    if code == Code.TRUST_LIST:
        reset = f"factory reset ({a[0]})" if a and a[0] else "factory reset"
        return ("holds another cluster's trust list and never took the unsigned config: erase it (Settings > "
                f"Security > Trust List, **# to unlock, Erase) or {reset}")
    if code == Code.RETRIED:
        return f"plan restarted on request ({a[0]})"
    if code == Code.CONVERT_REFUSED:
        return f"not converted: {need(a[0])}"
    if code == Code.RESTORED:
        return str(a[0]) if a else ""
    return code.value


def say(note: Note | None) -> str:
    """The note in a tech's words ("" for none).  A note whose arguments do not fit its code is shown by code."""
    if note is None:
        return ""
    try:
        return _say(note.code, note.args)
    except (IndexError, TypeError, KeyError):
        return note.code.value
