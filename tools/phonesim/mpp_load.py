"""Firmware names an MPP-capable phone meets: Enterprise, multiplatform (MPP) and transition loads.

Shapes from the reference (phone-families.md §3.1, §3.3, §3.4, §3.5):
- MPP: `sip88xx.11-3-3MPP0001-377`, `sip8845_65.11-3-3MPP0001-377` [F7], `sip68xx.12-0-7MPP0301-92` [F26],
  `sip88xx.11-2-3MPP-398`, `…11-2-3MPP-412` (friendly-waldo [F25]); `sip6821.*` [F7][F26].
- transition (Enterprise -> MPP): `sip78xx.TLexE2M-11-2-3C-12`, `…TLexE2M-11-2-3C-4`, the same name under every
  family prefix (`sip88xx.`, `sip8845_65.`, `sip7832.`, `sip8832.`) [F25].
- Enterprise: what loadid.parse_load places (`sip88xx.12-5-1SR1-4`, `sip78xx.14-1-1MN-366` [F24]).

Versions: (major, minor, maint, sr, build).  The four digits after MPP are read as loadid reads the 14.x
Enterprise group (`0301` = SR 03, patch 01): UNCONFIRMED, only ever compared within MPP loads.  A
transition load's version is the MPP release it leads to (11.2(3) for TLexE2M-11-2-3C-12), the letter
after it ignored: UNCONFIRMED.  loadid.parse_load keeps refusing MPP and transition names, so the
Enterprise model never mistakes one for its own load.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .loadid import SIP, LoadId, parse_load

ENTERPRISE, MPP, TRANSITION = "enterprise", "mpp", "transition"
MAX_NAME = 80
_MPP = re.compile(r"^sip(68xx|6821|78xx|88xx|8845_65|7832|8832)\.(\d{1,2})-(\d{1,2})-(\d{1,2})MPP(\d{4})?-(\d{1,6})$",
                  re.I)
_TL = re.compile(r"^sip(78xx|88xx|8845_65|7832|8832)\.TLexE2M-(\d{1,2})-(\d{1,2})-(\d{1,2})([A-Z]{0,3})-(\d{1,6})$",
                 re.I)

# How the User-Agent writes the version (`Cisco-CP-8841-3PCC/11.0 (00562b043615)` [F27] over HTTP;
# `Cisco-CP-8865-3PCC/12.0.3_…` in a Cisco SIP trace [F27]; `…/11.3.7_MPP_0001` in a third-party test,
# low authority).  Which one a phone sends over HTTP provisioning is open: DOTTED (12.0.3) is the default,
# MAJOR_MINOR (11.0) fits the only HTTP example, LOAD sends the load's own version text.  UNCONFIRMED.
DOTTED, MAJOR_MINOR, LOAD = "dotted", "major.minor", "load"
UA_VERSIONS = (DOTTED, MAJOR_MINOR, LOAD)


@dataclass(frozen=True)
class Firmware:
    """A placed load: its `text` without `.loads`, its kind, its family tag (88xx, 68xx, ...), its version."""
    text: str
    kind: str
    family: str
    key: tuple[int, int, int, int, int]

    @property
    def version(self) -> str:
        """The text after the family prefix: `11-3-3MPP0001-377`, the manifest's [CISCO-ID] version."""
        return self.text.split(".", 1)[1]

    @property
    def enterprise(self) -> LoadId:
        """The LoadId the Enterprise model uses for this load (its family and key)."""
        return LoadId(self.text, SIP, self.family, self.key)

    def ua_version(self, style: str = DOTTED) -> str:
        a, b, c = self.key[:3]
        if style == DOTTED:
            return f"{a}.{b}.{c}"
        if style == MAJOR_MINOR:
            return f"{a}.{b}"
        if style == LOAD:
            return self.version
        raise ValueError(f"User-Agent version style must be one of {UA_VERSIONS}, not {style!r}")


def place(text: str | None) -> Firmware | None:
    """The load a name (with or without `.loads`) means, or None: the model never guesses."""
    if not text or not isinstance(text, str) or len(text) > MAX_NAME + 6 or not text.isascii():
        return None
    text = text.strip()
    if text.lower().endswith(".loads"):
        text = text[:-6]
    if m := _MPP.match(text):
        major, minor, maint, group, build = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
        sr, patch = (int(group[:2]), int(group[2:])) if group else (0, 0)
        key = (int(major), int(minor), int(maint), sr, patch * 100000 + int(build))
        return Firmware(text, MPP, m.group(1).lower(), key)
    if m := _TL.match(text):
        key = (int(m.group(2)), int(m.group(3)), int(m.group(4)), 0, int(m.group(6)))
        return Firmware(text, TRANSITION, m.group(1).lower(), key)
    load = parse_load(text)
    if load is None or load.family not in ("78xx", "88xx", "8845_65"):
        return None
    return Firmware(load.text, ENTERPRISE, load.family, load.key)
