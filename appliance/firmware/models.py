"""Cisco phone model table (models.toml): device types, term files, load families, option 60 strings."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .versions import family as load_family

DATA = Path(__file__).with_name("models.toml")


@dataclass(frozen=True)
class Model:
    name: str
    device_type: int
    label: str
    families: tuple[str, ...] = ()
    device_type_alt: tuple[int, ...] = ()
    term: str | None = None
    option60: tuple[str, ...] = ()
    reset: str | None = None
    note: str | None = None
    manifest: bool = True            # False: its loads have no .loads manifest, so the station cannot upgrade it
    images: str | None = None        # what its firmware files are when they have no manifest (".bin", ".sbin/.zup")
    source: str | None = None        # where the row's values come from
    mpp_only: bool = False           # runs multiplatform (3PCC) firmware only (6800): no Enterprise load, no XMLDefault

    @property
    def digits(self) -> str:
        m = re.search(r"\d{4}|\d{3}", self.name)
        return m.group(0) if m else self.name

    @property
    def device_types(self) -> tuple[int, ...]:
        """Every loadInformationNNN number to emit: the primary first, then any a disagreeing source gives."""
        return (self.device_type, *self.device_type_alt)

    @property
    def is_7940(self) -> bool:
        """7940/7960: OS79XX.TXT and the .cnf config instead of (or besides) the XML."""
        return any(f.upper() in ("P003", "P0S3", "P0M3") for f in self.families)

    def as_dict(self) -> dict:
        return {"name": self.name, "device_type": self.device_type, "device_type_alt": list(self.device_type_alt),
                "label": self.label, "term": self.term, "families": list(self.families),
                "option60": list(self.option60), "reset": self.reset, "note": self.note,
                "manifest": self.manifest, "images": self.images, "source": self.source,
                "mpp_only": self.mpp_only}


def _load(path: Path = DATA) -> tuple[Model, ...]:
    data = tomllib.loads(path.read_text())
    resets = data.get("defaults", {})
    out = []
    for entry in data["model"]:
        reset = entry.get("reset")
        out.append(Model(
            name=entry["name"], device_type=int(entry["device_type"]), label=entry["label"],
            families=tuple(entry.get("families", ())), device_type_alt=tuple(int(x) for x in entry.get("device_type_alt", ())),
            term=entry.get("term"), option60=tuple(entry.get("option60", ())),
            reset=resets.get(reset, reset) if reset else None, note=entry.get("note"),
            manifest=bool(entry.get("manifest", True)), images=entry.get("images"), source=entry.get("source"),
            mpp_only=bool(entry.get("mpp_only", False))))
    return tuple(out)


MODELS: tuple[Model, ...] = _load()
_BY_NAME = {m.name.upper(): m for m in MODELS}
_BY_OPTION60 = {s.casefold(): m.name for m in MODELS for s in m.option60}
_CP = re.compile(r"CP-?(\d{4})(G)?(-GE)?", re.I)
_SHORT = re.compile(r"(?:IP Phone|Wireless Phone)\s+(\d{4})\b", re.I)


def normalize_model(text: str) -> str:
    """"7965", "CP-7965G", "cp-7965", "Cisco 7965" -> "CP-7965G"; text we cannot place is returned stripped."""
    raw = (text or "").strip()
    up = raw.upper()
    if up in _BY_NAME:
        return _BY_NAME[up].name
    m = re.search(r"(\d{4})(G)?(-?GE)?(NR)?", up)
    if not m:
        return raw
    digits, ge, nr = m.group(1), bool(m.group(3)), bool(m.group(4))
    candidates = [x for x in MODELS if x.digits == digits]
    if not candidates:
        return raw
    for c in candidates:
        if c.name.endswith("-GE") == ge and c.name.endswith("NR") == nr:   # 8851NR: the no-radio variant
            return c.name
    for c in candidates:
        if c.name.endswith("-GE") == ge:
            return c.name
    return candidates[0].name


def by_name(model: str) -> Model | None:
    """The table row for any spelling of a model, or None."""
    return _BY_NAME.get(normalize_model(model).upper())


def model_from_vendor_class(text: str | bytes | None) -> str | None:
    """Canonical model from DHCP option 60; None for unknown vendors and the old 7940/60 loader (no model in it)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    clean = text.replace("\x00", "").strip()
    if not clean:
        return None
    exact = _BY_OPTION60.get(clean.casefold())
    if exact:
        return exact
    if "cisco" not in clean.casefold():
        return None
    for rx in (_CP, _SHORT):
        m = rx.search(clean)
        if m:
            guess = normalize_model(m.group(0).replace("CP", "").replace("cp", "").lstrip("-"))
            if guess.upper() in _BY_NAME:
                return guess
    return None


def models_for_load(load_id: str) -> list[str]:
    """Models that run a load, from its ID's family prefix ("SCCP45.9-4-2SR4-3S" -> CP-7945G, CP-7965G)."""
    fam = load_family(load_id)
    if not fam:
        return []
    f = fam.casefold()
    return [m.name for m in MODELS if any(x.casefold() == f for x in m.families)]


def families_for_model(model: str) -> tuple[str, ...]:
    m = by_name(model)
    return m.families if m else ()
