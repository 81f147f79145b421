"""What the phones on the wire say they run, from lldpd's neighbour table (reference cisco-phones.md §0.0 item 4).

Every Cisco phone announces itself over CDP at link-up and every 60 s
(`Device ID: SEP001F9EAB59F1`, `Platform: Cisco IP Phone 7941`, `Version :
SCCP41.8-2-1S`); newer ones also send LLDP-MED with a software revision.
lldpd receives both; `lldpcli -f json show neighbors details` prints them.
This module reads that JSON into one claim per phone: its MAC (from the CDP
device ID `SEP<MAC>`, or the LLDP chassis ID, system name or port ID), its
model (from the platform) and its load (the version, mapped by
identify.from_cdp to a catalog load ID, or refused).

Nothing here is trusted: lldpd does not verify CDP checksums and anyone on the
segment can send a frame naming any device ID, so a neighbour is a claim, never
proof.  Input is bounded (size, entries, field lengths), malformed entries are
counted and skipped, one neighbour lldpcli printed unreadably never hides the
others (see `_documents`), two neighbours claiming different loads for one MAC cancel
each other, and `verdict` keeps a claim from overriding anything the station
learned from the phone itself (its downloads, its settling on a config, its own
web page).

Pure (no I/O): text in, claims out; the catalog is any object identify.resolve accepts.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from appliance.firmware.models import by_name

from . import identify

MAX_OUTPUT = 1 << 20        # bytes of lldpcli output read at all (a CDP neighbour with details is ~0.7 kB)
MAX_ENTRIES = 1024          # neighbours read from one listing (lldpd keeps [max-neighbors] per protocol)
MAX_FIELD = 512             # longer strings are not a device ID, platform or version (lldpd keeps up to a frame)
MAX_PROBLEMS = 20
# lldpcli 1.0.16's JSON writer escapes values but not keys, and a CDP device ID or LLDP system name becomes a key:
# one frame with a '"' or '\\' in it breaks the whole listing.  It also passes 0x1F raw.  Its pretty-printer puts
# each neighbour of a list on lines of its own between these two, at a fixed indent, which is what `_documents`
# splits on when the listing as a whole is not JSON.
ITEM_OPEN = " " * 6 + "{"
ITEM_CLOSE = (" " * 6 + "}", " " * 6 + "},")
CDP_SPLIT = " running on\n"     # lldpd's chassis descr for CDP: "<platform> running on\n<software>"
NEIGHBOUR_HOWS = ("cdp", "lldp")
_SEP = re.compile(r"SEP([0-9A-Fa-f]{12})")
_SEP_NAME = re.compile(r"SEP([0-9A-Fa-f]{12})(?:\.[A-Za-z0-9.-]{1,200})?")     # LLDP system name, maybe with a domain
_MAC = re.compile(r"([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?"
                  r"([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})")
_PORT_MAC = re.compile(r"([0-9A-Fa-f]{12}):P\d{1,2}")      # Cisco phones' LLDP port ID, "001F9EAB59F1:P1"
_ZERO = {"000000000000", "ffffffffffff"}


@dataclass(frozen=True)
class Neighbour:
    """One neighbour as lldpd listed it.

    mac: 12 lower-case hex digits, or None when nothing in the entry names one.
    via: lldpd's protocol word ("CDPv2", "LLDP").
    how: "cdp" or "lldp": the LoadReported source.
    platform: the platform (CDP) or LLDP-MED model name, printable and bounded ("" if none).
    model: the models.toml name the platform maps to, or None.
    version: the version (CDP) or LLDP-MED software revision, printable and bounded ("" if none).
    load: the catalog (or well-formed) load ID the version maps to; None if it maps to none.
    why: for load None, why.
    """
    mac: str | None
    via: str
    how: str
    platform: str = ""
    model: str | None = None
    version: str = ""
    load: str | None = None
    why: str = ""


@dataclass
class Reading:
    """One listing read: every neighbour, the claims (one per MAC, with a load), and what was wrong."""
    neighbours: list[Neighbour] = field(default_factory=list)
    claims: dict[str, Neighbour] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)     # mac -> why its claims cancelled
    problems: list[str] = field(default_factory=list)
    skipped: int = 0                                            # entries not read (malformed, not CDP/LLDP, over the cap)
    malformed: int = 0                                          # of those, neighbours lldpcli printed as broken JSON

    def problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def _text(value: object) -> str | None:
    """A bounded string field, or None."""
    return value if isinstance(value, str) and len(value) <= MAX_FIELD else None


def _id_value(node: object) -> tuple[str | None, str | None]:
    """(type, value) of lldpd's {"id": {"type": ..., "value": ...}} member."""
    if not isinstance(node, Mapping):
        return None, None
    ident = node.get("id")
    if not isinstance(ident, Mapping):
        return None, None
    return _text(ident.get("type")), _text(ident.get("value"))


