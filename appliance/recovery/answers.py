"""The file workers' copy of "what each phone's config names": applied from the core's Answers, read per request.

The core (tracker.py) decides; it pushes each change as a numbered Answers
(hub.py sends it to every TFTP worker and applies it in-process for HTTP
:6970).  A worker answers a config request from this table at once, never
by asking and waiting.  Rows are immutable and replaced whole, so a reader
in another thread sees the old row or the new, never half of one.  Pure:
no I/O.
"""
from __future__ import annotations

import json

from .facts import Answer, Answers

MAX_ROWS = 65536


class AnswerTable:
    def __init__(self) -> None:
        self.version = 0
        self._by_mac: dict[str, Answer] = {}
        self._by_ip: dict[str, Answer] = {}
        self._defaults: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_mac)

    def apply(self, change: Answers) -> None:
        """Apply one change (in version order; an older one than the table holds is ignored)."""
        if change.version < self.version:
            return
        self.version = change.version
        for row in change.rows:
            old = self._by_mac.get(row.mac)
            if old is not None and old.ip and self._by_ip.get(old.ip) is old:
                del self._by_ip[old.ip]
            if len(self._by_mac) >= MAX_ROWS and row.mac not in self._by_mac:
                continue
            self._by_mac[row.mac] = row
            if row.ip:
                self._by_ip[row.ip] = row
        if change.defaults is not None:
            self._defaults = dict(change.defaults)

    def of_mac(self, mac: str | None) -> Answer | None:
        return self._by_mac.get(mac.lower()) if mac else None

    def at(self, ip: str | None) -> Answer | None:
        """The row of the phone that holds `ip` (None: no phone the core knows is there)."""
        return self._by_ip.get(ip) if ip else None

    def default(self, model: str) -> str | None:
        """What a config names for a phone of `model` the core knows nothing else about."""
        return self._defaults.get(model)

    def defaults(self) -> dict[str, str]:
        return dict(self._defaults)


def to_wire(change: Answers) -> bytes:
    """One message for a worker's socketpair (compact JSON)."""
    doc = {"v": change.version, "rows": [[r.mac, r.ip, r.model, r.config, r.sip, r.term] for r in change.rows]}
    if change.defaults is not None:
        doc["defaults"] = [list(d) for d in change.defaults]
    return json.dumps({"answers": doc}, separators=(",", ":")).encode()


def from_wire(doc: dict) -> Answers:
    """The Answers in a decoded message.

    Raises:
        ValueError: a field of the wrong type or shape (the message is dropped whole).
    """
    v, rows, defaults = doc.get("v"), doc.get("rows"), doc.get("defaults")
    if not isinstance(v, int) or not isinstance(rows, list):
        raise ValueError("answers: no version or rows")
    out = []
    for r in rows:
        if not (isinstance(r, list) and len(r) == 6 and isinstance(r[0], str) and isinstance(r[2], str)
                and all(x is None or isinstance(x, str) for x in r)):
            raise ValueError("answers: a malformed row")
        out.append(Answer(*r))
    if defaults is not None and not (isinstance(defaults, list) and all(
            isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in defaults)):
        raise ValueError("answers: malformed defaults")
    return Answers(v, tuple(out), tuple((d[0], d[1]) for d in defaults) if defaults is not None else None)
