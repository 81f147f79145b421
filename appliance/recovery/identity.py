"""Which phone is this?  The one place that answers: MAC <-> leased address <-> model <-> lease end.

A phone is the MAC that holds a lease.  DHCP tells the core every ACK before
it leaves (hub.py), so this registry knows each address's holder before the
holder can ask for a file.  A file request is a fact about a phone only when
it comes from an address leased to that phone and, when the name carries a
MAC (SEP<MAC>.cnf.xml, CTLSEP<MAC>.tlv, SIP<MAC>.cnf), only when that MAC is
the holder's.  Everyone else (a tech's laptop, a stranger naming a phone's
MAC, a phone whose lease the station lost) is served read-only and changes
nothing.  Pure: no I/O; the clock is passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LEASE_S = 3600.0
MAX_HOLDERS = 65536        # more than any pool the station hands out (a /16); beyond it the oldest go


@dataclass(frozen=True)
class Holder:
    mac: str
    ip: str
    model: str
    expires: float


class Identity:
    """The lease table as the core sees it.  Entry points: lease, forget, holder, who."""

    def __init__(self, lease_s: float = DEFAULT_LEASE_S):
        self.lease_s = lease_s
        self._by_ip: dict[str, Holder] = {}
        self._by_mac: dict[str, Holder] = {}

    def __len__(self) -> int:
        return len(self._by_mac)

    def lease(self, mac: str, ip: str, model: str, expires: float | None, now: float) -> str | None:
        """DHCP acknowledged `ip` to `mac`.

        Returns:
            the MAC that held `ip` until now, when it was another phone (DHCP is the authority on who
            holds an address: that phone's binding ends), else None.
        """
        mac = mac.lower()
        displaced = None
        held = self._by_ip.get(ip)
        if held is not None and held.mac != mac:
            displaced = held.mac
            self._by_mac.pop(held.mac, None)
        old = self._by_mac.get(mac)
        if old is not None and old.ip != ip and self._by_ip.get(old.ip) is old:
            del self._by_ip[old.ip]
        h = Holder(mac, ip, model or (old.model if old else ""), expires if expires is not None else now + self.lease_s)
        self._by_ip[ip] = h
        self._by_mac[mac] = h
        if len(self._by_mac) > MAX_HOLDERS:
            oldest = min(self._by_mac.values(), key=lambda x: x.expires)
            self.forget(oldest.mac)
        return displaced

    def forget(self, mac: str) -> None:
        """The lease ended (forgotten by the tech, or released)."""
        h = self._by_mac.pop(mac.lower(), None)
        if h is not None and self._by_ip.get(h.ip) is h:
            del self._by_ip[h.ip]

    def holder(self, ip: str | None, now: float) -> Holder | None:
        """Who holds `ip` now (an expired lease holds nothing)."""
        h = self._by_ip.get(ip or "")
        return h if h is not None and h.expires > now else None

    def of(self, mac: str) -> Holder | None:
        """The lease `mac` holds, expired or not (for showing where a phone was)."""
        return self._by_mac.get(mac.lower())

    def who(self, ip: str | None, named_mac: str | None, now: float) -> tuple[str | None, str]:
        """Whose fact is a file request from `ip` for a name carrying `named_mac` (or none)?

        Returns:
            (the phone's MAC, "") when it is that phone's; (None, why) when it is not:
            "no lease" (nobody holds the address) or "not its MAC" (the name is another phone's).
        """
        h = self.holder(ip, now)
        if h is None:
            return None, "no lease"
        if named_mac and named_mac.lower() != h.mac:
            return None, "not its MAC"
        return h.mac, ""

    def expired(self, now: float) -> list[str]:
        """MACs whose leases have ended by `now` (the caller forgets them)."""
        return [h.mac for h in self._by_mac.values() if h.expires <= now]
