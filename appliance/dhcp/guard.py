"""Rogue-server guard, sans-I/O: is another DHCP server answering on this segment?

A station plugged into a production switch by mistake must not hand out
addresses there.  The guard sends a DISCOVER probe from its own random,
locally administered MAC (and never a REQUEST, so the other server only holds
an offer for a client that does not exist and its real clients are untouched),
and listens for OFFERs/ACKs from any server id other than ours and for client
REQUESTs naming another server.  The socket loop feeds it and asks `may_offer`.

"clear" means a probe was sent and its window closed in silence, nothing less: a probe the socket
could not send (link down, no route) is reported back with `not_sent`, and until a later probe is
sent and answered by silence the status is "unknown" (`not_probed` says why) and a refusing guard
offers nothing.
"""
from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from . import codec
from .codec import Message

PROBE_WINDOW = 4.0          # seconds to collect OFFERs; dnsmasq pings for 3 s before it offers
PROBE_VENDOR_CLASS = b"recovery-station-guard"
RETRY_UNSENT = PROBE_WINDOW  # a probe that could not be sent is tried again this soon, not a whole interval later
MODES = ("refuse", "warn", "off")


@dataclass
class Guard:
    mode: str
    own_address: str
    interval: float
    rng: random.Random | None = None
    servers: dict[str, float] = field(default_factory=dict)    # server address -> last seen
    probe_mac: str = ""
    probe_xid: int = 0
    probe_sent: float | None = None
    checked: float | None = None                                # end of the last completed probe window
    via: dict[str, str] = field(default_factory=dict)          # server address -> "probe" | "request"
    not_probed: str | None = None                               # why the last probe was not sent; None if it was

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"guard mode must be one of {MODES}")
        self._random = self.rng.getrandbits if self.rng is not None else secrets.randbits
        self._blind = False
        self._unsent = False

    # -- probing -------------------------------------------------------------------------------------
    def due(self, now: float) -> bool:
        if self.mode == "off" or self.probe_sent is not None and now - self.probe_sent < PROBE_WINDOW:
            return False
        wait = RETRY_UNSENT if self.not_probed is not None else self.interval
        return self.probe_sent is None or now - self.probe_sent >= wait

    def probe(self, now: float) -> bytes:
        """A fresh DISCOVER: new MAC and xid each time, broadcast flag so replies reach us without ARP."""
        mac = (self._random(48) & 0xFEFFFFFFFFFF | 0x020000000000).to_bytes(6, "big")
        self.probe_mac, self.probe_xid, self.probe_sent = mac.hex(), self._random(32), now
        self._unsent = False        # until the loop says otherwise; `not_probed` clears when its window closes
        msg = Message(op=codec.BOOTREQUEST, xid=self.probe_xid, flags=codec.BROADCAST_FLAG, chaddr=mac, options={
            codec.OPT_MSG_TYPE: bytes((codec.DISCOVER,)),
            codec.OPT_VENDOR_CLASS: PROBE_VENDOR_CLASS,
            codec.OPT_PRL: bytes((1, 3, 6, 54)),
        })
        return codec.serialize(msg)

    def not_sent(self, now: float, reason: str) -> list[tuple[str, dict]]:
        """The probe `probe` built could not be sent (`reason`, e.g. "Network is unreachable").

        Its window then proves nothing: the status is "unknown" until a later probe (tried after RETRY_UNSENT)
        is sent and its window closes in silence; servers already heard are kept, and a refusing guard offers
        nothing meanwhile.
        Returns status-change events.
        """
        if self.mode == "off":
            return []
        before = self.status(now)
        self.not_probed = reason or "not sent"
        self._unsent = True
        after = self.status(now)
        return [("changed", after)] if (before["status"], before["not_probed"]) != (after["status"],
                                                                                     after["not_probed"]) else []

    def cannot_probe(self, now: float, reason: str) -> None:
        """No probe can ever be sent (the client port could not be opened): the station serves, as configured
        before this guard existed, but the status stays "unknown" with `reason`, never "clear"."""
        self.not_probed = reason
        self.checked = now
        self.probe_sent = None
        self._blind = True

    def is_probe(self, msg: Message) -> bool:
        """Our own probe, heard by our own server socket: never answer it."""
        return msg.options.get(codec.OPT_VENDOR_CLASS) == PROBE_VENDOR_CLASS

    # -- observing -------------------------------------------------------------------------------------
    def observe_reply(self, msg: Message, source_ip: str, now: float) -> list[tuple[str, dict]]:
        """A BOOTREPLY heard on the client port.  Returns status-change events."""
        if msg.op != codec.BOOTREPLY or msg.msg_type not in (codec.OFFER, codec.ACK, codec.NAK):
            return []
        server = msg.ip_option(codec.OPT_SERVER_ID) or source_ip
        if server == self.own_address or not server or server == "0.0.0.0":
            return []
        return self.seen(server, now)

    def observe_request(self, server_id: str, now: float) -> list[tuple[str, dict]]:
        """A client REQUEST (or DECLINE) naming `server_id`."""
        if server_id == self.own_address:
            return []
        return self.seen(server_id, now, via="request")

    def seen(self, server: str, now: float, via: str = "probe") -> list[tuple[str, dict]]:
        if self.mode == "off":
            return []
        before = self.status_name(now)
        new = server not in self.servers
        self.servers[server] = now
        if self.via.get(server) != "probe":
            self.via[server] = via
        if new or before != self.status_name(now):
            return [("changed", self.status(now))]
        return []

    def tick(self, now: float) -> list[tuple[str, dict]]:
        """Close a probe window and forget servers not heard from for two intervals."""
        before = self.status_name(now), sorted(self.servers)
        closing = (self.probe_sent is not None and not self._unsent and not self._blind
                   and now - self.probe_sent >= PROBE_WINDOW
                   and (self.checked is None or self.checked < self.probe_sent))
        if closing:
            self.checked = now
            self.not_probed = None
        horizon = 2 * self.interval + PROBE_WINDOW
        for server, seen in list(self.servers.items()):
            # A server found by probing is gone once a probe goes unanswered; one seen only through
            # client REQUESTs (it may ignore unknown clients) is kept for two intervals.
            silent_to_probe = (closing and self.via.get(server) == "probe" and self.probe_sent is not None
                               and seen < self.probe_sent)
            if silent_to_probe or now - seen > horizon:
                del self.servers[server]
                self.via.pop(server, None)
        if (self.status_name(now), sorted(self.servers)) != before:
            return [("changed", self.status(now))]
        return []

    # -- decisions -----------------------------------------------------------------------------------
    def ready(self) -> bool:
        """In refuse mode nothing is served before the first probe window closed."""
        return self.mode != "refuse" or self.checked is not None

    def may_offer(self, now: float) -> bool:
        if self.mode != "refuse":
            return True
        return self.checked is not None and not self.servers and (self.not_probed is None or self._blind)

    def status_name(self, now: float) -> str:
        if self.mode == "off":
            return "off"
        if self.servers:
            return "refusing" if self.mode == "refuse" else "warning"
        if self.not_probed is not None:
            return "unknown"
        if self.checked is None:
            return "checking"
        return "clear"

    def status(self, now: float) -> dict:
        return {"mode": self.mode, "status": self.status_name(now), "servers": sorted(self.servers),
                "last_probe": self.probe_sent, "checked": self.checked, "serving": self.may_offer(now),
                "not_probed": self.not_probed}
