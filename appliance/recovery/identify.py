"""What load a phone says it runs, as a load ID the planner can use (reference cisco-phones.md §0.0 items 3, 4; §7.1).

A phone's own word comes in three shapes: on 79x1/2/5 DeviceInformationX names
the application jar in `appLoadID` (`jar42sccp.9-4-2ES26.sbn`) and the load ID in
asterisks in `versionID` (`*SCCP42.9-4-2SR3-1S*`); on 7940/60 `appLoadID` is the
load ID (`P00308010200`) and `versionID` a version (`8.1(2.0)`); CDP carries the
load ID (`SCCP41.8-2-1S`).  Taking a component for a load once put
`jar45sccp.9-4-2SR4-3.sbn` into a config, so a string becomes a load only as a
catalog load ID, as the one load whose manifest lists it, or as a well-formed
load ID of a known model the library does not hold (still the truth about the
phone, which the planner needs to compare versions).  Anything else is
reported with `load=None` and the reason: an unknown string never becomes a load.

Pure (no I/O): the catalog is any object with `.load(id)` and `.load_listing(component)`
(appliance.firmware.catalog.Catalog, or a small fake in tests).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.firmware.models import by_name, models_for_load
from appliance.firmware.versions import family, version_key

MAX_ID = 80          # longer than any Cisco load or component name (versions._bare uses the same bound)
MAX_RAW = 96         # what is kept of a string for the record
_ID_CHARS = re.compile(r"[A-Za-z0-9._\-]+")
# Component and package suffixes (reference §4.1/§4.2): .sbn .sb2 .sgn .sebn .sbin .zup .bin .bin1-9 .zz, and
# any last dot-part without a digit (a file extension such as .txt or .jar; load IDs end in a version).
_COMPONENT = re.compile(r"\.(?:sbn|sb2|sgn|sebn|sbin|zup|bin\d?|zz|loads|cop|zip|tar|gz|tgz)$", re.I)
_EXTENSION = re.compile(r"\.[^.\d]*$")
_PROTO_IN_NAME = re.compile(r"(sccp|sip)", re.I)


@dataclass(frozen=True)
class Identified:
    """One identification.

    load: the load ID (catalog spelling when the library holds it); None when the string is not a load ID.
    raw: the string it came from, printable ASCII and bounded, safe to store and show.
    how: where it came from ("web versionID", "web appLoadID", "cdp"), with ", via <manifest>" when a component
         was mapped through the manifest listing it, and ", not in library" for a load the library lacks.
    why: for load None, why it is unknown; otherwise a note (e.g. the page's two fields disagree), or "".
    in_library: the load is a catalog load ID.
    """
    load: str | None
    raw: str
    how: str
    why: str = ""
    in_library: bool = False


def shown(value: object) -> str:
    """`value` as printable ASCII, at most MAX_RAW characters (the rest marked '...'): safe for the store and logs."""
    text = value if isinstance(value, str) else "" if value is None else repr(type(value).__name__)
    out = "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_RAW])
    return out + "..." if len(text) > MAX_RAW else out


def _unknown(raw: object, how: str, why: str) -> Identified:
    return Identified(None, shown(raw), how, why)


def _model_of(text: object):
    """The models.toml row for a page's modelNumber or CDP platform ("CP-7965G", "Cisco IP Phone 7941"), or None."""
    if not isinstance(text, str) or not text.strip() or len(text) > 200:
        return None
    return by_name(text)


def _name_protocol(name: str) -> str | None:
    """"sccp"/"sip" from a component's own name (jar45sccp, cvm42sip); None for shared ones (cnu45, apps45, dsp45)."""
    head = name.split(".", 1)[0]
    m = _PROTO_IN_NAME.search(head)
    return m.group(1).lower() if m else None


def _file_name(text: str) -> bool:
    """Ends like a file (a component or package suffix, or a last dot-part with no digit), not like a version."""
    return bool(_COMPONENT.search(text) or ("." in text and _EXTENSION.search(text)))


def well_formed(load_id: str) -> bool:
    """A string shaped like a load ID of a model the station knows: a version, a family some model runs, no file suffix.

    Component names are not load IDs even when versions.family reads one (jar45sccp.9-4-2SR4-3.sbn has a
    family, jar45sccp, that no model runs), nor are term manifests (term65.default) or bare versions (8.5(2)).

    Args:
        load_id: a bare candidate (no '.loads', no asterisks).
    Returns:
        True if it may be stated as the load a phone runs.
    """
    if not isinstance(load_id, str) or not load_id or len(load_id) > MAX_ID or not _ID_CHARS.fullmatch(load_id):
        return False
    if _file_name(load_id):
        return False
    fam = family(load_id)
    if fam is None or fam.lower().startswith("term") or version_key(load_id) is None:
        return False
    return bool(models_for_load(load_id))


def _wrong_model(load_id: str, model) -> str:
    """Why `load_id` cannot be this model's ("" when it can, or when the model or the load's models are unknown)."""
    if model is None:
        return ""
    runs_on = models_for_load(load_id)
    if runs_on and model.name not in runs_on:
        return f"{load_id} runs on {', '.join(runs_on)}, not on this {model.name}"
    return ""


def resolve(value: object, catalog, how: str, model=None) -> Identified:
    """One string a phone reported, as a load.

    Args:
        value: the reported text (any type: anything but a string is unknown).
        catalog: `.load(id) -> Load | None` (case-insensitive, '.loads' optional) and `.load_listing(name) -> [Load]`.
        how: the source tag for the result ("web versionID", "cdp", ...).
        model: the phone's models.toml row if known; a load for another model is refused.
    Returns:
        an Identified; load None with `why` for anything that is not a load ID.  Never raises for bad input.
    """
    if not isinstance(value, str):
        return _unknown(value, how, f"not text ({type(value).__name__})")
    text = value.strip().strip("*").strip()
    if not text:
        return _unknown(value, how, "empty")
    if len(text) > MAX_ID:
        return _unknown(value, how, f"longer than {MAX_ID} characters: not a Cisco load or file name")
    if not text.isascii() or not _ID_CHARS.fullmatch(text):
        return _unknown(value, how, "characters no load ID or component name has")
    bare = text[:-len(".loads")] if text.lower().endswith(".loads") else text
    if not bare:
        return _unknown(value, how, "empty")
    load = catalog.load(bare)
    if load is not None and not (family(load.id) or "").lower().startswith("term"):
        why = _wrong_model(load.id, model)
        return _unknown(value, how, why) if why else Identified(load.id, shown(value), how, in_library=True)
    names = [text] if _COMPONENT.search(text) else [text, text + ".sbn"]   # a jar may be named without .sbn (§7.1)
    for name in names:
        listing = catalog.load_listing(name)
        if not listing:
            continue
        proto = _name_protocol(name)
        fits = [x for x in listing if proto is None or x.protocol == proto]
        ids = sorted({x.id for x in fits})
        if len(ids) == 1:
            why = _wrong_model(ids[0], model)
            if why:
                return _unknown(value, how, why)
            manifest = getattr(fits[0], "manifest", None) or f"{ids[0]}.loads"
            return Identified(ids[0], shown(value), f"{how}, via {manifest}", in_library=True)
        if not ids:
            return _unknown(value, how, f"component {name} is listed only by loads of another protocol: "
                                        + ", ".join(sorted({x.id for x in listing})))
        return _unknown(value, how, f"component {name} is listed by {len(ids)} loads ({', '.join(ids)}): "
                                    "it does not say which one the phone runs")
    if _file_name(bare):
        return _unknown(value, how, f"{bare} is a file name no manifest in the library lists, not a load ID")
    if not well_formed(bare):
        return _unknown(value, how, "not a load ID of any model the station knows")
    why = _wrong_model(bare, model)
    if why:
        return _unknown(value, how, why)
    return Identified(bare, shown(value), f"{how}, not in library")


def _field(fields: Mapping, name: str) -> object:
    """A page field by name in any case (webpoll.parse lower-cases them); None when absent."""
    for key, value in fields.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def from_page(fields: Mapping[str, str], catalog) -> Identified:
    """The load a DeviceInformationX page states (fields as webpoll.parse returns them; keys in any case).

    On 79x1/2/5 versionID (`*SCCP42.9-4-2SR3-1S*`) is preferred to appLoadID (the jar, mapped through the manifest
    listing it); on 7940/60 (modelNumber CP-7940/CP-7960) appLoadID is the load ID and versionID only a version.
    bootLoadID is the boot image and never a load.

    Args:
        fields: the page's fields ({"apploadid": ..., "versionid": ..., "modelnumber": ...}); any content.
        catalog: as for `resolve`.
    Returns:
        an Identified; load None (with why) when neither field is a load ID.  Never raises for bad input.
    """
    if not isinstance(fields, Mapping):
        return _unknown("", "web", f"not a page's fields ({type(fields).__name__})")
    model = _model_of(_field(fields, "modelnumber"))
    app, version = _field(fields, "apploadid"), _field(fields, "versionid")
    order = [("appLoadID", app), ("versionID", version)] if model is not None and model.is_7940 \
        else [("versionID", version), ("appLoadID", app)]
    results = [resolve(value, catalog, f"web {name}", model) for name, value in order if value is not None]
    if not results:
        return _unknown("", "web", "the page has neither appLoadID nor versionID")
    found = [r for r in results if r.load is not None]
    if not found:
        return Identified(None, results[0].raw, results[0].how, "; ".join(f"{r.how}: {r.why}" for r in results))
    best = found[0]
    others = [r for r in found[1:] if (r.load or "").lower() != (best.load or "").lower()]
    if others:
        note = "; ".join(f"{r.how.split(',')[0].removeprefix('web ')} says {r.load}" for r in others)
        why = f"{note}; taken from {best.how.split(',')[0]}"
        return Identified(best.load, best.raw, best.how, why, best.in_library)
    return best


def from_cdp(version: str, platform: str | None, catalog) -> Identified:
    """The load a CDP announcement states (`Version : SCCP41.8-2-1S`, `Platform: Cisco IP Phone 7941`).

    CDP is unauthenticated (lldpd does not check its checksum): the result is a claim, mapped and refused by the
    same rules as the web page, and a load for another model than the platform names is refused.

    Args:
        version: the announcement's software version (the value after "Version :").
        platform: its platform text, or None.
        catalog: as for `resolve`.
    Returns:
        an Identified with how "cdp..."; load None (with why) for anything that is not a load ID.
    """
    return resolve(version, catalog, "cdp", _model_of(platform))


MAX_REVISION = 16     # a hardwareRevision is a short number ("1.0"); anything longer is not kept
_VID = re.compile(r"^V(\d{1,2})$", re.I)
_PID = re.compile(r"^CP-[A-Z0-9][A-Z0-9\-]{2,30}$", re.I)
_REVISION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,15}$")


