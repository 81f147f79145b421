"""The recovery core's events and outputs, as small frozen dataclasses (in the style of h11's `_events.py`).

An event is something that happened, as the station saw it: a lease, a file
asked for, sent or missing, the load a phone's own web page or CDP names, a
tech's retry or forget, the firmware library changing, a restart's memory,
the clock.  An output is what the core concluded: a phone's state, a load it
learned, the table of what each phone's config names (for the file workers),
a page to poll, a read by a client that is not the phone, an input dropped.
`to_wire`/`from_wire` map facts to the datagrams DHCP and the TFTP workers
send the core; nothing arriving from outside is trusted: `from_wire` checks
every field's type and size and raises FactError.  Pure: no I/O.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from appliance import events as E

from .diagnosis import Note

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
    expires: float | None = None     # when the lease ends (None: the core's default lease time)


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
    """A TFTP RRQ or HTTP GET was admitted (before any byte is sent); never a HEAD, never a refused request.

    served: for a generated config or term file, the load it named (None: it named none).
    agent: an HTTP request's User-Agent, cleaned and bounded by the file service (an MPP phone's names its model,
    version and MAC: firmware/mpp.parse_user_agent); None over TFTP."""
    served: str | None = field(default=None, kw_only=True)
    agent: str | None = field(default=None, kw_only=True)


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
    """The phone's own word on its running load (web page, CDP): `load` a load ID, None if it could not be mapped.

    vid, hardware_revision: what its page says of its hardware ("V20", "1.0"), None when it says nothing."""
    ts: float
    mac: str
    load: str | None
    raw: str = ""
    how: str = "web"
    vid: str | None = None
    hardware_revision: str | None = None


@dataclass(frozen=True)
class Retry:
    """A tech asked to start the phone's plan again (dashboard/API)."""
    ts: float
    mac: str
    by: str = "api"


@dataclass(frozen=True)
class Forget:
    """The tech (or DHCP) ended a lease: the address is no longer that phone's."""
    ts: float
    mac: str


@dataclass(frozen=True)
class CatalogChanged:
    """The firmware library changed: plans and what configs name may change."""
    ts: float


@dataclass(frozen=True)
class Restored:
    """A restarted file service: the phones as the store last recorded them, and the leases DHCP holds."""
    ts: float
    phones: tuple[Any, ...] = ()     # phone.Phone (not imported: phone.py imports this module)
    leases: tuple[Lease, ...] = ()


@dataclass(frozen=True)
class Timer:
    """The clock reached `next_deadline()`."""
    ts: float


# ---- outputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhoneChanged:
    ts: float
    mac: str
    state: PhoneState
    note: Note
    step: int = 0
    steps: int = 0
    load: str | None = None


@dataclass(frozen=True)
class LoadLearned:
    ts: float
    mac: str
    load: str
    how: str           # "step" (installed), "settled" (took a config, fetched nothing), "web", "cdp", "option60"


@dataclass(frozen=True)
class Answer:
    """What a phone's config and term file name now, as the file workers serve it (one row of their table).

    config: the load SEP<MAC>.cnf.xml (or OS79XX.TXT for a 7940/60) names; sip: what SIPDefault.cnf names;
    term: the load whose term file is served.  A row with ip None withdraws the phone from the table."""
    mac: str
    ip: str | None
    model: str
    config: str | None
    sip: str | None
    term: str | None


@dataclass(frozen=True)
class Answers:
    """A change to the workers' table, numbered: rows to set, and per-model defaults when they changed."""
    version: int
    rows: tuple[Answer, ...]
    defaults: tuple[tuple[str, str], ...] | None = None     # (model, load) for XMLDefault and unknown phones


@dataclass(frozen=True)
class PollPage:
    """Read this phone's DeviceInformationX page (its own word on its load)."""
    mac: str
    ip: str


@dataclass(frozen=True)
class OtherRead:
    """A file read by a client that is not the phone it names (or holds no lease): served, changes nothing."""
    ts: float
    ip: str
    name: str
    proto: str
    why: str          # "no lease" | "not its MAC"


