"""The phone models the simulator knows: family, load prefix, term file, device type, model number.

From the reference's tables (cisco-phones.md §3.4, §2.2 term-file mapping, §1.3
option 60).  Only the families whose boot and upgrade the reference describes are
here: the Java "TNP" 79x1/2/5 (with 7906/7911/7931/797x) and the 7940/60.  Any
other model is refused by name, never simulated as something it is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TNP, P79XX = "tnp", "7940"


@dataclass(frozen=True)
class Model:
    name: str            # "7965"
    number: str          # "CP-7965G": option 60 suffix and DeviceInformationX modelNumber
    family: str          # TNP or P79XX
    loads: str           # load-ID family: "45" for SCCP45.*/SIP45.*, "P003" for 7940/60
    term: str | None     # term file a factory-reset phone asks for (§2.2)
    device_type: int     # XMLDefault.cnf.xml <loadInformationNNN> (§3.4)

    @property
    def term_number(self) -> str | None:
        return self.term[4:6] if self.term else None


_TABLE = (
    # name, number, family, load prefix, term file, device type
    ("7906", "CP-7906G", TNP, "11", "term06.default.loads", 369),
    ("7911", "CP-7911G", TNP, "11", "term11.default.loads", 307),
    ("7931", "CP-7931G", TNP, "31", "term31.default.loads", 348),
    ("7941", "CP-7941G", TNP, "41", "term41.default.loads", 115),
    ("7941G-GE", "CP-7941G-GE", TNP, "41", "term41.default.loads", 309),   # term41 UNCONFIRMED (§10 item 6)
    ("7961", "CP-7961G", TNP, "41", "term61.default.loads", 30018),
    ("7961G-GE", "CP-7961G-GE", TNP, "41", "term61.default.loads", 308),   # term61 UNCONFIRMED (§10 item 6)
    ("7942", "CP-7942G", TNP, "42", "term42.default.loads", 434),
    ("7962", "CP-7962G", TNP, "42", "term62.default.loads", 404),
    ("7945", "CP-7945G", TNP, "45", "term45.default.loads", 435),
    ("7965", "CP-7965G", TNP, "45", "term65.default.loads", 436),
    ("7970", "CP-7970G", TNP, "70", "term70.default.loads", 30006),
    ("7971", "CP-7971G-GE", TNP, "70", "term71.default.loads", 119),       # 7971 runs the 7970 images (§2.2)
    ("7975", "CP-7975G", TNP, "75", "term75.default.loads", 437),
    ("7940", "CP-7940G", P79XX, "P003", None, 8),
    ("7960", "CP-7960G", P79XX, "P003", None, 7),
)
MODELS = {row[0]: Model(*row) for row in _TABLE}


def model(name: str) -> Model:
    """Any spelling ("7965", "CP-7965G", "cp-7941g-ge") to its Model; ValueError for models not simulated."""
    text = (name or "").strip().upper().removeprefix("CP-")
    m = re.fullmatch(r"(\d{4})G?(-GE)?", text)
    if not m:
        raise ValueError(f"unknown phone model {name!r}")
    key = m.group(1) + ("G-GE" if m.group(2) and m.group(1) in ("7941", "7961") else "")
    if key not in MODELS:
        raise ValueError(f"phone model {name!r} is not simulated (known: {', '.join(MODELS)})")
    return MODELS[key]
