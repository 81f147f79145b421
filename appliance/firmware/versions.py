"""Load-ID versions: one sortable key across Cisco's naming schemes.

Keys are (major, minor, maint, sr, build) integer tuples, the same shape as
appliance.recovery.rules uses for "8.5(2)SR1", so a load ID and a human
version compare directly.  Only loads of one family are meaningfully compared;
the key is still a total order so sorting a mixed list never fails.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

# The 7940/60 "SR" form (P0030801SR02 = 8.1(2)SR2) drops the maintenance number.  Known IDs are in
# versions.toml; for any other, SR_FORM_MAINT stands in.  That is an inference, not a source: the
# one known case (8.1(2)SR2) came after the last numbered maintenance release of its minor version,
# so an unknown one is assumed to as well and sorts after all of them.
SR_FORM = {k.upper(): int(v) for k, v in
           tomllib.loads(Path(__file__).with_name("versions.toml").read_text())["sr_form"].items()}
SR_FORM_MAINT = 99

_HUMAN = re.compile(r"^(\d+)\.(\d+)\((\d+)\)(?:SR(\d+)(?:-(\d+))?)?$", re.I)
_P0X3 = re.compile(r"^P0[0-9A-Z][0-9A-Z](\d\d)(\d\d)(\d\d)(\d\d)$", re.I)
_P0X3_SR = re.compile(r"^P0[0-9A-Z][0-9A-Z](\d\d)(\d\d)SR(\d\d)$", re.I)
_P0X3_DASH = re.compile(r"^(P0[0-9A-Z][0-9A-Z])-(\d+)-(\d+)-(\d+)$", re.I)
_CP79 = re.compile(r"^CP79\d\d(\d\d)(\d\d)(\d\d)[A-Z]", re.I)
_ATA = re.compile(r"^ATA(\d\d)(\d\d)(\d\d)[A-Z]", re.I)
_DOTTED = re.compile(r"^([A-Za-z][A-Za-z0-9_]*?)[.\-](\d+[.\-]\d+.*)$")
# 7800/8800 from 12.7 on: major-minor-maint-SSxx-build, where SS is the service release: Cisco's 14.0(1)SR2
# download is cmterm-78xx.14-0-1-0201-169 (7800 14.0(1)SR2 upgrade guide, doc copy), a 14.4(1)SR3 install is
# sip78xx.14-4-1-0301-6 (7821 lab write-up, reference phone-families.md [F18]), 14.0(1) is 14-0-1-0001-135.
# The last two digits are 01 in every ID seen; their meaning is UNCONFIRMED and they do not take part in the order.
_SR4 = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d\d)(\d\d)-(\d+)$")
# Multiplatform (MPP, 3PCC) loads: sip88xx.11-3-3MPP0001-377, sip68xx.12-0-7MPP0301-92, sip88xx.11-2-3MPP-398
# (phone-families.md §3.3-3.4 [F7][F25][F26]).  The four digits after MPP are read as the Enterprise 14.x form's
# SSxx (0301 = SR3): an inference by analogy, UNCONFIRMED; 0001 (no SR) is the only value in a Cisco note.
_MPP = re.compile(r"^(\d+)-(\d+)-(\d+)MPP(?:(\d\d)(\d\d))?-(\d+)$", re.I)
# Transition (migration) loads: sip78xx.TLexE2M-11-2-3C-12 (friendly-waldo, phone-families.md §3.3 [F25]); the
# letter after the release and the build are kept as written.  TLexM2E is not seen in any source: accepted by symmetry.
_TRANSITION = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.TLex(E2M|M2E)-(\d+)-(\d+)-(\d+)[A-Z]*-(\d+)$", re.I)
_TOKEN = re.compile(r"SR(\d+)|(\d+)|([A-Za-z]+)", re.I)
_FAMILY = re.compile(r"^([A-Za-z][A-Za-z0-9_]*?)(?=[.\-]\d)")


def _numbered(text: str) -> tuple[int, ...] | None:
    """"9-4-2SR4-3S", "1.4.1SR1", "12-0-1MN-113", "9-3-1-SR1-3" -> (major, minor, maint, sr, build)."""
    text = text.rstrip("Ss") if re.search(r"\d[Ss]$", text) else text
    m = _MPP.match(text)
    if m:
        major, minor, maint, sr, _respin, build = (int(g or 0) for g in m.groups())
        return (major, minor, maint, sr, build)
    m = _SR4.match(text)
    if m:
        major, minor, maint, sr, _respin, build = (int(g) for g in m.groups())
        return (major, minor, maint, sr, build)
    nums: list[int] = []
    sr = 0
    build = 0
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            sr = int(m.group(1))
        elif m.group(2) is not None:
            n = int(m.group(2))
            if len(nums) < 3 and not sr:
                nums.append(n)
            else:
                build = n
    if len(nums) < 2:
        return None
    nums += [0] * (3 - len(nums))
    return (nums[0], nums[1], nums[2], sr, build)


def _bare(load_id: str | None) -> str | None:
    """The ID without a trailing ".loads"; None for what no Cisco ID looks like (empty, long, non-ASCII)."""
    if not load_id or not isinstance(load_id, str):
        return None
    text = load_id.strip()
    if text.lower().endswith(".loads"):
        text = text[:-6]
    if len(text) > 80 or not text.isascii():
        return None
    return text


def version_key(load_id: str | None) -> tuple[int, ...] | None:
    """Sortable key for a load ID ("SCCP45.9-4-2SR4-3S", "P00308010100", "sip88xx.12-5-1SR3-74") or "8.5(2)SR1";
    None if unknown."""
    text = _bare(load_id)
    if text is None:
        return None
    m = _HUMAN.match(text)
    if m:
        return tuple(int(g or 0) for g in m.groups())
    m = _P0X3.match(text)
    if m:
        major, minor, maint, build = (int(g) for g in m.groups())
        return (major, minor, maint, 0, build)
    m = _P0X3_SR.match(text)
    if m:
        maint = SR_FORM.get(text[:8].upper(), SR_FORM_MAINT)
        return (int(m.group(1)), int(m.group(2)), maint, int(m.group(3)), 0)
    m = _P0X3_DASH.match(text)
    if m:
        return (int(m.group(2)), int(m.group(3)), int(m.group(4)), 0, 0)
    for rx in (_CP79, _ATA):
        m = rx.match(text)
        if m:
            return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0, 0)
    m = _TRANSITION.match(text)
    if m:
        return (int(m.group(3)), int(m.group(4)), int(m.group(5)), 0, int(m.group(6)))
    m = _DOTTED.match(text)
    if m:
        return _numbered(m.group(2))
    return None


def family(load_id: str | None) -> str | None:
    """The load-ID prefix naming the hardware family: "SCCP45", "sip78xx", "P003", "CP7925G", "term65"; None if unknown."""
    text = _bare(load_id)
    if text is None:
        return None
    if _P0X3.match(text) or _P0X3_SR.match(text) or _P0X3_DASH.match(text):
        return text[:4].upper()
    m = re.match(r"^(term\d\d)\.default$", text, re.I)
    if m:
        return m.group(1).lower()
    m = _CP79.match(text)
    if m:
        return text[:6].upper()
    m = _ATA.match(text)
    if m:
        return "ATA"
    m = _TRANSITION.match(text)
    if m:
        return m.group(1)
    if version_key(text) is None:
        return None
    m = _FAMILY.match(text)
    return m.group(1) if m else None


SCCP, SIP, MGCP = "sccp", "sip", "mgcp"
# Multiplatform firmware is another product of the same 7800/8800 hardware (and the only one of the 6800), as SIP
# is of SCCP (reference §0.0 item 8): a version comparison, a target or a plan never mixes it with Enterprise, and
# moving a phone between them is an explicit choice ([upgrade] convert).  A transition load is neither: it exists
# only to carry an Enterprise phone over (phone-families.md §3.1, §3.3), so it is never anyone's target.
MPP, TRANSITION = "mpp", "transition"
ENTERPRISE = "enterprise"
_PROTOCOL_PREFIX = (("SCCP", SCCP), ("SIP", SIP), ("P003", SCCP), ("P0S3", SIP), ("P0M3", MGCP))


def protocol(load_id: str | None) -> str | None:
    """"sccp", "sip" or "mgcp" from a load ID (reference §0.0 item 8: SCCPnn.*/P003* vs SIPnn.*/P0S3*/sip*);
    None for IDs that do not say (term files, wireless CP79xx loads, ATA)."""
    text = _bare(load_id)
    if not text:
        return None
    kind = firmware_type(text)
    if kind in (MPP, TRANSITION):
        return kind
    up = text.upper()
    for prefix, proto in _PROTOCOL_PREFIX:
        if up.startswith(prefix):
            return proto
    m = _CP79.match(text) or _ATA.match(text)
    if m:
        tail = up[len(m.group(0)) - 1:]
        return SCCP if "SCCP" in tail else SIP if "SIP" in tail else None
    return None


# Families that only ever carry multiplatform firmware: the 6800 (phone-families.md §3.4: "68xx is MPP-only" [F8]).
MPP_ONLY_FAMILIES = ("sip68xx", "sip6821")


def firmware_type(load_id: str | None) -> str | None:
    """"mpp", "transition" or "enterprise" for a load ID; None for what is no load ID.

    MPP: "MPP" in the release (sip88xx.11-3-3MPP0001-377) or a 6800 family (sip68xx.*, sip6821.*); transition:
    sip78xx.TLexE2M-11-2-3C-12; every other Cisco load (SCCP45.*, sip78xx.14-0-1-0001-135, P003...) is Enterprise."""
    text = _bare(load_id)
    if text is None:
        return None
    if _TRANSITION.match(text):
        return TRANSITION
    m = _DOTTED.match(text)
    if m and (_MPP.match(m.group(2)) or m.group(1).lower() in MPP_ONLY_FAMILIES):
        return MPP
    return ENTERPRISE if version_key(text) is not None else None