def vid_text(value: object) -> str | None:
    """A hardware version as the station keeps it ("V04", "V20"); None for anything else (a "1.0" is no VID)."""
    if not isinstance(value, str):
        return None
    m = _VID.match(value.strip()[:8])
    n = int(m.group(1)) if m else 0
    return f"V{n:02d}" if 0 < n <= 99 else None


def hardware(fields: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(VID, hardwareRevision) a DeviceInformationX page states (fields as webpoll.parse returns them).

    The UDI is five lines (phone-families.md §1.5): device type, description, product ID ("CP-7841"), version
    ID ("V04"), serial; the page parser turns its line breaks into spaces.  The VID is the word after the
    product ID (collinmoerman's `(CP-.+).(V\\d+).(.+)` reads it so; the readiness tool takes line [3]); a UDI
    without a product ID gives its one `Vnn` word, if it has exactly one.  hardwareRevision is another field
    (a setting such as "1.0"), kept as text to show; floors are stated in VIDs.  Never raises for bad input.
    """
    if not isinstance(fields, Mapping):
        return None, None
    udi = _field(fields, "udi")
    vid = None
    if isinstance(udi, str) and len(udi) <= 256:
        words = udi.split()
        after = [words[i + 1] for i, w in enumerate(words[:-1]) if _PID.match(w)]
        if after:
            vid = vid_text(after[-1])
        else:
            found = [v for w in words if (v := vid_text(w))]
            vid = found[0] if len(found) == 1 else None
    rev = _field(fields, "hardwarerevision")
    revision = rev.strip() if isinstance(rev, str) and _REVISION.match(rev.strip()) else None
    return vid, revision
