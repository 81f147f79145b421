"""Hardware-revision floors: the oldest load a 7800/8800 of a given VID runs (phone-families.md §1.4).

Cisco's wording: a phone below its floor "will not load the IP telephony firmware version required …
remains on the preinstalled Enterprise IP telephony firmware version" (FN70546 [F6]), and "the phone
firmware does not allow the phone to be downgraded" below it (7800 RN 10.1(1)SR1 [F5]).  So a load under
the floor is refused whether it is older or newer than the running one; truth.py says how.

Each row: the models, the VIDs it covers (first, last; None = every later VID), the floor, its source.
Rows are read as written; where one VID range ends is inference, said on the row, and no two rows
cover the same model and VID (a test holds them to it).  Floors never fall
as VIDs rise except at V20 of the 7841, where the documents give 14.0(1) (RN 14.0(1), FN70546) after
14.0(1)SR2 for V18 (RN 14.0(1)SR2): the rows keep what each source says, V18 stays its own row.
The V20 floor has two readings (RN 14.0(1) and FN70546 say 14.0(1), RN 14.0(1)SR3 says 14.0(1)SR3):
`floor(..., v20=V20_SR3)` takes the second, so tests can run against both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .loadid import SIP, LoadId, human

V20_RN, V20_SR3 = "14.0(1)", "14.0(1)SR3"
V20_READINGS = (V20_RN, V20_SR3)
V20 = "V20 reading"          # placeholder in the table for the selectable V20 floor


@dataclass(frozen=True)
class FloorRow:
    models: tuple[str, ...]
    first: int
    last: int | None
    floor: str               # human form, "10.1(1)SR1"; V20 for the selectable reading
    source: str


ROWS = (
    FloorRow(("7841",), 2, 3, "10.1(1)SR1",
             "7821/7841/7861 RN 10.1(1)SR1 [F5]: 7841 V02 'does not allow the phone to be downgraded to releases "
             "earlier than 10.1(1)SR1'; V03 (still 'original' hardware, admin guide) taken to keep it: inference"),
    FloorRow(("7811",), 1, None, "10.3(1)",
             "7800 Admin Guide, Cisco IP Phone Hardware [F5]: 'current' hardware (7811 V01) 'must run Firmware "
             "Release 10.3(1) or later and you cannot downgrade'"),
    FloorRow(("7821",), 3, 19, "10.3(1)", "7800 Admin Guide [F5]: 7821 V03 is current hardware, 10.3(1) or later"),
    FloorRow(("7841",), 4, 17, "10.3(1)", "7800 Admin Guide [F5]: 7841 V04+ is current hardware, 10.3(1) or later"),
    FloorRow(("7861",), 3, 19, "10.3(1)", "7800 Admin Guide [F5]: 7861 V03+ is current hardware, 10.3(1) or later"),
    FloorRow(("7841",), 18, 19, "14.0(1)SR2", "7800 RN 14.0(1)SR2 [F5]: 7841 V18; ends where the V20 row starts"),
    FloorRow(("7821", "7841", "7861"), 20, None, V20,
             "7800 RN 14.0(1) [F5] and FN70546 [F6] ('HW V20 or later require minimum 14.0'): 14.0(1); "
             "7800 RN 14.0(1)SR3 [F5]: 14.0(1)SR3.  7811 unchanged"),
    FloorRow(("8811", "8841", "8851"), 8, 14, "11.7(1)",
             "8800 RN 11.7(1) [F5]: 8811/8841/8851/8851NR V08 (no 8861 change); ends where the V15 row starts"),
    FloorRow(("8811", "8841", "8851", "8861"), 15, None, "12.6(1)",
             "FN70546 [F6]: 'HW V15 or later require minimum 12.6' (label 'SW must be 12.6 or later')"),
)
# 8845/8865: no floor documented (§1.4 lists none; FN74296's text was not captured, UNCONFIRMED).
_VID = re.compile(r"^V(\d{1,3})$", re.I)


def vid_number(vid: str) -> int:
    """"V04" -> 4; ValueError for anything else."""
    m = _VID.match((vid or "").strip())
    if not m:
        raise ValueError(f"not a hardware version (VID) like V04: {vid!r}")
    return int(m.group(1))


def floor_row(model_name: str, vid: str) -> FloorRow | None:
    """The row that covers this model and VID, or None (no floor known)."""
    n = vid_number(vid)
    for row in ROWS:
        if model_name in row.models and row.first <= n and (row.last is None or n <= row.last):
            return row
    return None


def floor(model_name: str, family: str, vid: str, v20: str = V20_RN) -> LoadId | None:
    """The oldest load a `model_name` of this VID runs, as a LoadId of its `family`; None when none is known."""
    if v20 not in V20_READINGS:
        raise ValueError(f"V20 floor reading must be one of {V20_READINGS}, not {v20!r}")
    row = floor_row(model_name, vid)
    if row is None:
        return None
    text = v20 if row.floor == V20 else row.floor
    return LoadId(text, SIP, family, human(text))