@dataclass(frozen=True)
class Dropped:
    """An input the core could not apply: logged by the shell, nothing else happens."""
    ts: float
    why: str


Fact = Lease | FileAsked | FileSent | FileMissing | LoadReported | Retry
Event = Fact | Forget | CatalogChanged | Restored | Timer
Output = PhoneChanged | LoadLearned | Answers | PollPage | OtherRead | Dropped

_KIND = {FileAsked: E.FILE_REQUEST, FileSent: E.FILE_DONE, FileMissing: E.FILE_NOT_FOUND,
         LoadReported: E.PHONE_REPORTED, Retry: E.PHONE_RETRY, LoadLearned: E.PHONE_LOAD, Forget: E.LEASE_FORGET}
_SOURCE = {Lease: "dhcp", LoadReported: "tracker", Retry: "api", LoadLearned: "tracker", Forget: "dhcp"}
_BY_KIND = {kind: cls for cls, kind in _KIND.items()}
WIRE_KINDS = (E.DHCP_DISCOVER, E.DHCP_ACK, E.FILE_REQUEST, E.FILE_DONE, E.FILE_NOT_FOUND, E.LEASE_FORGET)


def kind_of(item: Fact | LoadLearned | Forget) -> str:
    if isinstance(item, Lease):
        return E.DHCP_ACK if item.acked else E.DHCP_DISCOVER
    return _KIND[type(item)]


def to_event(item: Fact | LoadLearned | Forget) -> tuple[float, str, str, str | None, dict]:
    """The events-table row (ts, source, kind, mac, data) for a fact or a learned load."""
    data = {k: v for k, v in asdict(item).items() if k not in ("ts", "mac", "acked")}
    source = _SOURCE.get(type(item)) or str(getattr(item, "proto", "tftp"))
    return item.ts, source, kind_of(item), item.mac, data


def _build(kind: str | None, data: dict) -> Fact | Forget | None:
    cls: type | None
    if kind in (E.DHCP_DISCOVER, E.DHCP_ACK):
        cls, data = Lease, {**data, "acked": kind == E.DHCP_ACK}
    else:
        cls = _BY_KIND.get(kind or "")
        if cls is None:
            return None
    names = {f.name for f in fields(cls)}
    kept = {k: v for k, v in data.items() if k in names}
    return cls(**kept)


def to_wire(fact: Fact | Forget) -> bytes:
    """One datagram for the tracker's socket: compact JSON with the event kind."""
    ts, _source, kind, mac, data = to_event(fact)
    return json.dumps({"kind": kind, "ts": ts, "mac": mac, **data}, separators=(",", ":")).encode()


_WIRE_FIELDS = {"ts": (int, float), "mac": (str, type(None)), "ip": (str, type(None)), "name": (str,),
                "proto": (str,), "result": (str,), "bytes": (int,), "total": (int, type(None)),
                "model": (str, type(None)), "vendor_class": (str, type(None)), "served": (str, type(None)),
                "agent": (str, type(None)),
                "expires": (int, float, type(None))}


def from_wire(data: bytes) -> Fact | Forget:
    """A fact from a datagram.

    Args:
        data: the datagram's bytes.
    Returns:
        a Lease, FileAsked, FileSent, FileMissing or Forget.
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
    if kind in (E.DHCP_DISCOVER, E.DHCP_ACK, E.LEASE_FORGET) and not clean.get("mac"):
        raise FactError("a lease without a MAC")
    if kind not in (E.DHCP_DISCOVER, E.DHCP_ACK, E.LEASE_FORGET) and not (clean.get("ip") and "name" in clean):
        raise FactError("a file fact needs 'ip' and 'name'")
    if "ts" not in clean:
        raise FactError("field 'ts' missing")
    fact = _build(kind, clean)
    assert fact is not None
    return fact  # type: ignore[return-value]
