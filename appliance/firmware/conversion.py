"""Enterprise <-> multiplatform (MPP) conversion: which model and hardware may convert, and from which release.

Data in conversion.toml, a source per row (phone-families.md §3.1-3.5).  The V15+ 88x1 floor of MPP 11.3(3) is a
hardware floor like the others (floors.toml, firmware "mpp").  A model Cisco lists neither way is refused as "not
listed": conversion is a Cisco licence per MAC, so the station only offers it where Cisco says it works.  A VID the
station cannot read is no refusal (the phone's own check stays: a refused load is diagnosed as any refusal).
Pure: no I/O beyond reading its own table at import.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .models import by_name, normalize_model
from .versions import version_key

DATA = Path(__file__).with_name("conversion.toml")


class ConversionError(ValueError):
    """conversion.toml is wrong: names the row and the key."""


@dataclass(frozen=True)
class Refusal:
    """Why a phone may not convert: `kind` "model" (Cisco lists it as not eligible, or not at all) or "hardware"
    (its VID is under the first eligible one, `vid_from`); `why` the words for the tech."""
    kind: str
    model: str
    why: str
    vid_from: int = 0


def _release(text: object, where: str) -> tuple[int, ...]:
    key = version_key(text) if isinstance(text, str) else None
    if key is None:
        raise ConversionError(f"{where}: {text!r} is not a release")
    return key


def _models(entry: dict, where: str) -> tuple[str, ...]:
    models = entry.get("models")
    if not isinstance(models, list) or not models:
        raise ConversionError(f"{where}: models must be a non-empty list")
    for m in models:
        if not isinstance(m, str) or by_name(m) is None or normalize_model(m) != m:
            raise ConversionError(f"{where}: models: {m!r} is not a canonical model name of models.toml")
    if not isinstance(entry.get("source"), str) or not entry["source"].strip():
        raise ConversionError(f"{where}: source is missing")
    return tuple(models)


def load(text: str) -> tuple[dict[str, tuple[int, ...]], dict[str, int], dict[str, str]]:
    """(releases by name, eligible model -> first VID, refused model -> why) from conversion.toml's text.

    Raises:
        ConversionError: naming the row and key at fault.
    """
    data = tomllib.loads(text)
    rel = data.get("releases", {})
    releases = {k: _release(rel.get(k), f"releases.{k}")
                for k in ("enterprise_minimum", "direct_low", "direct_high", "mpp_back_minimum")}
    eligible: dict[str, int] = {}
    for i, entry in enumerate(data.get("eligible", []), 1):
        vid = entry.get("vid_from", 0)
        if not isinstance(vid, int) or isinstance(vid, bool) or not 0 <= vid <= 99:
            raise ConversionError(f"eligible {i}: vid_from must be 0..99")
        for m in _models(entry, f"eligible {i}"):
            eligible[m] = vid
    refused: dict[str, str] = {}
    for i, entry in enumerate(data.get("refused", []), 1):
        if not isinstance(entry.get("why"), str):
            raise ConversionError(f"refused {i}: why must be text")
        for m in _models(entry, f"refused {i}"):
            refused[m] = entry["why"]
    return releases, eligible, refused


RELEASES, ELIGIBLE, REFUSED = load(DATA.read_text())
ENTERPRISE_MINIMUM = RELEASES["enterprise_minimum"]
DIRECT_LOW, DIRECT_HIGH = RELEASES["direct_low"], RELEASES["direct_high"]
MPP_BACK_MINIMUM = RELEASES["mpp_back_minimum"]


def refusal(model: str, vid: str | None) -> Refusal | None:
    """Why a phone of `model` at hardware version `vid` ("V04"; None: unknown) may not convert, or None."""
    name = normalize_model(model or "")
    if name in REFUSED:
        return Refusal("model", name, REFUSED[name])
    if name not in ELIGIBLE:
        return Refusal("model", name, "Cisco does not list this model as eligible for conversion")
    m = re.fullmatch(r"[Vv]?(\d{1,2})", (vid or "").strip())
    if m and int(m.group(1)) < ELIGIBLE[name]:
        return Refusal("hardware", name, f"Cisco lists it as eligible from hardware version V{ELIGIBLE[name]:02d}",
                       ELIGIBLE[name])
    return None


def human(key: tuple[int, ...]) -> str:
    """(12, 5, 1, 0, 0) -> "12.5(1)"."""
    return f"{key[0]}.{key[1]}({key[2]})" + (f"SR{key[3]}" if len(key) > 3 and key[3] else "")
