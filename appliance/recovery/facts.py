"""Facts the tracker learns and what it concludes, as small frozen dataclasses, with one codec each way.

A fact is something a phone did, as the station saw it: a lease, a file asked
for, sent or missing, the load its own web page or CDP names, a tech's retry.
An output is what the tracker concluded (a phone's state, a load it learned).
`to_event`/`from_event` map both to the events table's (ts, source, kind, mac,
data) rows; `to_wire`/`from_wire` to the datagrams DHCP and the TFTP workers
send the tracker.  Nothing arriving from outside is trusted: `from_wire` checks
every field's type and size and raises FactError.  Pure: no I/O.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field, fields

from appliance import events as E

MAX_DATAGRAM = 2048
MAX_TEXT = 255
_MAC = re.compile(r"^[0-9a-f]{12}$")
_IP = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


class FactError(ValueError):
    """A fact that is malformed, oversized or of an unknown kind; str() says which field."""


class PhoneState(str, enum.Enum):
    """Where a phone is; the words are what the store, API, report and dashboard carry."""
    SEEN = "seen"
    CONFIGURED = "configured"
    DOWNLOADING = "downloading"
    REBOOTING = "rebooting"
    WAITING = "waiting"
    DONE = "done"
    STUCK = "stuck"

    @property
    def needs_tech(self) -> bool:
        return self in (PhoneState.STUCK, PhoneState.WAITING)


# ---- facts ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lease:
    """DHCP DISCOVER (acked False) or ACK: the phone is (re)booting or renewing at `ip`."""
    ts: float
    mac: str
    ip: str | None = None
    acked: bool = True
    model: str | None = None
    vendor_class: str | None = None


@dataclass(frozen=True)
class FileFact:
    """What every file fact says: when, from which address, which name (as asked), over TFTP or HTTP."""
    ts: float
    ip: str
    name: str
    proto: str = "tftp"
    mac: str | None = None


@dataclass(frozen=True)
class FileAsked(FileFact):
    """A TFTP RRQ or HTTP GET arrived (before any byte is sent)."""


@dataclass(frozen=True)
class FileSent(FileFact):
    """A transfer ended; result "complete", "timeout" or "aborted"."""
    result: str = field(default="complete", kw_only=True)
    bytes: int = field(default=0, kw_only=True)
    total: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class FileMissing(FileFact):
    """Asked for a file the station does not have (answered "file not found")."""


@dataclass(frozen=True)
class LoadReported:
    """The phone's own word on its running load (web page, CDP): `load` a load ID, None if it could not be mapped."""
    ts: float
    mac: str
    load: str | None
    raw: str = ""
    how: str = "web"


@dataclass(frozen=True)
class Retry:
    """A tech asked to start the phone's plan again (dashboard/API)."""
    ts: float
    mac: str
    by: str = "api"


# ---- outputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhoneChanged:
    ts: float
    mac: str
    state: PhoneState
    detail: str = ""
    step: int = 0
    steps: int = 0
    load: str | None = None
    diagnosis: str | None = None


@dataclass(frozen=True)
class LoadLearned:
    ts: float
    mac: str
    load: str
    how: str           # "step" (installed), "settled" (took a config, fetched nothing), "web", "cdp", "option60"


Fact = Lease | FileAsked | FileSent | FileMissing | LoadReported | Retry
Output = PhoneChanged | LoadLearned

_KIND = {FileAsked: E.FILE_REQUEST, FileSent: E.FILE_DONE, FileMissing: E.FILE_NOT_FOUND,
         LoadReported: E.PHONE_REPORTED, Retry: E.PHONE_RETRY, PhoneChanged: E.PHONE_STATE, LoadLearned: E.PHONE_LOAD}
_SOURCE = {Lease: "dhcp", LoadReported: "tracker", Retry: "api", PhoneChanged: "tracker", LoadLearned: "tracker"}
_BY_KIND = {kind: cls for cls, kind in _KIND.items()}
WIRE_KINDS = (E.DHCP_DISCOVER, E.DHCP_ACK, E.FILE_REQUEST, E.FILE_DONE, E.FILE_NOT_FOUND)


