"""DHCP server state machine (RFC 2131 §4.3), sans-I/O.

`Server.handle(data, now)` takes one received datagram and returns an `Outcome`:
replies (bytes + where to send them), events for the bus, and whether the
replies may only leave after the lease book's pending changes are durable.
The socket loop (`service.py`) owns sockets, the store and time.
"""
from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field
from typing import Callable

from .. import events as ev
from ..firmware.models import model_from_vendor_class as table_model
from ..mac import normalize_mac
from . import codec
from .codec import Message
from .leases import LeaseBook, is_phone, share_count

CLIENT_PORT_OFFSET = 1
BROADCAST = "255.255.255.255"
MODEL_RE = re.compile(r"CP-(\d{4})")
# Options a reply keeps when option 57 makes it drop others to fit.
OPT_MPP_URL_159, OPT_MPP_URL_160 = 159, 160
KEEP_WHEN_SHORT = frozenset((codec.OPT_SUBNET, codec.OPT_TFTP_SERVERS, codec.OPT_LEASE_TIME))
# Distinct (reply type, option 55, lease time, option 57) answers kept built; a client sending random
# option 55s only makes the cache start over.
REPLY_CACHE_MAX = 256


@dataclass(frozen=True)
class ServerSettings:
    """What the state machine needs from the config, already resolved."""

    address: str
    netmask: str
    pool_start: str
    pool_end: str
    lease_seconds: int
    dns: tuple[str, ...]
    domain: str
    tftp_servers: tuple[str, ...]
    router: str = ""
    reservations: tuple[tuple[str, str], ...] = ()
    server_port: int = 67
    others_share: str = "100%"        # what clients that are not phones may hold ("25%" or "40"; "100%": no
                                      # share kept for phones, as before fair shares); see leases.py
    others_lease_seconds: int = 0     # their lease length; 0: lease_seconds
    profile_port: int = 6970          # HTTP :6970 of the file service, named in options 159/160 (0: TFTP instead)

    @classmethod
    def from_config(cls, cfg) -> "ServerSettings":
        return cls(
            address=cfg.network.address, netmask=cfg.network.netmask,
            pool_start=cfg.dhcp.pool_start, pool_end=cfg.dhcp.pool_end, lease_seconds=cfg.dhcp.lease_seconds,
            dns=tuple(cfg.dhcp.dns), domain=cfg.dhcp.domain, tftp_servers=tuple(cfg.dhcp.tftp_servers),
            router=cfg.dhcp.router,
            reservations=tuple((normalize_mac(m), ip) for m, ip in cfg.dhcp.reservations.items()),
            server_port=cfg.dhcp.port, others_share=cfg.dhcp.others_share,
            others_lease_seconds=cfg.dhcp.others_lease_seconds, profile_port=cfg.tftp.http_port,
        )

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.netmask}", strict=False)


@dataclass
class Reply:
    data: bytes
    address: str
    port: int
    durable: bool          # may only be sent once the lease book's pending changes are committed
    kind: str


@dataclass
class Outcome:
    replies: list[Reply] = field(default_factory=list)
    events: list[tuple[str, str | None, dict]] = field(default_factory=list)   # (kind, mac, data)
    foreign_server: str | None = None     # a REQUEST named another server: the guard wants to know
    malformed: str | None = None
    dropped: tuple[str, str] | None = None    # a message not acted on: (kind, why), for a rate-limited log line
    mac: str | None = None                # the client's, once the message parsed as a BOOTREQUEST


def _remember(cache: dict, key: tuple, value):
    """cache[key] = value, starting the cache over when it is full; returns value."""
    if len(cache) >= REPLY_CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def model_from_vendor_class(vendor_class: str | None) -> str | None:
    """Phone model from option 60: the model table's name, else the four digits of a CP-NNNN it does not list."""
    if not vendor_class:
        return None
    model = table_model(vendor_class)
    if model:
        return model
    match = MODEL_RE.search(vendor_class)
    return match.group(1) if match else None


