"""The log lines a tech follows a phone by, at INFO, one per event (issue 25 item 5).

    phone 001e7a650001 seen
    phone 001e7a650001 plan: SCCP45.8-5-2S (stepping stone), then SCCP45.9-4-2SR3-3S (target)
    phone 001e7a650001 leased 10.79.1.1 (CP-7965G)
    phone 001e7a650001 configured: step 1 of 2: SCCP45.8-5-2S
    phone 001e7a650001 downloading: SCCP45.8-5-2S.loads
    phone 001e7a650001 downloaded SCCP45.8-5-2S: 3 files, 90 kB in 0.4 s (225 kB/s)
    phone 001e7a650001 rebooting: installing SCCP45.8-5-2S
    phone 001e7a650001 installed SCCP45.8-5-2S
    ...
    phone 001e7a650001 done: on SCCP45.9-4-2SR3-3S
    phone 001e7a990001 stuck: <the diagnosis, in the words the dashboard shows>

The hub calls `fact(event)` after the core handled an event and before its outputs, then `output(o)` for each
output; this module only reads the core's phones (the hub's loop thread is the only one touching the core)
and logs.  Its memory is bounded: each table is cleared past MAX_PHONES entries (a line may then repeat).
"""
from __future__ import annotations

import logging
from typing import Any

from .facts import FileSent, Lease, LoadLearned, PhoneChanged, PhoneState
from .words import say

log = logging.getLogger("recovery")

MAX_PHONES = 65536


def amount(n: float) -> str:
    """Bytes as a tech reads them: 950 B, 90 kB, 12.3 MB."""
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} kB"
    return f"{n:.0f} B"


def _bounded(table: dict) -> None:
    if len(table) > MAX_PHONES:
        table.clear()


class Narrator:
    def __init__(self, phones: dict[str, Any]):
        self.phones = phones                       # the core's phones, by MAC (read only)
        self.state: dict[str, PhoneState] = {}     # mac -> the state last said
        self.lease: dict[str, str] = {}            # mac -> the address last said
        self.plan: dict[str, tuple[str, ...]] = {}
        self.downloads: dict[str, list] = {}       # mac -> [load, ip, first ts, last ts, bytes, files]
        self.by_ip: dict[str, str] = {}            # ip -> mac, for the phones downloading

    def fact(self, event: object) -> None:
        """A fact the core just handled: a phone's lease, a file that reached a downloading phone."""
        if isinstance(event, Lease) and event.acked and event.ip:
            mac = event.mac.lower()
            p = self.phones.get(mac)
            if p is not None and self.lease.get(mac) != event.ip:      # renewals of the same address: not again
                _bounded(self.lease)
                self.lease[mac] = event.ip
                log.info("phone %s leased %s (%s)", mac, event.ip, p.model or event.model or "model not said")
        elif isinstance(event, FileSent) and event.result == "complete":
            mac = self.by_ip.get(event.ip)
            if mac is not None and mac in self.downloads:
                d = self.downloads[mac]
                d[3], d[4], d[5] = max(d[3], event.ts), d[4] + event.bytes, d[5] + 1

    def output(self, o: object) -> None:
        if isinstance(o, PhoneChanged):
            self._changed(o)
        elif isinstance(o, LoadLearned):
            if o.how == "step":
                log.info("phone %s installed %s", o.mac, o.load)
            else:
                log.info("phone %s runs %s (%s)", o.mac, o.load, o.how)

    def _changed(self, o: PhoneChanged) -> None:
        if self.state.get(o.mac) == o.state:       # one line per change of state
            return
        _bounded(self.state)
        self.state[o.mac] = o.state
        p = self.phones.get(o.mac)
        if o.mac in self.downloads and o.state != PhoneState.DOWNLOADING:
            self._downloaded(o.mac)
        words = say(o.note)
        if words:
            log.info("phone %s %s: %s", o.mac, o.state.value, words)
        else:
            log.info("phone %s %s", o.mac, o.state.value)
        if p is not None and p.plan and tuple(p.plan) != self.plan.get(o.mac):
            _bounded(self.plan)
            self.plan[o.mac] = tuple(p.plan)
            *stones, target = p.plan
            log.info("phone %s plan: %s", o.mac, ", then ".join([f"{s} (stepping stone)" for s in stones]
                                                                 + [f"{target} (target)"]))
        if o.state == PhoneState.DOWNLOADING and p is not None:
            _bounded(self.downloads)
            self.downloads[o.mac] = [p.step_load, p.ip, o.ts, o.ts, 0, 0]
            if p.ip:
                self.by_ip[p.ip] = o.mac

    def _downloaded(self, mac: str) -> None:
        load, ip, first, last, sent, files = self.downloads.pop(mac)
        if self.by_ip.get(ip) == mac:
            del self.by_ip[ip]
        if not files:
            return             # it fetched no file (refused the load): the state line says why
        seconds = max(last - first, 0.001)
        log.info("phone %s downloaded %s: %d files, %s in %.1f s (%s/s)", mac, load or "its load", files,
                 amount(sent), seconds, amount(sent / seconds))