def _chassis(node: object) -> tuple[str | None, Mapping | None]:
    """(system name, chassis body): lldpd keys a named chassis by its name, an unnamed one is the body itself."""
    if not isinstance(node, Mapping):
        return None, None
    if len(node) == 1:
        (name, body), = node.items()
        if isinstance(body, Mapping) and "id" in body and isinstance(name, str):
            return _text(name), body
    return None, node if "id" in node else None


def _mac(text: str | None, pattern: re.Pattern = _MAC) -> str | None:
    if not text:
        return None
    m = pattern.fullmatch(text.strip())
    if not m:
        return None
    mac = "".join(m.groups()).lower()
    return None if mac in _ZERO or int(mac[:2], 16) & 1 else mac    # no broadcast, zero or group address


def _entries(doc: object, reading: Reading) -> list[tuple[str, Mapping]]:
    """(interface, entry) pairs: lldpcli -f json prints one neighbour as an object, several as a list of them."""
    root = doc.get("lldp") if isinstance(doc, Mapping) else None
    if root is None or root == {} or root == []:
        if not isinstance(doc, Mapping) or "lldp" not in doc:
            reading.problem("not an lldpcli neighbour listing (no \"lldp\" object)")
        return []
    if not isinstance(root, Mapping):
        reading.problem("\"lldp\" is not an object")
        return []
    interfaces = root.get("interface")
    if interfaces is None:
        return []
    items = interfaces if isinstance(interfaces, list) else [interfaces]
    out: list[tuple[str, Mapping]] = []
    for item in items:
        if not isinstance(item, Mapping):
            reading.problem("an interface entry that is not an object")
            continue
        for ifname, entry in item.items():
            if len(out) >= MAX_ENTRIES:
                reading.problem(f"more than {MAX_ENTRIES} neighbours: the rest not read")
                return out
            if not isinstance(entry, Mapping):
                reading.problem(f"neighbour on {identify.shown(ifname)} is not an object")
                continue
            out.append((ifname if isinstance(ifname, str) else "?", entry))
    return out


def _cdp(entry: Mapping, reading: Reading) -> tuple[str | None, str, str] | None:
    """(mac, platform, version) of a CDP neighbour; None (counted) when its device ID is not SEP<MAC>."""
    name, body = _chassis(entry.get("chassis"))
    _kind, device = _id_value(body)
    mac = _mac(device, _SEP) or _mac(name, _SEP)
    if mac is None:
        reading.problem(f"CDP device ID {identify.shown(device or name or '')!r} is not SEP<MAC>: not a phone")
        return None
    descr = _text(body.get("descr")) if body is not None else None
    platform, version = "", ""
    if descr:
        if CDP_SPLIT in descr:
            platform, version = descr.split(CDP_SPLIT, 1)
        elif any(c.isspace() for c in descr.strip()):     # a load ID has no space; "Cisco IP Phone 7941" has
            platform = descr
        else:
            version = descr
    return mac, platform, version


def _lldp(entry: Mapping, reading: Reading) -> tuple[str | None, str, str] | None:
    """(mac, platform, version) of an LLDP neighbour: the MAC from the chassis ID, system name or port ID."""
    name, body = _chassis(entry.get("chassis"))
    kind, value = _id_value(body)
    mac = _mac(value) if kind == "mac" else None
    mac = mac or _mac(name, _SEP_NAME)
    if mac is None:
        pkind, pvalue = _id_value(entry.get("port"))
        mac = _mac(pvalue) if pkind == "mac" else _mac(pvalue, _PORT_MAC)
    if mac is None:
        reading.problem(f"LLDP neighbour {identify.shown(name or value or '')!r} names no MAC")
        return None
    med = entry.get("lldp-med")
    inventory = med.get("inventory") if isinstance(med, Mapping) else None
    if not isinstance(inventory, Mapping):
        return mac, "", ""
    return mac, _text(inventory.get("model")) or "", _text(inventory.get("software")) or ""


