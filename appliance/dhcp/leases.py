"""The lease book: an in-memory index of the pool, mirrored to the store's `leases` table.

The server decides from memory (a DISCOVER must never wait on SQLite); every
change that a client may rely on (a bound lease, a release, a decline) is
queued in `pending` and the socket loop writes the queue in one short
transaction *before* it sends the ACKs that depend on it.  Offers live only in
memory: losing one in a crash costs the client a retry, never a duplicate.

Fair shares (the way Kea's client classes and dnsmasq's tags split a pool): a client that says
it is a Cisco phone (`is_phone`) may take any free address; every other client (a laptop, a
printer, a flood of made-up MACs) may hold at most `others_share` addresses at once, offers and
quarantines it caused included, so the rest of the pool stays free for phones whatever the others
do.  Other clients' unanswered offers are held only OTHERS_OFFER_HOLD_SECONDS, and when their
share is full the oldest offer older than OTHERS_OFFER_MIN_SECONDS is taken back for the newcomer
(a DISCOVER-only flood cannot keep the tech's laptop out).  A DECLINE quarantines an address only
when it comes from the MAC the address was offered or leased to (`may_decline`).
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field, fields

from .codec import int_ip, ip_int

OFFER_HOLD_SECONDS = 30.0
# Another client's offer is held this long (a real client REQUESTs within a second or two; a flood never does) ...
OTHERS_OFFER_HOLD_SECONDS = 5.0
# ... and, when their share is full, an offer this old is taken back for the next one.
OTHERS_OFFER_MIN_SECONDS = 1.0
ACTIVE_STATES = frozenset(("offered", "bound"))
CONFLICT_SECONDS = 3600.0
# The reason stored with a quarantine another client's DECLINE caused (charged to their share while this
# process runs; after a restart it counts as any quarantine).
OTHERS_DECLINE_REASON = "declined by a client that is not a phone"
PHONE_VENDOR_PREFIX = "cisco systems, inc. ip phone"      # option 60; old 7940/60 loaders send no model after it
SHARE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def is_phone(mac: str, vendor_class: str | None, hostname: str | None, model: str | None = None) -> bool:
    """Does this client say it is a Cisco phone?  Option 60 naming a phone model or starting
    `Cisco Systems, Inc. IP Phone`, or option 12 `SEP<its own MAC>`.

    A claim, not a proof (a device may forge it): it only decides whose share an address comes from.
    """
    if model:
        return True
    if vendor_class and vendor_class.replace("\x00", "").strip().casefold().startswith(PHONE_VENDOR_PREFIX):
        return True
    return hostname is not None and hostname.strip().casefold() == "sep" + mac.casefold()


def share_count(text: str, size: int) -> int:
    """How many addresses other clients may hold: `"25%"` of a pool of `size`, or a count `"40"`.

    A percentage rounds down but leaves at least one address when it is not 0 and the pool has room
    (the tech's laptop must reach the dashboard).  Raises ValueError, saying why, for anything else
    (a percentage above 100, a count above the pool's size).
    """
    match = SHARE_RE.match(text)
    if not match:
        raise ValueError(f"expected a percentage of the pool (\"25%\") or a number of addresses (\"40\"), got {text!r}")
    number, percent = float(match.group(1)), bool(match.group(2))
    if percent:
        if number > 100:
            raise ValueError(f"at most 100%, got {text!r}")
        count = int(size * number / 100)
        return max(count, 1) if number > 0 and size > 0 else count
    if number != int(number):
        raise ValueError(f"a number of addresses is a whole number, got {text!r}")
    if number > size:
        raise ValueError(f"{int(number)} addresses but the pool has {size}")
    return int(number)


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
    phone: bool = field(default=False, compare=False)     # not a column: derived from vendor_class/hostname

    def active(self, now: float) -> bool:
        return self.state in ACTIVE_STATES and self.expires > now


@dataclass
class LeaseBook:
    pool_start: str
    pool_end: str
    reserved: dict[str, str] = field(default_factory=dict)     # mac -> ip (static)
    excluded: set[str] = field(default_factory=set)            # station and other fixed addresses

    others_share: int | None = None                            # None: other clients may use the whole pool

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
        # Other clients' active leases and offers: mac -> expires, with a heap of (expires, mac) to age them
        # out lazily (stale entries are skipped), and their outstanding offers in the order they were made.
        self._others: dict[str, float] = {}
        self._others_heap: list[tuple[float, str]] = []
        self._others_offers: dict[str, float] = {}
        self._others_conflicts: dict[str, float] = {}                  # ip -> until, charged to their share

    # -- loading ---------------------------------------------------------------------------
    def load(self, rows: list[dict], conflicts: list[dict]) -> None:
        for row in rows:
            lease = Lease(**{k: row.get(k) for k in COLUMNS})  # type: ignore[arg-type]  # checked below
            try:
                ip_int(lease.ip)
            except (ValueError, TypeError):
                continue   # a hand-edited or foreign row must not stop the service
            lease.phone = is_phone(lease.mac, lease.vendor_class, lease.hostname)
            self.by_mac[lease.mac] = lease
            self.by_ip[lease.ip] = lease.mac
            self._take(lease.ip)
            if not lease.phone and lease.state in ACTIVE_STATES:
                self._hold_other(lease.mac, lease.expires)
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

    def others_held(self, now: float) -> int:
        """Addresses charged to other clients now: their live offers and leases, and the quarantines they caused."""
        heap, others = self._others_heap, self._others
        while heap and heap[0][0] <= now:
            expires, mac = heapq.heappop(heap)
            if others.get(mac) == expires:
                del others[mac]
                self._others_offers.pop(mac, None)
        if self._others_conflicts:
            for ip in [ip for ip, until in self._others_conflicts.items() if until <= now]:
                del self._others_conflicts[ip]
        return len(others) + len(self._others_conflicts)

    def others_full(self, mac: str, now: float) -> bool:
        """May another client `mac` not take one more address?  False when it holds one already (it keeps
        it), or its share has room."""
        if self.others_share is None or mac in self._others and self._others[mac] > now:
            return False
        return self.others_held(now) >= self.others_share

    def quarantined(self, now: float) -> int:
        """Pool addresses in quarantine (a DECLINE or an answered ping) that nobody holds."""
        return sum(1 for ip, until in self.conflicts.items()
                   if until > now and self.in_pool(ip) and ip not in self.excluded and self.holder(ip, now) is None)

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

    def may_decline(self, mac: str, ip: str) -> bool:
        """Was `ip` offered or leased to `mac` (and to nobody since)?  Only then may its DECLINE quarantine it."""
        lease = self.by_mac.get(mac)
        return (lease is not None and lease.ip == ip and lease.state in ACTIVE_STATES
                and self.by_ip.get(ip) == mac)

    # -- choosing ---------------------------------------------------------------------------
    def choose(self, mac: str, requested: str | None, now: float, phone: bool = True) -> str | None:
        """Reservation, else the client's previous address, else the requested one, else a new one.

        A client that is not a phone gets none of these once its share is full (`others_full`), unless
        the oldest other client's unanswered offer can be taken back for it.
        """
        reserved = self.reserved.get(mac)
        if reserved is not None:
            return reserved if not self.conflicted(reserved, now) else None
        if not phone and self.others_full(mac, now) and not self._reclaim_other_offer(now):
            return None
        lease = self.by_mac.get(mac)
        if lease is not None and self.available_to(lease.ip, mac, now):
            return lease.ip
        if requested and self.available_to(requested, mac, now):
            return requested
        return self._next_free(mac, now)

    def _reclaim_other_offer(self, now: float) -> bool:
        """Take back the oldest unanswered offer to another client, if it is OTHERS_OFFER_MIN_SECONDS old."""
        offers = self._others_offers
        while offers:
            mac, offered = next(iter(offers.items()))
            lease = self.by_mac.get(mac)
            if lease is None or lease.state != "offered" or lease.phone:
                del offers[mac]                   # answered or gone: not an offer any more
                continue
            if now - offered < OTHERS_OFFER_MIN_SECONDS:
                return False
            self.unoffer(mac)
            return True
        return False

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
            self._let_go(other)
            self.pending.append(("forget", (other,)))
        self.by_mac[lease.mac] = lease
        self.by_ip[lease.ip] = lease.mac
        self._take(lease.ip)
        if self.others_share is None:
            return                             # no share to keep: nothing to count
        if lease.phone:
            self._let_go(lease.mac)
        else:
            self._hold_other(lease.mac, lease.expires)
            if lease.state == "offered":
                self._others_offers.pop(lease.mac, None)
                self._others_offers[lease.mac] = lease.updated
            else:
                self._others_offers.pop(lease.mac, None)

    def _hold_other(self, mac: str, expires: float) -> None:
        self._others[mac] = expires
        heapq.heappush(self._others_heap, (expires, mac))

    def _let_go(self, mac: str) -> None:
        """`mac` holds nothing charged to the others' share any more (its heap entry goes stale)."""
        self._others.pop(mac, None)
        self._others_offers.pop(mac, None)

    def _take(self, ip: str) -> None:
        """`ip` now has a lease: a pool address leaves the never-used heap's reach; note one outside it."""
        n = ip_int(ip)
        if self.first <= n <= self.last:
            self._fresh_taken.add(n)
        else:
            self._outside.add(ip)

    def offer(self, mac: str, ip: str, now: float, phone: bool = True, **info) -> Lease:
        lease = self.by_mac.get(mac)
        if lease is not None and lease.ip == ip and lease.state == "bound" and lease.expires > now:
            return lease
        hold = OFFER_HOLD_SECONDS if phone or self.others_share is None else OTHERS_OFFER_HOLD_SECONDS
        lease = Lease(mac=mac, ip=ip, state="offered", expires=now + hold, updated=now, phone=phone, **info)
        self._assign(lease)
        return lease

    def bind(self, mac: str, ip: str, expires: float, now: float, phone: bool = True, **info) -> Lease:
        lease = Lease(mac=mac, ip=ip, state="bound", expires=expires, updated=now, phone=phone, **info)
        self._assign(lease)
        self.pending.append(("upsert", (lease,)))
        return lease

    def release(self, mac: str, now: float) -> Lease | None:
        lease = self.by_mac.get(mac)
        if lease is None or lease.state not in ("bound", "offered"):
            return None
        lease.state, lease.expires, lease.updated = "released", now, now
        self._let_go(mac)
        self.pending.append(("upsert", (lease,)))
        return lease

    def unoffer(self, mac: str) -> None:
        """The client took another server's offer: our held address goes back to the pool."""
        lease = self.by_mac.get(mac)
        if lease is not None and lease.state == "offered":
            del self.by_mac[mac]
            self._let_go(mac)
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
        self._let_go(mac)
        self.pending.append(("forget", (mac,)))
        if self.by_ip.get(lease.ip) == mac:
            del self.by_ip[lease.ip]
            if self.in_pool(lease.ip):
                heapq.heappush(self._fresh, ip_int(lease.ip))
                self._fresh_taken.discard(ip_int(lease.ip))
        return lease.ip

    def decline(self, mac: str, ip: str, now: float, reason: str) -> None:
        """`mac` says `ip` is in use by someone else: quarantine it for CONFLICT_SECONDS and drop `mac`'s lease.

        The caller checks `may_decline` first.  A quarantine another client caused stays charged to
        its share (so declining address after address cannot eat the phones' part of the pool).
        """
        lease = self.by_mac.get(mac)
        if lease is not None and not lease.phone and self.others_share is not None:
            reason = OTHERS_DECLINE_REASON
            self._others_conflicts[ip] = now + CONFLICT_SECONDS
        self.conflicts[ip] = now + CONFLICT_SECONDS
        self.pending.append(("conflict", (ip, now + CONFLICT_SECONDS, reason, mac)))
        if lease is not None and lease.ip == ip:
            del self.by_mac[mac]
            self._let_go(mac)
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
            self._let_go(mac)
            del self.by_ip[ip]
        self.conflicts[ip] = now + CONFLICT_SECONDS
        self.pending.append(("conflict", (ip, now + CONFLICT_SECONDS, reason, None)))
        return True

    def status(self, now: float) -> dict:
        """Who holds the pool now: phones, other clients (against their share), quarantined, free.

        `free` is what a phone could still be offered; 0 means a new phone gets no address.
        """
        phones = others = 0
        outside = self._outside
        for lease in self.by_mac.values():
            if lease.expires > now and lease.state in ACTIVE_STATES and lease.ip not in outside:
                if lease.phone:
                    phones += 1
                else:
                    others += 1
        quarantined = self.quarantined(now)
        idle_reserved = sum(1 for ip, mac in self._reserved_ips.items()
                            if self.in_pool(ip) and ip not in self.excluded and self.by_ip.get(ip) != mac)
        free = max(0, self.size - phones - others - quarantined - idle_reserved)
        share = self.size if self.others_share is None else self.others_share
        held = self.others_held(now) if self.others_share is not None else others
        return {"size": self.size, "phones": phones, "others": others, "others_share": share,
                "others_free": max(0, min(free, share - held)), "quarantined": quarantined, "free": free}

    def take_pending(self) -> list[tuple[str, tuple]]:
        out, self.pending = self.pending, []
        return out



COLUMNS = tuple(f.name for f in fields(Lease) if f.name != "phone")
