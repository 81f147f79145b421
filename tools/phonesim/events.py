"""What goes into the phone state machine (events) and what comes out (actions), as frozen values.

Every event carries `now` (seconds, any monotonic clock): the machine never reads
a clock, so a test can run a phone through hours of reboots in microseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

TFTP, HTTP, HTTPS = "tftp", "http", "https"


# --- events: the world -> the phone ---------------------------------------------------------------

@dataclass(frozen=True)
class PowerOn:
    now: float


@dataclass(frozen=True)
class Leased:
    now: float
    ip: str
    tftp: str | None           # option 150 / 66 / siaddr; None: the lease names no TFTP server
    options: dict | None = None    # every option of the ACK (code -> bytes), for MPP phones (provisioning.py)


@dataclass(frozen=True)
class NoLease:
    now: float


@dataclass(frozen=True)
class Fetched:
    now: float
    name: str                  # as the phone asked for it
    via: str                   # TFTP or HTTP
    data: bytes


@dataclass(frozen=True)
class FetchFailed:
    now: float
    name: str
    via: str
    error: str                 # "File not found", "timeout", "HTTP 404", ...


@dataclass(frozen=True)
class TimerFired:
    now: float


@dataclass(frozen=True)
class TrustListErased:
    """The tech erased the ITL/CTL on the phone (Settings > Security > Trust List, §6.2)."""
    now: float


Event = PowerOn | Leased | NoLease | Fetched | FetchFailed | TimerFired | TrustListErased


# --- actions: the phone -> the world --------------------------------------------------------------

@dataclass(frozen=True)
class AskLease:
    vendor_class: str          # option 60
    hostname: str              # option 12, SEP<MAC>


@dataclass(frozen=True)
class Fetch:
    name: str
    via: str
    server: str
    port: int | None = None        # None: the phone's configured TFTP/HTTP port; MPP URLs name theirs
    user_agent: str | None = None  # HTTP User-Agent (MPP phones send one on every request)


@dataclass(frozen=True)
class Sleep:
    until: float
    why: str                   # the Wake value's text: what the phone does when it wakes


Action = AskLease | Fetch | Sleep