def read(text: str | bytes, catalog) -> Reading:
    """The neighbours and load claims in one `lldpcli -f json show neighbors details` listing.

    Args:
        text: lldpcli's output (any content: oversized, malformed or foreign input gives an empty reading
            with the reason in `problems`).
        catalog: as for identify.resolve.
    Returns:
        a Reading.  Never raises for bad input.
    """
    reading = Reading()
    if len(text) > MAX_OUTPUT:
        reading.problem(f"listing of {len(text)} bytes (limit {MAX_OUTPUT}): not read")
        return reading
    doc = _documents(text if isinstance(text, str) else text.decode("utf-8", "replace"), reading)
    if doc is None:
        return reading
    for _ifname, entry in _entries(doc, reading):
        via = _text(entry.get("via")) or ""
        if via.startswith("CDP"):
            how, found = "cdp", _cdp(entry, reading)
        elif via == "LLDP":
            how, found = "lldp", _lldp(entry, reading)
        else:
            reading.problem(f"neighbour via {identify.shown(via)!r}: not CDP or LLDP")
            continue
        if found is None:
            continue
        mac, platform, version = found
        model = by_name(platform) if platform.strip() else None
        n = Neighbour(mac, identify.shown(via), how, identify.shown(platform), model.name if model else None,
                      identify.shown(version))
        if version:
            got = identify.from_cdp(version, platform or None, catalog)
            n = Neighbour(n.mac, n.via, n.how, n.platform, n.model, got.raw, got.load, got.why)
        else:
            n = Neighbour(n.mac, n.via, n.how, n.platform, n.model, "", None, "no version announced")
        reading.neighbours.append(n)
    _claims(reading)
    return reading


def _loads(text: str) -> object:
    """JSON with control characters allowed inside strings (lldpcli passes some raw); raises ValueError."""
    try:
        return json.loads(text, strict=False)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _documents(text: str, reading: Reading) -> object | None:
    """The listing as JSON; when it is not, the neighbours that are, one by one (the broken ones counted).

    A whole listing that parses is used as it is.  Otherwise each neighbour of lldpcli's list (the lines from an
    ITEM_OPEN to the next ITEM_CLOSE) is parsed alone, and the listing is rebuilt from those that parse.  A name
    in a frame can hold those lines too: then the frame's own neighbour breaks into pieces, which are dropped or
    (at worst) read as a neighbour the frame could have claimed anyway; a neighbour before or after it is read
    whole.  A listing of one broken neighbour has nothing else to keep.
    """
    try:
        return _loads(text)
    except ValueError as exc:
        whole = identify.shown(str(exc))
    items: list[object] = []
    lines: list[str] | None = None
    for line in text.split("\n"):
        if line == ITEM_OPEN:
            if lines is not None:
                reading.malformed += 1
                reading.problem("a neighbour lldpcli printed as broken JSON (unterminated): dropped")
            lines = []
        elif line in ITEM_CLOSE and lines is not None:
            try:
                items.append(_loads("{" + "\n".join(lines) + "}"))
            except ValueError as exc:
                reading.malformed += 1
                reading.problem(f"a neighbour lldpcli printed as broken JSON ({identify.shown(str(exc))}): dropped")
            lines = None
        elif lines is not None:
            lines.append(line)
    if not items and not reading.malformed:
        reading.problem(f"not JSON: {whole}")
        return None
    return {"lldp": {"interface": items}}


def _claims(reading: Reading) -> None:
    """One claim per MAC; neighbours that disagree on a MAC's load cancel (a forged ID, or two phones' worth)."""
    loads: dict[str, dict[str, Neighbour]] = {}
    for n in reading.neighbours:
        if n.mac and n.load:
            loads.setdefault(n.mac, {}).setdefault(n.load.lower(), n)
    for mac, by_load in loads.items():
        if len(by_load) == 1:
            reading.claims[mac] = next(iter(by_load.values()))
        else:
            said = ", ".join(f"{n.load} ({n.how})" for n in by_load.values())
            reading.conflicts[mac] = f"neighbours disagree on its load ({said}): none believed"


def verdict(load: str, current: str | None, how: str | None) -> str | None:
    """Whether a neighbour's claim may go to the tracker for a phone it knows.

    A claim fills in an unknown load or replaces an earlier claim; it never overrides a load the phone's own
    behaviour showed (an install or a settled config, "step"/"settled") or its own web page ("web").

    Args:
        load: the load the neighbour claims.
        current: the load the tracker has for the phone (None if unknown).
        how: how the tracker learned it.
    Returns:
        None to hand it over; else why not.
    """
    if current and current.lower() == load.lower():
        return "already known"
    if current and (how or "") not in NEIGHBOUR_HOWS:
        return f"the phone's own record ({how or 'unknown source'}) says {current}; a neighbour's claim never overrides it"
    return None
