"""Hardware-revision floors (floors.toml): the oldest release a model at a hardware version (VID) will load.

Cisco documents them in release notes and field notices (reference phone-families.md §1.4): a phone under
its floor "will not load" the release, "remains on the preinstalled" one, and cannot be downgraded.  Offered
such a load it takes the manifest and nothing else, which looks like a signing-key rejection but is not.

Two readings, both kept (an inference must be robust to both):
- `minimum`: what the rows written for exactly this VID say (7841 V20: 14.0(1), per release notes 14.0(1)
  and FN70546);
- `safe`: also what another source of the same floor says (`stricter`: 14.0(1)SR3 per release notes
  14.0(1)SR3) and every floor written for older hardware of the model, since floors only rise (the
  reference's station rule).  A 7841 V19, which no source names, gets the V04+ `minimum` 10.3(1) and a
  `safe` of 14.0(1)SR2; a 7841 V03 ("original" hardware) no `minimum` and a `safe` of 10.1(1)SR1.
A caller never offers a load under `minimum`; it prefers one at or above `safe` when the library has it.

Pure: reads its own table at import; no other I/O.  The recovery core asks `floor_for` (VID known) and
`highest_floor` (VID unknown: a load at or above it is under no documented floor of the model).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .models import by_name, normalize_model
from .versions import version_key

DATA = Path(__file__).with_name("floors.toml")
FIRMWARE = ("enterprise", "mpp")
KEYS = {"models", "vid_from", "vid_to", "firmware", "minimum", "stricter", "source", "quote"}
MAX_VID = 99
_VID = re.compile(r"^\s*V?0*(\d{1,2})\s*$", re.I)


class FloorsError(ValueError):
    """floors.toml is malformed; str() names the row and the key."""


@dataclass(frozen=True)
class Row:
    models: tuple[str, ...]
    vid_from: int
    vid_to: int | None            # None: this VID and every later one
    firmware: str
    minimum: str                  # as Cisco writes it, "14.0(1)SR2"
    key: tuple[int, ...]          # versions.version_key(minimum)
    stricter: str | None
    stricter_key: tuple[int, ...] | None
    source: str
    quote: str | None = None

    def covers(self, model: str, vid: int, firmware: str) -> bool:
        return (model in self.models and firmware == self.firmware and self.vid_from <= vid
                and (self.vid_to is None or vid <= self.vid_to))


@dataclass(frozen=True)
class Floor:
    """The floor for one model at one VID."""
    model: str                    # canonical ("CP-7841")
    vid: int | None               # None for highest_floor (any VID)
    minimum: str | None           # documented for exactly this VID; None when no row names it
    minimum_key: tuple[int, ...] | None
    safe: str                     # the strictest reading (see the module docstring)
    safe_key: tuple[int, ...]
    sources: tuple[str, ...]      # of every row behind either reading

    def allows(self, version: tuple[int, ...] | None) -> bool:
        """Whether a load of this version key is at or above `minimum` (a version the station cannot read: False)."""
        if self.minimum_key is None:
            return True
        return version is not None and tuple(version) >= self.minimum_key

    def safe_for(self, version: tuple[int, ...] | None) -> bool:
        """Whether a load is at or above the strictest reading."""
        return version is not None and tuple(version) >= self.safe_key


def parse_vid(text: str | int | None) -> int | None:
    """"V04", "v4", "04", 4 -> 4; None for anything else (a hardwareRevision like "1.0" is not a VID)."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text if 0 < text <= MAX_VID else None
    m = _VID.match(str(text)[:16])
    vid = int(m.group(1)) if m else 0
    return vid if 0 < vid <= MAX_VID else None


def _version(row: int, key: str, value: object) -> tuple[str, tuple[int, ...]]:
    if not isinstance(value, str) or not re.match(r"^\d+\.\d+\(\d+\)(SR\d+)?$", value):
        raise FloorsError(f"floor {row}: {key} = {value!r} is not a release as Cisco writes it, e.g. 14.0(1)SR2")
    parsed = version_key(value)
    if parsed is None:
        raise FloorsError(f"floor {row}: {key} = {value!r} is not a release the station can compare")
    return value, parsed


