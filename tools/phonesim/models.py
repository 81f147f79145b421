"""The phone models the simulator knows: family, load prefix, term file, device type, model number.

From the reference's tables (cisco-phones.md §3.4, §2.2 term-file mapping, §1.3
option 60; phone-families.md §1.2, §2, §4).  Only the families whose boot and
upgrade the reference describes are here: the Java "TNP" 79x1/2/5 (with
7906/7911/7931/797x) and the 7940/60 in MODELS; the 6921/6941/6961, 8941/8945 and
the 7800/8800 Enterprise phones in FAMILY_MODELS.  Any other model is refused by
name, never simulated as something it is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TNP, P79XX = "tnp", "7940"
SIX9, EIGHT94, FIVEG = "69xx", "894x", "5g"        # 6921/41/61; 8941/45; 7800/8800 Enterprise
TLV, CD34 = "tlv", "cd34"                          # signed-file formats: signed.py, container5.py


@dataclass(frozen=True)
class Model:
    name: str            # "7965"
    number: str          # "CP-7965G": option 60 suffix and DeviceInformationX modelNumber
    family: str          # TNP or P79XX
    loads: str           # load-ID family: "45" for SCCP45.*/SIP45.*, "P003" for 7940/60
    term: str | None     # term file a factory-reset phone asks for (§2.2)
    device_type: int     # XMLDefault.cnf.xml <loadInformationNNN> (§3.4)
    aliases: tuple[str, ...] = ()     # other load-ID families it runs (SIP8941_8945.* beside SCCP894x.*)
    container: str = TLV              # TLV header (signed.py) or the 5th-generation container (container5.py)
    platforms: tuple[str, ...] = ()   # file-name tag of [PLATFORM_1], [PLATFORM_2], ... (5th generation)
    http_first: bool = False          # the family's loads try HTTP :6970 before TFTP
    web: bool = True                  # web server on at power-on, before any config
    shipped: str | None = None        # a real load of the family, the default start

    @property
    def term_number(self) -> str | None:
        return self.term[4:6] if self.term else None

    @property
    def load_families(self) -> tuple[str, ...]:
        """The load-ID families (LoadId.family) this model runs."""
        return ("P003", "P0S3") if self.family == P79XX else (self.loads, *self.aliases)


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

# Beyond the 7900.  Device types: cisco-phones.md §3.4 and phone-families.md §2.5.  6921 = 495 and
# 6941 = 496 follow chan-sccp; sccp_manager swaps them (§3.4 note, UNCONFIRMED which is right): a phone
# of either reading is PhoneSpec(device_type=...).  None of these has a term file (§2.1: none in any 78xx
# package; none listed for 69xx/894x in §2.2), so a factory reset is not modelled for them.
# HTTP first: 8945 console log "HTTP download error, try tftp download" [35] and 89xx/99xx [39]
# (cisco-phones.md §2.1); 7800/8800 "HTTP 6970 first, then TFTP" (§2.2, phone-families.md §2.3, the firmware
# fallback UNCONFIRMED).  69xx: no source says HTTP first, so TFTP only unless a test asks.
# Web off by default on 7800/8800: "Web Access is disabled by default" [51] (§7.2, phone-families.md §1.5);
# 69xx/894x: not stated, on as the 79xx (UNCONFIRMED).
# Platforms (phone-families.md §1.2): 78xx PLATFORM_1 files are *78xx*, PLATFORM_2 *2.78xx*; which hardware
# is which is UNCONFIRMED, so a phone's platform is a PhoneSpec setting.  8800: no real manifest is public
# (§7); by inference from the 7800 the same INI layout, with the three platform tags third-party notes name
# (88xx, 288xx, 388xx [F3], low authority, UNCONFIRMED); 8845/8865 one platform (nothing known, UNCONFIRMED).
# Option 60 is sent as for the 79xx, "Cisco Systems, Inc. IP Phone CP-8841" + NUL: the string has only
# third-party examples [F15] and the NUL is UNCONFIRMED for 78xx/88xx (phone-families.md §2.4).
# Shipped loads are real IDs: SCCP69xx.9-3-1-3 [F1], SCCP894x.9-4-2SR1-2 [F1], sip78xx.10-3-1-12 [F16],
# sip88xx.10-3-1-20 [F14], sip8845_65.12-5-1SR2-2 [F12].
_SIX9 = dict(aliases=(), container=TLV, http_first=False, web=True, shipped="SCCP69xx.9-3-1-3")
_EIGHT94 = dict(aliases=("8941_8945",), container=TLV, http_first=True, web=True, shipped="SCCP894x.9-4-2SR1-2")
_P78 = dict(container=CD34, platforms=("78xx", "2.78xx"), http_first=True, web=False, shipped="sip78xx.10-3-1-12")
_P88 = dict(container=CD34, platforms=("88xx", "288xx", "388xx"), http_first=True, web=False,
            shipped="sip88xx.10-3-1-20")
_P8845 = dict(container=CD34, platforms=("8845_65",), http_first=True, web=False, shipped="sip8845_65.12-5-1SR2-2")
_FAMILY_TABLE = (
    # name, number, family, load family, term file, device type, traits
    ("6921", "CP-6921", SIX9, "69xx", None, 495, _SIX9),
    ("6941", "CP-6941", SIX9, "69xx", None, 496, _SIX9),
    ("6961", "CP-6961", SIX9, "69xx", None, 497, _SIX9),
    ("8941", "CP-8941", EIGHT94, "894x", None, 586, _EIGHT94),
    ("8945", "CP-8945", EIGHT94, "894x", None, 585, _EIGHT94),
    ("7811", "CP-7811", FIVEG, "78xx", None, 36213, _P78),
    ("7821", "CP-7821", FIVEG, "78xx", None, 621, _P78),
    ("7841", "CP-7841", FIVEG, "78xx", None, 622, _P78),
    ("7861", "CP-7861", FIVEG, "78xx", None, 623, _P78),
    ("8811", "CP-8811", FIVEG, "88xx", None, 36217, _P88),
    ("8841", "CP-8841", FIVEG, "88xx", None, 683, _P88),
    ("8851", "CP-8851", FIVEG, "88xx", None, 684, _P88),
    ("8861", "CP-8861", FIVEG, "88xx", None, 685, _P88),
    ("8845", "CP-8845", FIVEG, "8845_65", None, 36224, _P8845),
    ("8865", "CP-8865", FIVEG, "8845_65", None, 36225, _P8845),
)
FAMILY_MODELS = {row[0]: Model(*row[:6], **row[6]) for row in _FAMILY_TABLE}   # type: ignore[arg-type]
ALL_MODELS = {**MODELS, **FAMILY_MODELS}


def model(name: str) -> Model:
    """Any spelling ("7965", "CP-7965G", "cp-7941g-ge") to its Model; ValueError for models not simulated."""
    text = (name or "").strip().upper().removeprefix("CP-")
    m = re.fullmatch(r"(\d{4})G?(-GE)?", text)
    if not m:
        raise ValueError(f"unknown phone model {name!r}")
    key = m.group(1) + ("G-GE" if m.group(2) and m.group(1) in ("7941", "7961") else "")
    if key not in ALL_MODELS:
        raise ValueError(f"phone model {name!r} is not simulated (known: {', '.join(ALL_MODELS)})")
    return ALL_MODELS[key]
