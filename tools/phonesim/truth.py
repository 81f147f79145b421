"""Which running load can take which offered load: the phone model's own truth table.

Written from the reference's evidence (cisco-phones.md §0.0 items 6 and 8, §5.1,
§5.2, §8), never from the product's rules.toml, so a wrong product rule shows up
as a phone that refuses what the station offered.  Each row cites its source;
rows the evidence only suggests are marked UNCONFIRMED.
"""
from __future__ import annotations

from dataclasses import dataclass

from .loadid import SCCP, SIP, LoadId, human
from .models import EIGHT94, FIVEG, P79XX, SIX9, TNP, Model

AUTH_FAIL = "Auth Fail"                    # 79x1/2/5 (§8.3)
FILE_AUTH_ERROR = "File auth error"        # 7940/60 (§8.3)
IMAGE_AUTH_FAILED = "Image Authentication Failed"   # 7940/60, doc 5455 title (§8.3); when it shows: UNCONFIRMED
LOAD_ID_INCORRECT = "Load ID incorrect"    # "load ID of the software file is of the wrong type" (§8.1)
LOAD_REJECTED_HC = "Load rejected HC"      # load too old for this hardware (§8.1)
CHECKSUM_ERROR = "Checksum Error"          # "a downloaded file's checksum failed" (§8.1)
VERSION_ERROR = "Version error"            # "the load file name is incorrect" (§8.1)

OLD_KEY, NEW_KEY = "old signing key", "new signing key"

# 79x1/2/5, 7906/11/31/70/71/75 signing-key change (§0.0 item 6, §5.1):
#   loads up to 8.3(2) know only the old key; 8.3(3) through 8.5(2) (NOT 8.5(2)SR1) know both;
#   8.5(2)SR1 and everything later (8.5(3), 9.x) know only the new key.
#   A load before 8.5(2)SR1 is signed with the old key, 8.5(2)SR1 and later with the new one
#   ("8.5(2)SR1 ... uses the new signature"; 8.3(2) phones take 8.5(2), so 8.5(2) carries the old one).
# Consequence the evidence suggests but no source states (UNCONFIRMED): a phone on a new-key-only
# load refuses an old-key load (a 9.x phone cannot go back to 8.5(2)).
BOTH_KEYS_FROM = human("8.3(3)")
NEW_KEY_FROM = human("8.5(2)SR1")
KEY_ERAS = (                      # (running loads from this version on, keys they know)
    ((0, 0, 0, 0, 0), frozenset({OLD_KEY})),
    (BOTH_KEYS_FROM, frozenset({OLD_KEY, NEW_KEY})),
    (NEW_KEY_FROM, frozenset({NEW_KEY})),
)

# 7940/60 SCCP (§5.2, [19]): 8.1(2) and later need 8.1(1) first, else "File auth error".
P003_NEEDS = human("8.1(1)")
P003_GATED_FROM = human("8.1(2)")
# 7940/60 SIP (§5.2, CME docs [8]): 2.x/3.x/4.x -> 4.4 -> 5.3 -> 6.x -> 7.x, "can't jump to 7.x directly";
# signed SIP images start at 5.x and cannot go back to unsigned ones; an SCCP phone must be on 5.x
# before converting to SIP.  The screen each of these shows is UNCONFIRMED (IMAGE_AUTH_FAILED chosen).
SIP_STAGES = (human("4.4(0)"), human("5.3(0)"), human("6.0(0)"), human("7.0(0)"))
SIP_SIGNED_FROM = human("5.0(0)")
SCCP_TO_SIP_FROM = human("5.0(0)")


# 6921/6941/6961 (phone-families.md §4.1, 6900 RN 9.3(1) [F28]): "Direct upgrades, using signed load files,
# are supported to firmware releases 9.3(1) from 9.x"; "Direct upgrade from firmware release 9.0(x) to 9.3(1)
# is supported", and from 9.3(1) on only signed loads.  So a pre-9.0 (unsigned-era) load cannot take 9.3(1)
# or later directly; which 9.x load bridges it and what the phone shows are UNCONFIRMED (Auth Fail chosen).
SIX9_SIGNED_FROM = human("9.0(0)")
SIX9_DIRECT_TO = human("9.3(1)")
# 8941/8945, 7800, 8800 Enterprise: no stepping stone found (cisco-phones.md §5.3, phone-families.md §2.2:
# "no 'must upgrade to X before Y' rule was found", UNCONFIRMED that none exists).  The 7800/8800 constraint
# is the hardware floor (floors.py), checked for every family through `hardware_floor`.


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    screen: str | None = None     # what the phone shows when it refuses
    why: str = ""


OK = Verdict(True)