def load_rows(text: str) -> tuple[Row, ...]:
    """Parse and validate floors.toml text.

    Raises:
        FloorsError: naming the row (1-based) and the key: an unknown key, a model not in models.toml, a VID out
        of 1..99 or a closed range the wrong way round, an unknown firmware kind, a release that does not parse,
        a `stricter` not above `minimum`, a missing source.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FloorsError(f"floors.toml is not TOML: {exc}") from None
    rows = []
    for i, entry in enumerate(data.get("floor", []), 1):
        if not isinstance(entry, dict):
            raise FloorsError(f"floor {i}: not a table")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise FloorsError(f"floor {i}: unknown key {unknown[0]}")
        models = entry.get("models")
        if not isinstance(models, list) or not models:
            raise FloorsError(f"floor {i}: models must be a non-empty list of model names")
        for name in models:
            if not isinstance(name, str) or by_name(name) is None or normalize_model(name) != name:
                raise FloorsError(f"floor {i}: models: {name!r} is not a canonical model name of models.toml")
        vid_from, vid_to = entry.get("vid_from"), entry.get("vid_to")
        if not isinstance(vid_from, int) or isinstance(vid_from, bool) or not 1 <= vid_from <= MAX_VID:
            raise FloorsError(f"floor {i}: vid_from must be a hardware version 1..{MAX_VID}")
        if vid_to is not None and (not isinstance(vid_to, int) or isinstance(vid_to, bool)
                                   or not vid_from <= vid_to <= MAX_VID):
            raise FloorsError(f"floor {i}: vid_to must be vid_from..{MAX_VID}")
        firmware = entry.get("firmware")
        if firmware not in FIRMWARE:
            raise FloorsError(f"floor {i}: firmware must be one of {', '.join(FIRMWARE)}")
        minimum, key = _version(i, "minimum", entry.get("minimum"))
        stricter, stricter_key = None, None
        if "stricter" in entry:
            stricter, stricter_key = _version(i, "stricter", entry["stricter"])
            if stricter_key <= key:
                raise FloorsError(f"floor {i}: stricter {stricter} is not above minimum {minimum}")
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            raise FloorsError(f"floor {i}: source is missing: every floor says where it comes from")
        quote = entry.get("quote")
        if quote is not None and not isinstance(quote, str):
            raise FloorsError(f"floor {i}: quote must be text")
        rows.append(Row(tuple(models), vid_from, vid_to, firmware, minimum, key, stricter, stricter_key, source, quote))
    return tuple(rows)


ROWS: tuple[Row, ...] = load_rows(DATA.read_text())


def _human(key: tuple[int, ...], rows: list[Row]) -> str:
    """The release text a row wrote for this key."""
    for r in rows:
        if r.key == key:
            return r.minimum
        if r.stricter_key == key and r.stricter:
            return r.stricter
    return ".".join(map(str, key))


def _floor(name: str, vid: int | None, exact: list[Row], older: list[Row]) -> Floor | None:
    if not exact and not older:
        return None
    minimum_key = max((r.key for r in exact), default=None)
    every = exact + older
    safe_key = max(max(r.key, r.stricter_key or r.key) for r in every)
    sources = tuple(dict.fromkeys(r.source for r in every))
    return Floor(name, vid, _human(minimum_key, exact) if minimum_key else None, minimum_key,
                 _human(safe_key, every), safe_key, sources)


def floor_for(model: str, vid: str | int | None, firmware: str = "enterprise",
              rows: tuple[Row, ...] = ROWS) -> Floor | None:
    """The floor for `model` (any spelling) at hardware version `vid` ("V20", 20).

    Returns:
        the Floor; None when the VID is unknown or unreadable, or no source names a floor for this model at
        this VID or older hardware (unknown is never a floor).
    """
    vid_n = parse_vid(vid)
    name = normalize_model(model or "")
    if vid_n is None or by_name(name) is None:
        return None
    mine = [r for r in rows if name in r.models and r.firmware == firmware]
    exact = [r for r in mine if r.covers(name, vid_n, firmware)]
    older = [r for r in mine if r.vid_from <= vid_n and r not in exact]
    return _floor(name, vid_n, exact, older)


def highest_floor(model: str, firmware: str = "enterprise", rows: tuple[Row, ...] = ROWS) -> Floor | None:
    """The highest floor of any VID of `model`: with the VID unknown, a load at or above its `safe` is under
    no documented floor (the reference's rule: prefer the newest load).  None when the model has no floor."""
    name = normalize_model(model or "")
    mine = [r for r in rows if name in r.models and r.firmware == firmware]
    return _floor(name, None, mine, [])