def kind_of(item: Fact | Output) -> str:
    if isinstance(item, Lease):
        return E.DHCP_ACK if item.acked else E.DHCP_DISCOVER
    return _KIND[type(item)]


def to_event(item: Fact | Output) -> tuple[float, str, str, str | None, dict]:
    """The events-table row (ts, source, kind, mac, data) for a fact or output."""
    data = {k: v for k, v in asdict(item).items() if k not in ("ts", "mac", "acked")}
    if isinstance(item, PhoneChanged):
        data["state"] = item.state.value
    source = _SOURCE.get(type(item)) or str(getattr(item, "proto", "tftp"))
    return item.ts, source, kind_of(item), item.mac, data


def from_event(row: dict) -> Fact | Output | None:
    """A fact or output from an events-table row (store.events_after); None for kinds that are neither or bad rows."""
    kind = row.get("kind")
    data = dict(row.get("data") or {})
    data.update(ts=float(row.get("ts") or 0.0), mac=row.get("mac") or data.get("mac"))
    try:
        return _build(kind, data)
    except (FactError, TypeError, ValueError):
        return None


def _build(kind: str | None, data: dict) -> Fact | Output | None:
    cls: type | None
    if kind in (E.DHCP_DISCOVER, E.DHCP_ACK):
        cls, data = Lease, {**data, "acked": kind == E.DHCP_ACK}
    else:
        cls = _BY_KIND.get(kind or "")
        if cls is None:
            return None
    names = {f.name for f in fields(cls)}
    kept = {k: v for k, v in data.items() if k in names}
    if cls is PhoneChanged:
        kept["state"] = PhoneState(kept.get("state"))
    return cls(**kept)


def to_wire(fact: Fact) -> bytes:
    """One datagram for the tracker's socket: compact JSON with the event kind."""
    ts, _source, kind, mac, data = to_event(fact)
    return json.dumps({"kind": kind, "ts": ts, "mac": mac, **data}, separators=(",", ":")).encode()


_WIRE_FIELDS = {"ts": (int, float), "mac": (str, type(None)), "ip": (str, type(None)), "name": (str,),
                "proto": (str,), "result": (str,), "bytes": (int,), "total": (int, type(None)),
                "model": (str, type(None)), "vendor_class": (str, type(None))}


def from_wire(data: bytes) -> Fact:
    """A fact from a datagram.

    Args:
        data: the datagram's bytes.
    Returns:
        a Lease, FileAsked, FileSent or FileMissing.
    Raises:
        FactError: oversized, not a JSON object, unknown kind, a field of the wrong type or size,
            a MAC that is not 12 hex digits, an address that is not dotted IPv4.
    """
    if len(data) > MAX_DATAGRAM:
        raise FactError(f"datagram of {len(data)} bytes (limit {MAX_DATAGRAM})")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FactError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FactError("not a JSON object")
    kind = doc.pop("kind", None)
    if kind not in WIRE_KINDS:
        raise FactError(f"unknown kind {str(kind)[:40]!r}")
    clean: dict[str, object] = {}
    for key, value in doc.items():
        types = _WIRE_FIELDS.get(key)
        if types is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            raise FactError(f"field {key!r}: {type(value).__name__} is not {'/'.join(t.__name__ for t in types)}")
        if isinstance(value, str) and (len(value) > MAX_TEXT or not value.isprintable()):
            raise FactError(f"field {key!r}: too long or not printable")
        clean[key] = value
    mac, ip = clean.get("mac"), clean.get("ip")
    if isinstance(mac, str) and not _MAC.match(mac):
        raise FactError("field 'mac': not 12 lower-case hex digits")
    if isinstance(ip, str) and not _IP.match(ip):
        raise FactError("field 'ip': not a dotted IPv4 address")
    if kind in (E.DHCP_DISCOVER, E.DHCP_ACK) and not clean.get("mac"):
        raise FactError("a lease without a MAC")
    if kind not in (E.DHCP_DISCOVER, E.DHCP_ACK) and not (clean.get("ip") and "name" in clean):
        raise FactError("a file fact needs 'ip' and 'name'")
    if "ts" not in clean:
        raise FactError("field 'ts' missing")
    fact = _build(kind, clean)
    assert fact is not None
    return fact  # type: ignore[return-value]