def keys_known(running: LoadId) -> frozenset[str]:
    """The signing keys a 79x1/2/5 load can verify with (KEY_ERAS)."""
    known = KEY_ERAS[0][1]
    for since, keys in KEY_ERAS:
        if running.key >= since:
            known = keys
    return known


def signed_with(offered: LoadId) -> str:
    return NEW_KEY if offered.key >= NEW_KEY_FROM else OLD_KEY


def _stage(key: tuple) -> int:
    return sum(key >= s for s in SIP_STAGES)


def _tnp(running: LoadId, offered: LoadId) -> Verdict:
    key = signed_with(offered)
    if key not in keys_known(running):
        return Verdict(False, AUTH_FAIL, f"{running.text} cannot verify {offered.text}: it is signed with the "
                                         f"{key} and the running load knows only the {' and '.join(sorted(keys_known(running)))}")
    return OK


def _p79xx(running: LoadId, offered: LoadId) -> Verdict:
    if running.protocol == SCCP and offered.protocol == SCCP:
        if running.key < P003_NEEDS and offered.key >= P003_GATED_FROM:
            return Verdict(False, FILE_AUTH_ERROR, f"{offered.text} needs 8.1(1) first; the phone runs {running.text}")
        return OK
    if running.protocol == SCCP and offered.protocol == SIP:
        if running.key < SCCP_TO_SIP_FROM:
            return Verdict(False, IMAGE_AUTH_FAILED, f"SCCP {running.text} must be on 5.x before converting to SIP")
        return OK
    if running.protocol == SIP and offered.protocol == SIP:
        if running.key >= SIP_SIGNED_FROM and offered.key < SIP_SIGNED_FROM:
            return Verdict(False, IMAGE_AUTH_FAILED, f"signed SIP {running.text} cannot go back to unsigned {offered.text}")
        if _stage(offered.key) > _stage(running.key) + 1:
            return Verdict(False, IMAGE_AUTH_FAILED,
                           f"SIP {running.text} cannot jump to {offered.text} (4.4 -> 5.3 -> 6.x -> 7.x)")
        return OK
    return OK                     # SIP -> SCCP: no rule found


def _six9(running: LoadId, offered: LoadId) -> Verdict:
    if running.key < SIX9_SIGNED_FROM and offered.key >= SIX9_DIRECT_TO:
        return Verdict(False, AUTH_FAIL, f"{running.text} (before 9.0) cannot take {offered.text} directly: "
                                         "9.3(1) and later are reached from 9.x")
    return OK


def _no_rule(running: LoadId, offered: LoadId) -> Verdict:
    return OK


def hwcompat_verdict(hardware_bit: int | None, hwcompat: int | None) -> Verdict:
    """A 5th-generation manifest's `hwcompat` read as a bitmask of accepted hardware (phone-families.md §1.2:
    0x3 in 11.0(1), 0x3F claimed for 14.4(1); that reading is UNCONFIRMED, §8 item 1).

    hardware_bit None is the other reading: the phone does not look at hwcompat (the model's default).
    With a bit, a manifest whose hwcompat lacks it is refused as "Load rejected HC"; a manifest without
    hwcompat is taken."""
    if hardware_bit is None or hwcompat is None or (hwcompat >> hardware_bit) & 1:
        return OK
    return Verdict(False, LOAD_REJECTED_HC, f"hwcompat {hwcompat:#x} lacks this hardware's bit {hardware_bit}")


def verdict(model: Model, running: LoadId, offered: LoadId, hardware_floor: LoadId | None = None) -> Verdict:
    """Whether a phone of `model` running `running` installs `offered`, and what it shows if not.

    Args:
        hardware_floor: the oldest load this unit's hardware revision runs (late-production phones
            refuse older loads with "Load rejected HC", §5.1/§8.1; which units and floors: UNCONFIRMED,
            so it is a per-phone setting, off by default).
    """
    if offered.family not in _families(model):
        return Verdict(False, LOAD_ID_INCORRECT, f"{offered.text} is not a load for the {model.name}")
    if hardware_floor is not None and offered.protocol == hardware_floor.protocol and offered.key < hardware_floor.key:
        return Verdict(False, LOAD_REJECTED_HC, f"{offered.text} is older than this hardware runs ({hardware_floor.text})")
    return RULES[model.family](running, offered)


RULES = {TNP: _tnp, P79XX: _p79xx, SIX9: _six9, EIGHT94: _no_rule, FIVEG: _no_rule}


def _families(model: Model) -> tuple[str, ...]:
    return model.load_families


def screen_for(model: Model) -> str:
    """What a phone of this family shows for a file it cannot verify (bad header, wrong signed name).
    For the 69xx, 894x, 7800 and 8800 the wording is UNCONFIRMED (no capture): Auth Fail as the 79x1."""
    return FILE_AUTH_ERROR if model.family == P79XX else AUTH_FAIL