class Server:
    def __init__(self, settings: ServerSettings, book: LeaseBook | None = None,
                 may_serve: Callable[[float], bool] = lambda now: True,
                 ignore: Callable[[Message], bool] = lambda msg: False):
        self.s = settings
        self.network = settings.network
        self._mask, self._net = int(self.network.netmask), int(self.network.network_address)
        self.book = book or LeaseBook(settings.pool_start, settings.pool_end, reserved=dict(settings.reservations),
                                      excluded={settings.address})
        # The config checked the share against the configured range; the station's own address may be in it.
        share = min(share_count(settings.others_share, self.book.last - self.book.first + 1), self.book.size)
        self.book.others_share = share if share < self.book.size else None     # the whole pool: no share to keep
        self._others_lease = settings.others_lease_seconds or settings.lease_seconds
        self.may_serve = may_serve
        self.ignore = ignore
        self.counters = {k: 0 for k in ("received", "discovers", "offers", "requests", "acks", "naks", "declines",
                                        "releases", "informs", "malformed", "ignored", "exhausted", "refused",
                                        "others_refused", "declines_dropped")}
        self._static = self._static_options()
        self._asked_only = self._profile_options()
        self._server_id = codec.ip_bytes(settings.address)
        self._siaddr = (settings.tftp_servers or (settings.address,))[0]
        self._answers: dict[tuple, tuple[dict[int, bytes], bytes]] = {}    # see _answer

    # -- options ----------------------------------------------------------------------------------
    def _static_options(self) -> dict[int, bytes]:
        s = self.s
        opts: dict[int, bytes] = {codec.OPT_SUBNET: codec.ip_bytes(s.netmask)}
        if s.router:
            opts[codec.OPT_ROUTER] = codec.ip_bytes(s.router)
        if s.dns:
            opts[codec.OPT_DNS] = b"".join(codec.ip_bytes(d) for d in s.dns)
        if s.domain:
            opts[codec.OPT_DOMAIN] = s.domain.encode()
        tftp = s.tftp_servers or (s.address,)
        opts[codec.OPT_TFTP_NAME] = tftp[0].encode()
        opts[codec.OPT_TFTP_SERVERS] = b"".join(codec.ip_bytes(t) for t in tftp)
        return opts

    def _profile_options(self) -> dict[int, bytes]:
        """Options 159 and 160, sent only to a client that asks for them (its option 55): multiplatform (3PCC)
        phones read the provisioning server from 66, 160, 159 or 150 (phone-families.md §3.4 [F24]), and 160/159
        carry a URL.  Whether the phone takes the URL whole or as a server its own Profile Rule `/$PSN.xml` is
        added to is UNCONFIRMED: this URL is the whole profile URL ($PSN is the phone's macro for its product
        name), and 66/150 name the same station for the other reading.  Other clients never see them (159 and 160
        are other protocols' options in IANA's registry)."""
        host = (self.s.tftp_servers or (self.s.address,))[0]
        url = (f"http://{host}:{self.s.profile_port}/$PSN.xml" if self.s.profile_port else f"tftp://{host}/$PSN.xml")
        return {OPT_MPP_URL_159: url.encode(), OPT_MPP_URL_160: url.encode()}

    def _answer(self, out: Outcome, req: Message, mtype: int, yiaddr: str, lease_seconds: int | None,
                durable: bool) -> None:
        """An OFFER or ACK to `req`, into `out`.

        Its options depend only on the type, the client's option 55 (their order) and the lease time,
        and their encoding also on option 57: a fleet of one phone model asks alike, so each distinct
        answer is built and encoded once (at most REPLY_CACHE_MAX kept).
        """
        key = (mtype, req.options.get(codec.OPT_PRL, b""), lease_seconds, req.max_size)
        answer = self._answers.get(key)
        if answer is None:
            options = self._reply_options(req, mtype, lease_seconds)
            answer = _remember(self._answers, key,
                               (options, codec.encode_options(options, req.max_size, KEEP_WHEN_SHORT)))
        options, field = answer
        reply = Message(op=codec.BOOTREPLY, htype=req.htype, hlen=req.hlen, xid=req.xid, flags=req.flags,
                        ciaddr=req.ciaddr if mtype == codec.ACK else "0.0.0.0", yiaddr=yiaddr,
                        siaddr=self._siaddr, giaddr=req.giaddr, chaddr=req.chaddr, options=options)
        self._out(out, req, reply, durable, options_field=field)

    def _reply_options(self, req: Message, mtype: int, lease_seconds: int | None) -> dict[int, bytes]:
        """Type and server id first, then what the client asked for in its order, then the rest
        (phones differ in what they request, so everything is sent)."""
        options: dict[int, bytes] = {codec.OPT_MSG_TYPE: bytes((mtype,)), codec.OPT_SERVER_ID: self._server_id}
        rest = dict(self._static)
        if lease_seconds is not None:
            rest[codec.OPT_LEASE_TIME] = struct.pack("!I", lease_seconds)
            rest[codec.OPT_T1] = struct.pack("!I", lease_seconds // 2)
            rest[codec.OPT_T2] = struct.pack("!I", lease_seconds * 7 // 8)
        for code in req.prl:
            if code in rest:
                options[code] = rest.pop(code)
            elif code in self._asked_only:
                options[code] = self._asked_only[code]
        options.update(rest)
        return options

    def _nak(self, req: Message, reason: str) -> Message:
        options = {codec.OPT_MSG_TYPE: bytes((codec.NAK,)), codec.OPT_SERVER_ID: self._server_id,
                   codec.OPT_MESSAGE: reason.encode()[:255]}
        return Message(op=codec.BOOTREPLY, htype=req.htype, hlen=req.hlen, xid=req.xid,
                       flags=req.flags | codec.BROADCAST_FLAG, giaddr=req.giaddr, chaddr=req.chaddr, options=options)

    def _destination(self, req: Message, reply: Message) -> tuple[str, int]:
        """RFC 2131 §4.1: relay, else unicast to a configured client, else broadcast (no ARP injection)."""
        client_port = self.s.server_port + CLIENT_PORT_OFFSET
        if req.giaddr != "0.0.0.0":
            return req.giaddr, self.s.server_port
        if reply.msg_type == codec.NAK:
            return BROADCAST, client_port
        if req.ciaddr != "0.0.0.0" and not req.broadcast:
            return req.ciaddr, client_port
        return BROADCAST, client_port

    def _out(self, out: Outcome, req: Message, reply: Message, durable: bool,
             options_field: bytes | None = None) -> None:
        address, port = self._destination(req, reply)
        data = codec.serialize(reply, max_size=req.max_size, keep=KEEP_WHEN_SHORT, options_field=options_field)
        out.replies.append(Reply(data, address, port, durable, codec.TYPE_NAMES.get(reply.msg_type or 0, "?")))

    # -- entry point ----------------------------------------------------------------------------------
    def handle(self, data: bytes | Message, now: float, peer: str = "") -> Outcome:
        """Answer one datagram received on the server port.

        Args:
            data: the UDP payload (or an already parsed Message).
            now: the current time (epoch seconds); leases and guard windows are timed from it.
            peer: "ip:port" of the sender, for the malformed-packet event only.
        Returns:
            An Outcome: replies to send (each marked durable when its lease change must be stored
            first), events for the bus, the malformed reason, and any foreign DHCP server seen.
            The lease book's changes wait in `book.take_pending()` for the caller to store.
        Raises:
            Nothing for bad input: a malformed packet is counted and reported in the Outcome.
        """
        out = Outcome()
        self.counters["received"] += 1
        if isinstance(data, Message):
            msg = data
        else:
            try:
                msg = codec.parse(data)
            except codec.MalformedPacket as exc:
                self.counters["malformed"] += 1
                out.malformed = exc.reason
                out.events.append((ev.DHCP_MALFORMED, None, {"peer": peer, "reason": exc.reason,
                                                              "size": len(data)}))
                return out
        if msg.op != codec.BOOTREQUEST or msg.msg_type is None or msg.htype != 1 or msg.hlen != 6:
            self.counters["ignored"] += 1
            return out
        if self.ignore(msg):
            self.counters["ignored"] += 1
            return out
        out.mac = msg.mac
        unknown = msg.unknown_options()
        if unknown:
            out.events.append((ev.DHCP_UNKNOWN_OPTIONS, msg.mac, {"codes": unknown}))
        handler = {codec.DISCOVER: self._discover, codec.REQUEST: self._request, codec.DECLINE: self._decline,
                   codec.RELEASE: self._release, codec.INFORM: self._inform}.get(msg.msg_type)
        if handler is None:
            self.counters["ignored"] += 1
            return out
        handler(msg, now, out)
        return out

    def _client_info(self, msg: Message) -> dict:
        vendor = msg.text_option(codec.OPT_VENDOR_CLASS)
        hostname = msg.text_option(codec.OPT_HOSTNAME)
        model = model_from_vendor_class(vendor)
        phone = bool(model) or ((vendor is not None or hostname is not None) and is_phone(msg.mac, vendor, hostname))
        return {"vendor_class": vendor, "hostname": hostname, "prl": msg.prl, "model": model, "phone": phone}

    def _lease_info(self, info: dict, msg: Message) -> dict:
        client_id = msg.options.get(codec.OPT_CLIENT_ID)
        return {"hostname": info["hostname"], "vendor_class": info["vendor_class"],
                "client_id": client_id.hex() if client_id else None,
                "prl": ",".join(map(str, info["prl"])) if info["prl"] else None}

    def _serving(self, now: float) -> bool:
        if self.may_serve(now):
            return True
        self.counters["refused"] += 1
        return False

    # -- message handlers ----------------------------------------------------------------------------
    def _discover(self, msg: Message, now: float, out: Outcome) -> None:
        self.counters["discovers"] += 1
        info = self._client_info(msg)
        requested = msg.ip_option(codec.OPT_REQUESTED_IP)
        out.events.append((ev.DHCP_DISCOVER, msg.mac, {"ip": requested, **info}))
        if not self._serving(now):
            return
        phone = info["phone"]
        ip = self.book.choose(msg.mac, requested, now, phone=phone)
        if ip is None:
            if not phone and self.book.others_full(msg.mac, now):
                # past its share (phones are still served): counted, and logged rate-limited by the service
                self.counters["others_refused"] += 1
                out.dropped = ("share", f"no offer to {msg.mac}: devices that are not phones hold their whole share "
                                        f"of the pool ({self.book.others_share} addresses)")
            else:            # the whole pool is taken
                self.counters["exhausted"] += 1
                out.events.append((ev.DHCP_EXHAUSTED, msg.mac, {"pool_size": self.book.size, "phone": phone}))
            return
        self.book.offer(msg.mac, ip, now, phone=phone, **self._lease_info(info, msg))
        self.counters["offers"] += 1
        out.events.append((ev.DHCP_OFFER, msg.mac, {"ip": ip}))
        self._answer(out, msg, codec.OFFER, ip, self._lease_seconds(phone), durable=False)

    def _lease_seconds(self, phone: bool) -> int:
        return self.s.lease_seconds if phone else self._others_lease

    def _request(self, msg: Message, now: float, out: Outcome) -> None:
        self.counters["requests"] += 1
        server_id = msg.ip_option(codec.OPT_SERVER_ID)
        requested = msg.ip_option(codec.OPT_REQUESTED_IP)
        if server_id is not None and server_id != self.s.address:
            # SELECTING another server's offer: free ours, and tell the guard someone else answers here.
            self.book.unoffer(msg.mac)
            out.foreign_server = server_id
            return
        if not self._serving(now):
            return
        if server_id is not None:
            state, ip = "selecting", requested
            if ip is None:
                return self._send_nak(msg, out, "no requested address")
        elif requested is not None:
            state, ip = "init-reboot", requested
        elif msg.ciaddr != "0.0.0.0":
            state, ip = ("rebinding" if msg.broadcast else "renewing"), msg.ciaddr
        else:
            return
        if codec.ip_int(ip) & self._mask != self._net:
            return self._send_nak(msg, out, f"{ip} is not on this network")
        if state == "selecting":
            lease = self.book.by_mac.get(msg.mac)
            if lease is None or lease.ip != ip:
                if not self.book.available_to(ip, msg.mac, now):
                    return self._send_nak(msg, out, f"{ip} was not offered to this client")
        elif not self.book.available_to(ip, msg.mac, now):
            return self._send_nak(msg, out, f"{ip} is not available")
        reserved = self.book.reserved.get(msg.mac)
        if reserved is not None and reserved != ip:
            return self._send_nak(msg, out, f"this client is reserved {reserved}")
        info = self._client_info(msg)
        phone = info["phone"]
        if not phone and reserved is None and self.book.others_full(msg.mac, now):
            self.counters["others_refused"] += 1
            return self._send_nak(msg, out, "the pool's share for devices that are not phones is full")
        seconds = self._lease_seconds(phone)
        expires = now + seconds
        self.book.bind(msg.mac, ip, expires, now, phone=phone, **self._lease_info(info, msg))
        self.counters["acks"] += 1
        out.events.append((ev.DHCP_ACK, msg.mac, {"ip": ip, "state": state, "expires": expires, **info}))
        self._answer(out, msg, codec.ACK, ip, seconds, durable=True)

    def _send_nak(self, msg: Message, out: Outcome, reason: str) -> None:
        self.counters["naks"] += 1
        out.events.append((ev.DHCP_NAK, msg.mac, {"reason": reason}))
        self._out(out, msg, self._nak(msg, reason), durable=False)

    def _decline(self, msg: Message, now: float, out: Outcome) -> None:
        server_id = msg.ip_option(codec.OPT_SERVER_ID)
        ip = msg.ip_option(codec.OPT_REQUESTED_IP)
        if (server_id is not None and server_id != self.s.address) or ip is None:
            return
        if not self.book.may_decline(msg.mac, ip):
            # Only the client the address was offered or leased to may say it is in use: anyone else's
            # DECLINE would quarantine a phone's address and have the phone NAKed at its next boot.
            self.counters["declines_dropped"] += 1
            out.dropped = ("decline", f"DECLINE of {ip} from {msg.mac} dropped: that address was not offered or "
                                      "leased to it")
            return
        self.counters["declines"] += 1
        self.book.decline(msg.mac, ip, now, "declined by client")
        out.events.append((ev.DHCP_DECLINE, msg.mac, {"ip": ip}))

    def _release(self, msg: Message, now: float, out: Outcome) -> None:
        server_id = msg.ip_option(codec.OPT_SERVER_ID)
        if server_id is not None and server_id != self.s.address:
            return
        lease = self.book.by_mac.get(msg.mac)
        if lease is None or lease.ip != msg.ciaddr:
            return
        self.counters["releases"] += 1
        self.book.release(msg.mac, now)
        out.events.append((ev.DHCP_RELEASE, msg.mac, {"ip": lease.ip}))

    def _inform(self, msg: Message, now: float, out: Outcome) -> None:
        if not self._serving(now) or msg.ciaddr == "0.0.0.0":
            return
        self.counters["informs"] += 1
        self._answer(out, msg, codec.ACK, "0.0.0.0", None, durable=False)

    # -- status ------------------------------------------------------------------------------------
    def pool_status(self, now: float) -> dict:
        """The pool's use for the heartbeat, `dhcp.status` and `/api/v1/health`.

        `exhausted` is true when a new phone could not be offered an address now (every address leased,
        offered, quarantined or reserved for another MAC); `others_full` when clients that are not phones
        hold their whole share (phones are still served).
        """
        use = self.book.status(now)
        return {"pool_start": self.s.pool_start, "pool_end": self.s.pool_end, **use,
                "used": use["phones"] + use["others"], "exhausted": use["free"] == 0,
                "others_full": use["others_free"] == 0,
                "conflicts": sum(1 for until in self.book.conflicts.values() if until > now)}
