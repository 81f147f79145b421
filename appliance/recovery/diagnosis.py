"""What the tracker says about a phone, as typed codes: no words here (words.py has them).

A `Note` is a code and its arguments (load IDs, file names, counts).  The core
decides which note a phone carries; the shell turns it into the words the
store, API and dashboard show (`words.say`), so a diagnosis can be reworded,
tested or translated without touching the state machine.  Pure: no I/O.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(str, enum.Enum):
    SEEN = "seen"                          # ()
    ON_LOAD = "on load"                    # (load,)
    STEP = "step"                          # (k, n, load): its config names step k of n
    DOWNLOADING = "downloading"            # (file, taken, of): of 0 = unknown
    INSTALLING = "installing"              # (load,)
    FLASHING_LOADER = "flashing loader"    # (file,): 7940/60 .sbn, the .sb2 follows its reboot
    REJECTED_NEXT = "rejected, next"       # (load, why, n, next)
    REJECTED_STUCK = "rejected, stuck"     # (load, why, need)
    TERM_LOOP = "term loop"                # (term, load, need)
    TERM_MISSING = "term missing"          # (term, load)
    FILE_MISSING = "file missing"          # (file,)
    NO_LOAD = "no load"                    # (need,)
    NOT_UPGRADABLE = "not upgradable"      # (model, images)
    OLD_APP = "old app"                    # (load,)
    RESTART_TO_GO_ON = "restart to go on"  # (current, next)
    STALLED = "stalled"                    # (load, taken, of)
    NO_RETURN = "no return"                # (load, minutes)
    TRUST_LIST = "trust list"              # (reset keys or "",)
    RETRIED = "retried"                    # (by,)
    RESTORED = "restored"                  # (words,): a note recorded before notes were typed
    CONVERT_REFUSED = "convert refused"    # (need,): [upgrade] convert asks a conversion it cannot make (Need kinds
                                           # "licence", "convert model", "convert hardware")


class Why(str, enum.Enum):
    """Why a phone refused a load (the `why` argument of the REJECTED_* codes)."""
    KEY_CHANGE = "key change"          # its running load predates the signing key (reference §0.0 item 6)
    STONE_REFUSED = "stone refused"    # a stone old loads verify was refused: hardware too new (§5.1, §8.1)
    REFUSED = "refused"                # a known load refused something else
    # Under a documented hardware floor (phone-families.md §1.4): "Load rejected HC", the phone keeps its load.
    BELOW_FLOOR = "below floor"        # its VID is known and the load is under that VID's floor
    HARDWARE = "hardware"              # VID unknown, no stepping stone in play, and the model has documented floors


@dataclass(frozen=True)
class Need:
    """What the tech must add to the library so the phone can go on.

    kind: "stone" (a stepping stone of `proto` between `low` and `high`, not `excluded`), "target"
    (any complete load of `proto`), "other" (the library has no other load it could take), "newer" (the same, for a
    model no stepping-stone rule names: another, newer load is what it lacks), "floor" (a load at or
    above the hardware floor `low`; `high` the stricter reading when the sources differ; `vid` the phone's hardware
    version, "" when unknown and `low` is then the model's highest documented floor; `newest` the library's newest
    load for the model, "" for none).
    """
    kind: str
    model: str = ""
    proto: str | None = None
    low: str = ""
    high: str = ""
    excluded: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    source: str = ""        # the rule's citation: for developers (docs, logs at DEBUG), never in the words
    vid: str = ""
    newest: str = ""
    # Conversions (phone-families.md §3): "licence" (low: the file to add, "<MAC>.lic"; high: why the file there is
    # not usable, firmware/licences.py's words, "" when there is none), "convert model" and "convert
    # hardware" (high: why Cisco does not allow it; vid: its VID), "transition" (a transition load for `model`),
    # "convert minimum" (a `proto` load of `low` or later to convert from).


@dataclass(frozen=True)
class Note:
    code: Code
    args: tuple = ()

    def as_list(self) -> list:
        """For the phone's memory (JSON): [code, args...], a Need as a dict."""
        return [self.code.value, *[_arg_out(a) for a in self.args]]

    @classmethod
    def from_list(cls, value) -> "Note | None":
        """The inverse of as_list; None for anything else."""
        if not isinstance(value, list) or not value or not isinstance(value[0], str):
            return None
        try:
            code = Code(value[0])
        except ValueError:
            return None
        return cls(code, tuple(_arg_in(a) for a in value[1:]))


def _arg_out(a):
    if isinstance(a, Need):
        return {"need": [a.kind, a.model, a.proto, a.low, a.high, list(a.excluded), list(a.refused), a.source,
                         a.vid, a.newest]}
    if isinstance(a, Why):
        return {"why": a.value}
    return a


def _arg_in(a):
    if isinstance(a, dict) and isinstance(a.get("need"), list) and len(a["need"]) in (8, 10):
        k, m, p, lo, hi, ex, rf, src, *rest = a["need"]     # 8 fields: a row from before floors
        vid, newest = (str(rest[0] or ""), str(rest[1] or "")) if rest else ("", "")
        return Need(str(k), str(m), p if isinstance(p, str) else None, str(lo), str(hi),
                    tuple(str(x) for x in ex or ()), tuple(str(x) for x in rf or ()), str(src), vid, newest)
    if isinstance(a, dict) and "why" in a:
        try:
            return Why(a["why"])
        except ValueError:
            return Why.REFUSED
    return a if isinstance(a, (str, int, float)) or a is None else str(a)
