"""What load a phone says it runs, as a load ID the station can act on (reference cisco-phones.md §0.0 items 3, 4).

A 79x1/2/5 page names components, not loads: `appLoadID` is the application jar
(`jar42sccp.9-4-2ES26.sbn`), `versionID` the load ID in asterisks
(`*SCCP42.9-4-2SR3-1S*`).  A 7940/60 page's `appLoadID` is the load ID
(`P00308010200`).  CDP's `Version` names the load (`SCCP41.8-2-1S`).  So: strip
the asterisks; a load ID the catalog holds is that load; a component the
catalog lists is the load whose manifest lists it; a well-formed load ID the
library does not hold is still what the phone runs (its version decides the
plan); anything else is unknown and is never written into a config.  Pure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.firmware.versions import family, version_key

MAX_TEXT = 80
_COMPONENT = re.compile(r"\.(?:sbn|sb2|sgn|sebn|sbin|zup|bin\d?|zz|jar)$", re.I)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


@dataclass(frozen=True)
class Identified:
    load: str | None    # a load ID, or None when the text could not be mapped to one
    raw: str            # the text the phone gave (bounded), for the dashboard
    how: str            # "catalog", "component", "not in library", "unknown"


def _clean(text: object) -> str:
    if not isinstance(text, str):
        return ""
    return text.strip().strip("*").strip()[:MAX_TEXT]


def _as_load(text: str, catalog) -> Identified | None:
    if not text or not _SAFE.match(text):
        return None
    bare = text[:-6] if text.lower().endswith(".loads") else text
    load = catalog.load(bare) if catalog is not None else None
    if load is not None:
        return Identified(load.id, text, "catalog")
    if _COMPONENT.search(bare):
        owners = catalog.load_listing(bare) if catalog is not None else []
        ids = sorted({x.id for x in owners})
        if len(ids) == 1:
            return Identified(ids[0], text, "component")
        return None
    if family(bare) and version_key(bare) and not bare.lower().startswith("term"):
        return Identified(bare, text, "not in library")
    return None


def from_page(fields: dict, catalog) -> Identified:
    """The load a DeviceInformationX page names.

    Args:
        fields: webpoll.parse output (lower-case keys: versionid, apploadid, ...).
        catalog: the firmware Catalog (load(id), load_listing(component)).
    Returns:
        an Identified; its load is None when nothing on the page maps to a load.
    """
    version, app = _clean(fields.get("versionid")), _clean(fields.get("apploadid"))
    for text in (version, app):
        found = _as_load(text, catalog)
        if found is not None:
            return found
    return Identified(None, version or app, "unknown")


def from_cdp(version: str, catalog) -> Identified:
    """The load a CDP/LLDP announcement names (`Version : SCCP41.8-2-1S`); same rules as a page."""
    text = _clean(version)
    return _as_load(text, catalog) or Identified(None, text, "unknown")
