"""The MPP phone model's truth table: which models run MPP, which may convert, which load each may take.

Written from the reference (phone-families.md §3, §1.4), never from the product.  Every row names its
source; where the evidence is open the row says UNCONFIRMED and the reading is a setting of the phone.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import floors
from .loadid import human
from .mpp_load import MPP, TRANSITION, Firmware
from .truth import LOAD_ID_INCORRECT, LOAD_REJECTED_HC, OK, Verdict

# --- screens ------------------------------------------------------------------------------------------
# The reference quotes no screen for a refused migration or a missing licence: these labels are the
# model's own, plain words, UNCONFIRMED.  LOAD_REJECTED_HC and LOAD_ID_INCORRECT are Cisco's (truth.py).
LICENCE_MISSING = "Migration licence not found"        # UNCONFIRMED label
LICENCE_INVALID = "Migration licence not valid"        # UNCONFIRMED label
NOT_ELIGIBLE = "Migration not supported"               # UNCONFIRMED label
RELEASE_TOO_OLD = "Upgrade before migrating"           # UNCONFIRMED label
PROFILE_NOT_FOUND = "Provisioning profile not found"   # UNCONFIRMED label
PROFILE_INVALID = "Provisioning profile not valid"     # UNCONFIRMED label
UPGRADE_FAILED = "Upgrade failed"                      # UNCONFIRMED label: a refused or broken MPP load


# --- models ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MppModel:
    name: str                    # "8851"
    families: tuple[str, ...]    # MPP load families it runs (sip88xx.*)
    enterprise: str | None       # its Enterprise model in models.FAMILY_MODELS; None: MPP only
    platforms: tuple[str, ...]   # [PLATFORM_n] file tags, by inference from the Enterprise container
    source: str

    @property
    def pn(self) -> str:
        """$PN: `CP-8851-3PCC` (phone-families.md §3.4: `/Cisco/CP-8851-3PCC/…`)."""
        return f"CP-{self.name}-3PCC"

    @property
    def psn(self) -> str:
        """$PSN: `8851-3PCC` (the factory Profile Rule `/$PSN.xml` asks `8851-3PCC.xml`, §3.4; friendly-waldo
        answers `/.*(\\d{4})-3PCC.xml/` [F25])."""
        return f"{self.name}-3PCC"


_SIX8 = "68xx is MPP-only: 'only the 7800 and 8800 series have the capability to run either' [F8]; " \
        "loads sip68xx.* / sip6821.* [F7][F26]"
_E78 = "7800: MPP and Enterprise [F8]; MPP loads under the Enterprise family prefix (sip78xx.*MPP*) by inference"
_E88 = "8800: sip88xx.11-3-3MPP0001-377 [F7]"
_E8845 = "8845/8865: sip8845_65.11-3-3MPP0001-377 [F7]"
# The 68xx container and platforms are not in any public file (§7): the 5th-generation container with one
# platform is an inference, UNCONFIRMED; which 68xx runs sip6821 vs sip68xx follows the file names only.
MODELS = {m.name: m for m in (
    MppModel("6821", ("6821",), None, ("6821",), _SIX8),
    MppModel("6841", ("68xx",), None, ("68xx",), _SIX8),
    MppModel("6851", ("68xx",), None, ("68xx",), _SIX8),
    MppModel("6861", ("68xx",), None, ("68xx",), _SIX8),
    MppModel("6871", ("68xx",), None, ("68xx",), _SIX8),
    MppModel("7811", ("78xx",), "7811", ("78xx", "2.78xx"), _E78),
    MppModel("7821", ("78xx",), "7821", ("78xx", "2.78xx"), _E78),
    MppModel("7841", ("78xx",), "7841", ("78xx", "2.78xx"), _E78),
    MppModel("7861", ("78xx",), "7861", ("78xx", "2.78xx"), _E78),
    MppModel("8811", ("88xx",), "8811", ("88xx", "288xx", "388xx"), _E88),
    MppModel("8841", ("88xx",), "8841", ("88xx", "288xx", "388xx"), _E88),
    MppModel("8851", ("88xx",), "8851", ("88xx", "288xx", "388xx"), _E88),
    MppModel("8861", ("88xx",), "8861", ("88xx", "288xx", "388xx"), _E88),
    MppModel("8845", ("8845_65",), "8845", ("8845_65",), _E8845),
    MppModel("8865", ("8845_65",), "8865", ("8845_65",), _E8845),
)}


def mpp_model(name: str) -> MppModel:
    """"8851", "CP-8851", "CP-8851-3PCC" -> its MppModel; ValueError for a model the MPP model does not run."""
    text = (name or "").strip().upper().removeprefix("CP-").removesuffix("-3PCC").removesuffix("-K9")
    if text not in MODELS:
        raise ValueError(f"phone model {name!r} is not an MPP model here (known: {', '.join(MODELS)})")
    return MODELS[text]


# --- eligibility to convert (Enterprise -> MPP), §3.2 -----------------------------------------------------

@dataclass(frozen=True)
class EligibilityRow:
    models: tuple[str, ...]
    first: int               # first VID covered (1 = every VID)
    last: int | None
    eligible: bool
    source: str


V24_BOUND_READING = "manuals.plus"      # 7821 eligible only V03 to V24 (one rendering of c07-742786)
ELIGIBILITY = (
    EligibilityRow(("8821", "8831"), 1, None, False, "c07-742786 [F8]: '8821 and 8831 are not eligible'"),
    EligibilityRow(("6821", "6841", "6851", "6861", "6871"), 1, None, False,
                   "[F8]: 68xx runs MPP only ('only the 7800 and 8800 series ... run either')"),
    EligibilityRow(("7821",), 1, 2, False, "[F8] '7821 (V03+ …)'; readiness tool 7821 >= V03 else No [F10]"),
    EligibilityRow(("7821",), 3, None, True, "[F8] '7821 (V03+ to V24)': the V24 bound only in the manuals.plus "
                                             "rendering, UNCONFIRMED (see v24_bound)"),
    EligibilityRow(("7841",), 1, 3, False, "[F8] '7841 (V04+)'; readiness tool 7841 >= V04 [F10]"),
    EligibilityRow(("7841",), 4, None, True, "[F8] '7841 (V04+)'"),
    EligibilityRow(("7861",), 1, 2, False, "[F8] '7861 (V03+)'; readiness tool 7861 >= V03 [F10]"),
    EligibilityRow(("7861",), 3, None, True, "[F8] '7861 (V03+)'"),
    EligibilityRow(("7811",), 1, None, True, "[F8] eligible list: 7811"),
    EligibilityRow(("8811", "8841", "8851", "8861"), 1, None, True,
                   "[F8] 'All listed 8800 audio series phones can convert'; <= V14 'not recommended' [F10]"),
    EligibilityRow(("8845", "8865"), 1, None, True, "[F8] eligible list: 8845, 8865 ('eos' per [F10])"),
)


def eligible(name: str, vid: str | None, v24_bound: bool = False) -> Verdict:
    """Whether a `name` of this VID may take MPP firmware by conversion.  vid None: the VID rows are not
    applied (a unit whose VID the test did not set).  v24_bound: the manuals.plus reading, 7821 above V24 no."""
    n = floors.vid_number(vid) if vid is not None else None
    rows = [r for r in ELIGIBILITY if name in r.models]
    if not rows:
        return Verdict(False, NOT_ELIGIBLE, f"the {name} is not on Cisco's list of phones that convert [F8]")
    if n is None:
        rows = [r for r in rows if r.first == 1 and r.last is None]
        if not rows:
            return OK                                  # VID rows only, and no VID given: not checked
    else:
        rows = [r for r in rows if r.first <= n and (r.last is None or n <= r.last)]
    row = rows[0]
    if not row.eligible:
        return Verdict(False, NOT_ELIGIBLE, f"the {' '.join(filter(None, (name, vid)))} cannot convert to MPP "
                                            f"firmware ({row.source})")
    if v24_bound and name == "7821" and n is not None and n > 24:
        return Verdict(False, NOT_ELIGIBLE, f"the 7821 {vid} is above V24 ({row.source})")
    return OK


# --- releases --------------------------------------------------------------------------------------------
E2M_FROM = human("12.5(1)")        # "must be running Firmware Release 12.5(1) or later" [F24] §3.1
E2M_DIRECT_FROM = human("14.0(1)")  # "SIP Firmware Release 14.(1) or later"; earlier "still needs E2M COP" [F24];
#                                     Cisco writes "14.(1)": read as 14.0(1) per the brief and §3.1, UNCONFIRMED
M2E_FROM = human("11.3(5)")        # "must be running Firmware Release 11.3(5) or higher" [F24] §3.5
V15_MPP_FLOOR = human("11.3(3)")   # 88x1 V15+: "minimum 11.3.3 MPP firmware and cannot downgrade" [F7][F8] §1.4
V15_MODELS = ("8811", "8841", "8851", "8861")
# Transition Authorization Type (MPP RN 11.3(3) [F7]): Blank "requires a license to migrate to enterprise";
# Classic and WxC "can be migrated to enterprise firmware without using a license".
NO_LICENCE_BACK = ("classic", "wxc")


def _text(key: tuple) -> str:
    return f"{key[0]}.{key[1]}({key[2]})"


def mpp_floor(model: MppModel, vid: str | None) -> Verdict | None:
    """None, or why an MPP load under 11.3(3) is refused by an 88x1 V15+ (the row above)."""
    if vid is None or model.name not in V15_MODELS or floors.vid_number(vid) < 15:
        return None
    return Verdict(False, LOAD_REJECTED_HC, f"the {model.name} {vid} runs MPP {_text(V15_MPP_FLOOR)} or later "
                                            "and cannot go lower [F7][F8]")


def take(model: MppModel, running: Firmware, target: Firmware, *, vid: str | None, migrating: bool,
         trans_auth_type: str | None, v20_floor: str = floors.V20_RN) -> tuple[Verdict, bool]:
    """Whether a phone running `running` (in MPP provisioning: an MPP load, a transition load, or an Enterprise
    load in migration mode) installs `target` named by its Upgrade_Rule, and whether it needs a licence first."""
    if target.kind == TRANSITION:
        return Verdict(False, LOAD_ID_INCORRECT, f"{target.text} is a transition load: the MPP phone does not "
                                                 "take it (only an Enterprise phone does, §3.3)"), False
    if target.kind == MPP:
        if target.family not in model.families:
            return Verdict(False, LOAD_ID_INCORRECT, f"{target.text} is not a load for the {model.name}"), False
        if (v := mpp_floor(model, vid)) and target.key < V15_MPP_FLOOR:
            return v, False
        if running.kind == MPP:
            return OK, False
        if running.kind == TRANSITION or migrating:
            return OK, True                                  # E -> MPP: the licence first [F24]
        return Verdict(False, RELEASE_TOO_OLD, f"{running.text} is not in migration"), False
    # Enterprise target
    if model.enterprise is None:
        return Verdict(False, LOAD_ID_INCORRECT, f"the {model.name} runs MPP firmware only [F8]"), False
    if running.kind != MPP:
        return Verdict(False, LOAD_ID_INCORRECT, f"{running.text} does not go back to {target.text}"), False
    if target.family not in model.families:
        return Verdict(False, LOAD_ID_INCORRECT, f"{target.text} is not a load for the {model.name}"), False
    if running.key < M2E_FROM:
        return Verdict(False, RELEASE_TOO_OLD, f"MPP {running.text} is older than 11.3(5): direct migration to "
                                               "Enterprise is not supported [F24]"), False
    floor = floors.floor(model.enterprise, target.family, vid, v20_floor) if vid else None
    if floor is not None and target.key < floor.key:
        return Verdict(False, LOAD_REJECTED_HC, f"{target.text} is older than this hardware runs ({floor.text})"), False
    return OK, (trans_auth_type or "").lower() not in NO_LICENCE_BACK


def enterprise_to_mpp(name: str, vid: str | None, running_key: tuple, target: Firmware,
                      v24_bound: bool = False) -> Verdict:
    """An Enterprise phone whose config names `target` (transition or MPP load): may it start the migration?"""
    v = eligible(name, vid, v24_bound)
    if not v.accepted:
        return v
    if running_key < E2M_FROM:
        return Verdict(False, RELEASE_TOO_OLD, f"Enterprise {_text(running_key)} is older than 12.5(1), the "
                                               "oldest release that migrates [F24]")
    if name in V15_MODELS and vid is not None and floors.vid_number(vid) >= 15 and target.key < V15_MPP_FLOOR:
        # "new transition firmware adds V15+ 88x1 support" (MPP RN 11.3(3) [F7]): an older transition load,
        # read by its version, is refused by V15+ hardware like an MPP load under 11.3(3)
        return Verdict(False, LOAD_REJECTED_HC, f"the {name} {vid} needs a load for MPP 11.3(3) or later [F7][F8]")
    if target.kind == MPP and running_key < E2M_DIRECT_FROM:
        return Verdict(False, RELEASE_TOO_OLD, f"Enterprise {_text(running_key)} takes an MPP load only through a "
                                               "transition load (direct from 14.0(1)) [F24]")
    return OK





# --- the licence ----------------------------------------------------------------------------------------
# A licence is "per MAC", named `<upper-case MAC>.lic` and fetched through Trans_Auth_Rule `…/$MAU.lic`
# [F24]; its content is Cisco's and no public file shows it (§7: "Not found in public repos: … migration
# .lic files").  What the model can check: the file came (a fetch that fails is "not found"), it is not
# empty, and when its file name is a MAC, that MAC is the phone's (a static rule such as Cisco's web-UI
# example `…/E2312.lic` names no MAC and passes this check).  LICENCE_MAC adds a stand-in for Cisco's
# signed content: the licence must hold the phone's MAC as text (12 hex digits, any case).  That a real
# licence carries its MAC so is UNCONFIRMED: it is a reading a test selects, not a fact.
LICENCE_NAME, LICENCE_MAC = "name", "mac"
LICENCE_CHECKS = (LICENCE_NAME, LICENCE_MAC)


def licence_verdict(data: bytes, file_name: str, mac: str, check: str = LICENCE_NAME) -> Verdict:
    """Whether the phone `mac` (12 hex digits) takes the licence `data` fetched as `file_name`."""
    if check not in LICENCE_CHECKS:
        raise ValueError(f"licence check must be one of {LICENCE_CHECKS}, not {check!r}")
    if not data.strip():
        return Verdict(False, LICENCE_INVALID, f"{file_name[:60]} is empty")
    stem = file_name.rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.lower().endswith(".lic") else stem
    if len(stem) == 12 and all(c in "0123456789abcdefABCDEF" for c in stem) and stem.upper() != mac.upper():
        return Verdict(False, LICENCE_INVALID, f"{file_name[:60]} is the licence of {stem.upper()}, not of "
                                               f"{mac.upper()}")
    if check == LICENCE_MAC and mac.upper().encode() not in data.upper():
        return Verdict(False, LICENCE_INVALID, f"{file_name[:60]} does not name {mac.upper()} (the model's "
                                               "stand-in for Cisco's per-MAC licence, UNCONFIRMED)")
    return OK


# Loads a phone starts on when none is given: real MPP names where the reference quotes one (sip88xx and
# sip8845_65 11-3-3MPP0001-377 [F7], sip68xx.12-0-7MPP0301-92 [F26]); sip6821 and sip78xx with the same
# versions by analogy (the names are real prefixes, these versions are not quoted: UNCONFIRMED).
SHIPPED = {"88xx": "sip88xx.11-3-3MPP0001-377", "8845_65": "sip8845_65.11-3-3MPP0001-377",
           "68xx": "sip68xx.12-0-7MPP0301-92", "6821": "sip6821.12-0-7MPP0301-92",
           "78xx": "sip78xx.11-3-3MPP0001-377"}
