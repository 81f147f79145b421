"""Which file requests the station serves, and how it says no: one policy for TFTP and HTTP :6970.

Both servers ask the same questions in the same order (a write? a name the station refuses? a file
it has? a mode it can serve? room for one more transfer?) and refuse with the same result and
reason in the transfer record, each in its own protocol's words.  Pure: the servers do the looking
(`Files.open`, the shared session counters) and pass the answers in.
"""
from __future__ import annotations

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
