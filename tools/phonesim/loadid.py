"""Load IDs as the phone model reads them: protocol, hardware family and a sortable version.

Written from the reference, not from the product (cisco-phones.md §3.4 load-ID
naming, §0.0 item 8): 79x1/2/5 loads are `SCCPnn.<ver>S` / `SIPnn.<ver>S`
(`SCCP45.9-4-2SR4-3S`), 7940/60 SCCP loads `P003MMmmppbb` (`P00308010200` =
8.1(2)) or the SR form `P0030801SR02` (= 8.1(2)SR2, §0.0 item 8), SIP loads
`P0S3-MM-m-pp`.  Versions are (major, minor, maint, sr, build) and only ever
compared within one protocol: SCCP and SIP are different products.

Families beyond the 7900 (phone-families.md §2.1, §4.1, §4.2; cisco-phones.md §3.4):
69xx `SCCP69xx.9-4-1-3SR3` / `SIP69xx.*`, 894x `SCCP894x.9-4-2SR1-2` and
`SIP8941_8945.9-3-1-18`, 7800/8800 Enterprise `sip78xx.11-0-1-11`,
`sip78xx.14-0-1-0001-135`, `sip88xx.12-5-1SR3-74`, `sip88xx.14-0-1MN-1036`,
`sip8845_65.12-5-1SR2-2`.  MPP (`...MPP0001-377`) and transition (`TLexE2M`) loads
are not placed here, so the Enterprise model never takes one for its own: mpp_load.py places them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SCCP, SIP = "sccp", "sip"
P003, P0S3 = "P003", "P0S3"

# The SR form drops the maintenance number; only IDs the reference names are known (§0.0 item 8).
# Any other SR-form ID is unreadable to the model (None), never guessed.
KNOWN_SR_FORM = {"P0030801SR02": (8, 1, 2, 2, 0)}

_TNP = re.compile(r"^(SCCP|SIP)(\d\d)\.(.+)$", re.I)
_TNP_VERSION = re.compile(r"^(\d+)-(\d+)-(\d+)(?:SR(\d+))?(?:ES(\d+))?(?:-(\d+))?$", re.I)
_P003 = re.compile(r"^P003(\d\d)(\d\d)(\d\d)(\d\d)$", re.I)
_P003_SR = re.compile(r"^P003(\d\d)(\d\d)SR(\d\d)$", re.I)
_P0S3 = re.compile(r"^P0S3-(\d+)-(\d+)-(\d+)$", re.I)
_HUMAN = re.compile(r"^(\d+)\.(\d+)\((\d+)\)(?:SR(\d+))?$", re.I)
_JAR = re.compile(r"^jar(\d\d)(sccp|sip)\.(.+)\.sbn$", re.I)
# family as the load ID spells it -> the model's family name
_TLV_FAMILIES = {"69xx": "69xx", "894x": "894x", "8941_8945": "8941_8945"}
_TLV_NEW = re.compile(r"^(SCCP|SIP)(69xx|894x|8941_8945)\.(.+)$", re.I)
_FIVEG = re.compile(r"^sip(78xx|88xx|8845_65)\.(.+)$", re.I)
_PIECE = re.compile(r"^(\d+)?(MN)?(?:SR(\d+))?$", re.I)


@dataclass(frozen=True)
class LoadId:
    """A load the model can reason about; `family` is "45" for SCCP45.*, "P003"/"P0S3" for 7940/60."""
    text: str
    protocol: str
    family: str
    key: tuple[int, int, int, int, int]

    @property
    def tnp_version(self) -> str:
        """"9-4-2SR4-3" for SCCP45.9-4-2SR4-3S: the part component names carry (jar45sccp.9-4-2SR4-3.sbn)."""
        rest = self.text.split(".", 1)[1]
        return rest[:-1] if rest[-1:] in "sS" and rest[-2:-1].isdigit() else rest


def tnp_version_key(text: str) -> tuple[int, int, int, int, int] | None:
    """"9-4-2SR4-3S" -> (9, 4, 2, 4, 3); "9-4-2ES26" -> (9, 4, 2, 0, 26); None if not of that shape."""
    if text[-1:] in "sS" and text[-2:-1].isdigit():
        text = text[:-1]
    m = _TNP_VERSION.match(text)
    if not m:
        return None
    major, minor, maint, sr, es, build = m.groups()
    return (int(major), int(minor), int(maint), int(sr or 0), int(es or build or 0))


def dashed_version_key(text: str) -> tuple[int, int, int, int, int] | None:
    """Versions of the 69xx, 894x and 7800/8800 load IDs -> (major, minor, maint, sr, build); None if unreadable.

    "9-4-1-3SR3" -> (9, 4, 1, 3, 3); "9-3-1-SR1-3" -> (9, 3, 1, 1, 3); "12-5-1SR3-74" -> (12, 5, 1, 3, 74);
    "14-0-1MN-1036" -> (14, 0, 1, 0, 1036) (MN: a special release, ordered as its base, UNCONFIRMED);
    "14-4-1-0301-6" -> (14, 4, 1, 3, 100006): the 14.x four-digit group read as SR 03, patch 01
    (phone-families.md §2.1 only says both forms must compare; that 0301 is SR3 is UNCONFIRMED)."""
    parts = text.split("-")
    if len(parts) < 3 or len(parts) > 6:
        return None
    head: list[int] = []
    sr, build = 0, 0
    for i, piece in enumerate(parts):
        m = _PIECE.match(piece)
        if not m or not piece:
            return None
        number, _mn, srn = m.groups()
        if i < 3:
            if number is None or (i < 2 and (srn or _mn)):
                return None
            head.append(int(number))
        elif len(piece) == 4 and piece.isdigit() and i == 3 and len(parts) == 5:
            sr, build = int(piece[:2]), int(piece[2:]) * 100000
            continue
        elif number is not None:
            build = build + int(number)
        if srn:
            sr = int(srn)
    return (head[0], head[1], head[2], sr, build)


def parse_load(text: str | None) -> LoadId | None:
    """The load a name means, or None for anything the model cannot place (it never guesses a version)."""
    if not text or not isinstance(text, str) or len(text) > 80 or not text.isascii():
        return None
    text = text.strip()
    if text.lower().endswith(".loads"):
        text = text[:-6]
    if m := _TNP.match(text):
        key = tnp_version_key(m.group(3))
        return LoadId(text, m.group(1).lower(), m.group(2), key) if key else None
    if m := _TLV_NEW.match(text):
        key = dashed_version_key(m.group(3))
        return LoadId(text, m.group(1).lower(), _TLV_FAMILIES[m.group(2).lower()], key) if key else None
    if m := _FIVEG.match(text):
        key = dashed_version_key(m.group(2))
        return LoadId(text, SIP, m.group(1).lower(), key) if key else None
    if m := _P003.match(text):
        a, b, c, d = (int(g) for g in m.groups())
        return LoadId(text, SCCP, P003, (a, b, c, 0, d))
    if _P003_SR.match(text):
        key = KNOWN_SR_FORM.get(text.upper())
        return LoadId(text, SCCP, P003, key) if key else None
    if m := _P0S3.match(text):
        a, b, c = (int(g) for g in m.groups())
        return LoadId(text, SIP, P0S3, (a, b, c, 0, 0))
    return None


def human(text: str) -> tuple[int, int, int, int, int]:
    """"8.5(2)SR1" -> (8, 5, 2, 1, 0): how the truth table writes its boundaries."""
    m = _HUMAN.match(text)
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(g or 0) for g in m.groups())  # type: ignore[return-value]


def jar_name(load: LoadId) -> str:
    """The application jar a 79x1/2/5 load installs, as DeviceInformationX names it (§0.0 item 3)."""
    return f"jar{load.family}{load.protocol}.{load.tnp_version}.sbn"


def load_of_jar(component: str) -> LoadId | None:
    """The load a term file's jar component belongs to: jar45sccp.9-4-2SR4-3.sbn -> SCCP45.9-4-2SR4-3S.

    A term file names no load (§2.2: it lists the same components as the SCCPnn manifest), so the
    phone model identifies what it installs by its jar.  Real jars carry component versions
    (jar42sccp.9-4-2ES26.sbn for SCCP42.9-4-2SR3-1S): the version key still lands in the right
    signing era, which is all the truth table needs."""
    m = _JAR.match(component.rsplit("/", 1)[-1])
    if not m:
        return None
    key = tnp_version_key(m.group(3))
    if key is None:
        return None
    return LoadId(f"{m.group(2).upper()}{m.group(1)}.{m.group(3)}S", m.group(2).lower(), m.group(1), key)


def version_text(load: LoadId) -> str:
    """7940/60 versionID: P00308010200 -> "8.1(2.0)" (§7.1).  The SR and SIP renderings are UNCONFIRMED."""
    a, b, c, sr, d = load.key
    if load.family == P003 and not sr:
        return f"{a}.{b}({c}.{d})"
    return f"{a}.{b}({c})" + (f"SR{sr}" if sr else "")
