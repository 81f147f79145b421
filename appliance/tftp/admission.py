"""Which file requests the station serves, and how it says no: one policy for TFTP and HTTP :6970.

Both servers ask the same questions in the same order (a write? a name the station refuses? a file
it has? a mode it can serve? room for one more transfer?) and refuse with the same result and
reason in the transfer record, each in its own protocol's words.  Pure: the servers do the looking
(`Files.open`, the shared session counters) and pass the answers in.

Room is shared the way Kea and nginx budget theirs (issue 24): each address gets at most
`per_client` transfers, and of the `max_sessions` overall a reserve is kept for clients that hold a
phone's lease; everyone else shares the rest.  When a phone finds no room, the longest-idle transfer
of a client that is not a phone is ended for it, so strangers holding every slot never refuse a phone.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import packets as pk


@dataclass(frozen=True)
class Refusal:
    """How one kind of request is refused.

    result: the transfer record's result ("refused" or "not found"); reason: why, for the record;
    tftp_code/tftp_text: the ERROR packet; http_status/http_text: the HTTP answer.
    """
    result: str
    reason: str
    tftp_code: int
    tftp_text: str
    http_status: int
    http_text: str


WRITE = Refusal("refused", "the station is read-only", pk.ERR_ACCESS,
                "read-only server: uploads refused", 405, "read-only server")
NAME = Refusal("refused", "name not allowed", pk.ERR_ACCESS, "access violation", 403, "forbidden")
MISSING = Refusal("not found", "", pk.ERR_NOT_FOUND, "file not found", 404, "not found")
BUSY = Refusal("refused", "too many transfers", pk.ERR_UNDEFINED, "server busy, try again", 503, "busy, try again")
BUSY_CLIENT = Refusal("refused", "too many transfers from this address", pk.ERR_UNDEFINED,
                      "server busy: too many transfers from your address, try again", 503,
                      "busy: too many transfers from your address, try again")
BUSY_SHARE = Refusal("refused", "the transfers not kept for phones are all in use", pk.ERR_UNDEFINED,
                     "server busy, try again", 503, "busy, try again")


def mode_refusal(mode: str, netascii_max: int) -> Refusal:
    """A TFTP transfer mode that cannot be served (HTTP has none): mail, or netascii of a large file."""
    why = "mail mode" if mode == "mail" else f"netascii over {netascii_max >> 20} MiB"
    return Refusal("refused", why, pk.ERR_ILLEGAL, f"{why} not served; use octet", 400, why)


def decide(*, write: bool, allowed: bool, found: bool, mode_ok: bool = True, mode: str = "octet",
           netascii_max: int = 0) -> Refusal | None:
    """The refusal for a request, or None to go on to the capacity check (then BUSY if there is no room).

    Args:
        write: the client wants to write (TFTP WRQ, HTTP PUT/POST/DELETE/PATCH).
        allowed: the name passed the file store's rules (no traversal, not a refused trust file...).
        found: the file store has the file.
        mode_ok: the TFTP mode can be served for this file (always True for HTTP).
        mode, netascii_max: to word a mode refusal.
    Returns:
        the first refusal that applies, in this order: write, name, missing, mode; else None.
    """
    if write:
        return WRITE
    if not allowed:
        return NAME
    if not found:
        return MISSING
    if not mode_ok:
        return mode_refusal(mode, netascii_max)
    return None


@dataclass(frozen=True)
class Shares:
    """The session budget.  `phone_reserve`: how many of `max_sessions` only phones may use."""
    max_sessions: int
    per_client: int
    phone_reserve: int = 0

    @property
    def others_max(self) -> int:
        """How many transfers clients that are not phones may hold at once, all together."""
        return max(0, self.max_sessions - self.phone_reserve)


def reserve_of(max_sessions: int, percent: int) -> int:
    """The number of sessions `[tftp] phone_reserve_percent` keeps for phones (rounded down, at least
    one when the percent is not 0, so a small cap still keeps a phone's slot)."""
    if percent <= 0 or max_sessions <= 0:
        return 0
    return min(max_sessions, max(1, max_sessions * min(percent, 100) // 100))


ADMIT, EVICT = "admit", "evict"


def room(shares: Shares, *, phone: bool, total: int, others: int, mine: int, evictable: int) -> str | Refusal:
    """Whether one more transfer may start.

    Args:
        shares: the budget.
        phone: the client holds a phone's lease (the core's answer table has a row at its address).
        total: transfers running now, everyone's; others: those of clients that are not phones;
        mine: those of this client's address; evictable: running transfers of clients that are not
        phones that may be ended to make room (TFTP sessions; an HTTP body being sent is not).
    Returns:
        ADMIT; EVICT (a phone, no room: end the longest-idle evictable transfer and take its slot);
        or the refusal (BUSY_CLIENT past the per-address cap, BUSY_SHARE for a client that is not a
        phone past its share, BUSY when phones hold every slot).
    """
    if mine >= shares.per_client:
        return BUSY_CLIENT
    if phone:
        if total < shares.max_sessions:
            return ADMIT
        return EVICT if evictable > 0 else BUSY
    if others >= shares.others_max:
        return BUSY_SHARE
    if total >= shares.max_sessions:
        return BUSY
    return ADMIT


def longest_idle(candidates: Iterable[tuple[int, float]]) -> int | None:
    """The key of the candidate whose last progress is oldest: (key, last progress time) pairs; None
    when there is none.  Ties go to the first listed."""
    best: tuple[int, float] | None = None
    for key, since in candidates:
        if best is None or since < best[1]:
            best = (key, since)
    return best[0] if best is not None else None
