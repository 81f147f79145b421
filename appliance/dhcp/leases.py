"""The lease book: an in-memory index of the pool, mirrored to the store's `leases` table.

The server decides from memory (a DISCOVER must never wait on SQLite); every
change that a client may rely on (a bound lease, a release, a decline) is
queued in `pending` and the socket loop writes the queue in one short
transaction *before* it sends the ACKs that depend on it.  Offers live only in
memory: losing one in a crash costs the client a retry, never a duplicate.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from .codec import int_ip, ip_int

OFFER_HOLD_SECONDS = 30.0
ACTIVE_STATES = frozenset(("offered", "bound"))
CONFLICT_SECONDS = 3600.0


@dataclass
class Lease:
    mac: str
    ip: str
    state: str                 # offered | bound | released | declined
    expires: float
    hostname: str | None = None
    vendor_class: str | None = None
    client_id: str | None = None
    prl: str | None = None
    updated: float = 0.0

    def active(self, now: float) -> bool:
        return self.state in ACTIVE_STATES and self.expires > now


@dataclass
class LeaseBook:
    pool_start: str
    pool_end: str
    reserved: dict[str, str] = field(default_factory=dict)     # mac -> ip (static)
    excluded: set[str] = field(default_factory=set)            # station and other fixed addresses

    def __post_init__(self) -> None:
        self.first = ip_int(self.pool_start)
        self.last = ip_int(self.pool_end)
        self.by_mac: dict[str, Lease] = {}
        self.by_ip: dict[str, str] = {}
        self.conflicts: dict[str, float] = {}
        self.pending: list[tuple[str, tuple]] = []
        self._reserved_ips = {ip: mac for mac, ip in self.reserved.items()}
        self._fresh = [n for n in range(self.first, self.last + 1)]
        heapq.heapify(self._fresh)
        self._fresh_taken: set[int] = set()
        # Lease addresses seen outside the pool (reservations, rows from an older config).  Being outside
        # is a property of the address, so the set never goes stale; it lets `used` count without parsing
        # every address, which stalled the socket loop for ~30 ms a second with 20,000 leases.
        self._outside: set[str] = set()

    # -- loading ---------------------------------------------------------------------------
    def load(self, rows: list[dict], conflicts: list[dict]) -> None:
        for row in rows:
            lease = Lease(**{k: row.get(k) for k in Lease.__dataclass_fields__})  # type: ignore[arg-type]  # checked below
            try:
                ip_int(lease.ip)
            except (ValueError, TypeError):
                continue   # a hand-edited or foreign row must not stop the service
            self.by_mac[lease.mac] = lease
            self.by_ip[lease.ip] = lease.mac
            self._take(lease.ip)
        for row in conflicts:
            self.conflicts[row["ip"]] = row["until"]

    # -- queries ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.last - self.first + 1 - sum(1 for ip in self.excluded if self.in_pool(ip))

    def in_pool(self, ip: str) -> bool:
        try:
            return self.first <= ip_int(ip) <= self.last
        except ValueError:
            return False

    def used(self, now: float) -> int:
        """Active leases (offered or bound, not expired) on pool addresses."""
        outside = self._outside
        return sum(1 for lease in self.by_mac.values()
                   if lease.expires > now and lease.state in ACTIVE_STATES and lease.ip not in outside)

    def conflicted(self, ip: str, now: float) -> bool:
        until = self.conflicts.get(ip)
        return until is not None and until > now

    def holder(self, ip: str, now: float) -> str | None:
        """MAC that may not lose `ip` right now (an active lease or a reservation), else None."""
        mac = self.by_ip.get(ip)
        if mac is not None and self.by_mac[mac].active(now):
            return mac
        return self._reserved_ips.get(ip)

    def available_to(self, ip: str, mac: str, now: float) -> bool:
        if ip in self.excluded or self.conflicted(ip, now):
            return False
        holder = self.holder(ip, now)
        if holder is not None and holder != mac:
            return False
        return self.in_pool(ip) or self.reserved.get(mac) == ip

    # -- choosing ---------------------------------------------------------------------------
    def choose(self, mac: str, requested: str | None, now: float) -> str | None:
        """Reservation, else the client's previous address, else the requested one, else a new one."""
        reserved = self.reserved.get(mac)
        if reserved is not None:
            return reserved if not self.conflicted(reserved, now) else None
        lease = self.by_mac.get(mac)
        if lease is not None and self.available_to(lease.ip, mac, now):
            return lease.ip
        if requested and self.available_to(requested, mac, now):
            return requested
        return self._next_free(mac, now)

    def _next_free(self, mac: str, now: float) -> str | None:
        while self._fresh:
            n = heapq.heappop(self._fresh)
            if n in self._fresh_taken:
                continue
            ip = int_ip(n)
            if self.available_to(ip, mac, now) and ip not in self.by_ip:
                return ip
            if self.conflicted(ip, now):
                continue
        # Every address has been used once: reuse the one whose holder left longest ago.
        best: tuple[float, str] | None = None
        for ip, holder in self.by_ip.items():
            lease = self.by_mac[holder]
            if not lease.active(now) and self.available_to(ip, mac, now) and self.in_pool(ip):
                if best is None or lease.expires < best[0]:
                    best = (lease.expires, ip)
        if best is None:
            for n in range(self.first, self.last + 1):
                ip = int_ip(n)
                if ip not in self.by_ip and self.available_to(ip, mac, now):
                    return ip
            return None
        return best[1]

    # -- changes ----------------------------------------------------------------------------
    def _assign(self, lease: Lease) -> None:
        old = self.by_mac.get(lease.mac)
        if old is not None and old.ip != lease.ip and self.by_ip.get(old.ip) == lease.mac:
            del self.by_ip[old.ip]
        other = self.by_ip.get(lease.ip)
        if other is not None and other != lease.mac:
            del self.by_mac[other]
            self.pending.append(("forget", (other,)))
        self.by_mac[lease.mac] = lease
        self.by_ip[lease.ip] = lease.mac
        self._take(lease.ip)

    def _take(self, ip: str) -> None:
        """`ip` now has a lease: a pool address leaves the never-used heap's reach; note one outside it."""
        n = ip_int(ip)
        if self.first <= n <= self.last:
            self._fresh_taken.add(n)
        else:
            self._outside.add(ip)

    def offer(self, mac: str, ip: str, now: float, **info) -> Lease:
        lease = self.by_mac.get(mac)
        if lease is not None and lease.ip == ip and lease.state == "bound" and lease.expires > now:
            return lease
        lease = Lease(mac=mac, ip=ip, state="offered", expires=now + OFFER_HOLD_SECONDS, updated=now, **info)
        self._assign(lease)
        return lease

    def bind(self, mac: str, ip: str, expires: float, now: float, **info) -> Lease:
        lease = Lease(mac=mac, ip=ip, state="bound", expires=expires, updated=now, **info)
        self._assign(lease)
        self.pending.append(("upsert", (lease,)))
        return lease

    def release(self, mac: str, now: float) -> Lease | None:
        lease = self.by_mac.get(mac)
        if lease is None or lease.state not in ("bound", "offered"):
            return None
        lease.state, lease.expires, lease.updated = "released", now, now
        self.pending.append(("upsert", (lease,)))
        return lease

    def unoffer(self, mac: str) -> None:
        """The client took another server's offer: our held address goes back to the pool."""
        lease = self.by_mac.get(mac)
        if lease is not None and lease.state == "offered":
            del self.by_mac[mac]
            if self.by_ip.get(lease.ip) == mac:
                del self.by_ip[lease.ip]
                heapq.heappush(self._fresh, ip_int(lease.ip))
                self._fresh_taken.discard(ip_int(lease.ip))

    def drop(self, mac: str) -> str | None:
        """The tech forgot this lease through the API (a LEASE_FORGET command): free its address and queue
        the row's deletion for the next `take_pending`.  Returns the freed address, None if no lease."""
        lease = self.by_mac.pop(mac, None)
        if lease is None:
            return None
        self.pending.append(("forget", (mac,)))
        if self.by_ip.get(lease.ip) == mac:
            del self.by_ip[lease.ip]
            if self.in_pool(lease.ip):
                heapq.heappush(self._fresh, ip_int(lease.ip))
                self._fresh_taken.discard(ip_int(lease.ip))
        return lease.ip

    def decline(self, mac: str, ip: str, now: float, reason: str) -> None:
        self.conflicts[ip] = now + CONFLICT_SECONDS
        self.pending.append(("conflict", (ip, now + CONFLICT_SECONDS, reason, mac)))
        lease = self.by_mac.get(mac)
        if lease is not None and lease.ip == ip:
            del self.by_mac[mac]
            self.by_ip.pop(ip, None)
            self.pending.append(("forget", (mac,)))

    def mark_conflict(self, ip: str, now: float, reason: str) -> bool:
        """An address found in use by someone we never bound it to (asynchronous probe).

        An outstanding offer for it is withdrawn, so the client's REQUEST is NAKed and it starts over.
        """
        mac = self.by_ip.get(ip)
        lease = self.by_mac.get(mac) if mac else None
        if lease is not None and lease.state == "bound" and lease.expires > now:
            return False
        if lease is not None and mac:
            del self.by_mac[mac]
            del self.by_ip[ip]
        self.conflicts[ip] = now + CONFLICT_SECONDS
        self.pending.append(("conflict", (ip, now + CONFLICT_SECONDS, reason, None)))
        return True

    def take_pending(self) -> list[tuple[str, tuple]]:
        out, self.pending = self.pending, []
        return out

