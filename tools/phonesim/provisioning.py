"""Where an MPP phone asks for its profile, in what order, and how it names itself (phone-families.md §3.4).

- DHCP: "The phone supports DHCP options 66,160,159,150,60,43, and 125" [F24][F7][F26].  That sentence lists
  options, it does not rank them: the order the phone prefers is UNCONFIRMED, so it is a setting
  (`option_order`, default the order listed: 66, 160, 159, 150).  The first option present names the
  server; 43/60/125 are not modelled.  66: a host name or address, or a URL (read as 160).  160/159: URLs.
  150: "may carry IP1;IP2": read as that text, else as the usual list of 4-byte addresses (both readings);
  each address is tried in turn (UNCONFIRMED).
- The factory Profile Rule is `/$PSN.xml`; DHCP-based provisioning "works only if the Profile Rule starts
  with '/'"; the retry tails are `$PSN.xml` then `/Cisco/$PN/$MA.cfg`, "over tftp, http, https".  Whether the
  phone tries both names over one protocol before the next, or one name over every protocol before the next
  name, is UNCONFIRMED: `order` FILE_FIRST (8851-3PCC.xml over tftp, http, https, then the .cfg) is the
  default, PROTOCOL_FIRST the other reading.  A URL option (160/159) fixes the protocol: only it is tried.
- HTTP User-Agent `Cisco-CP-8841-3PCC/11.0 (00562b043615)`: model, version, MAC in lower case [F27].
- Option 60 `Cisco Systems, Inc. IP Phone CP-8851-3PCC` + NUL (cisco-phones.md §1.3, wazo-provd suffix match).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .flatprofile import DEFAULT_PORTS, SCHEMES, RuleError, parse_url

OPTION_ORDER = (66, 160, 159, 150)
FILE_FIRST, PROTOCOL_FIRST = "file-first", "protocol-first"
ORDERS = (FILE_FIRST, PROTOCOL_FIRST)
# The option-55 list of an MPP phone is not in the reference: the options it supports (§3.4) are asked.
PRL = bytes((1, 3, 6, 15, 42, 66, 150, 159, 160, 43, 125))
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Base:
    """One server to ask: a protocol fixed by a URL option, or None (try tftp, http, https in turn)."""
    scheme: str | None
    host: str
    port: int | None          # None: the protocol's own port
    prefix: str = "/"         # the URL's path, ending with '/'


def _text(raw: bytes) -> str | None:
    try:
        text = raw.rstrip(b"\0").decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None


def _from_url(text: str) -> Base | None:
    try:
        url = parse_url(text.rstrip("/") + "/x")
    except RuleError:
        return None
    explicit = re.match(r"^[a-z]+://[^/]*:\d+", text, re.I) is not None
    return Base(url.scheme, url.host, url.port if explicit else None, url.directory)


def _from_option(code: int, raw: bytes) -> list[Base]:
    text = _text(raw)
    if code in (159, 160) or (code == 66 and text and "://" in text):
        base = _from_url(text) if text else None
        return [base] if base else []
    if code == 66:
        return [Base(None, text, None)] if text and _HOST.match(text) else []
    if code == 150:
        if text and (";" in text or (re.fullmatch(r"[0-9.]+", text) and text.count(".") == 3)):
            hosts = [h.strip() for h in text.split(";")]
            return [Base(None, h, None) for h in hosts if _is_ipv4(h)]
        if raw and len(raw) % 4 == 0:
            return [Base(None, str(ipaddress.IPv4Address(raw[i:i + 4])), None) for i in range(0, len(raw), 4)]
    return []


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def servers(options: dict[int, bytes], order: tuple[int, ...] = OPTION_ORDER, siaddr: str | None = None) -> list[Base]:
    """The servers the first usable option in `order` names; else siaddr (as a plain server), else none."""
    for code in order:
        if code in options:
            found = _from_option(code, options[code])
            if found:
                return found
    return [Base(None, siaddr, None)] if siaddr else []


@dataclass(frozen=True)
class Ask:
    """One profile request: the path (with '/') over one protocol to one server."""
    path: str
    scheme: str
    host: str
    port: int


def profile_requests(bases: list[Base], psn: str, pn: str, mac: str, order: str = FILE_FIRST) -> list[Ask]:
    """Every request of one profile round, in the order the phone makes them."""
    if order not in ORDERS:
        raise ValueError(f"profile request order must be one of {ORDERS}, not {order!r}")
    tails = (f"{psn}.xml", f"Cisco/{pn}/{mac.lower()}.cfg")
    out: list[Ask] = []
    for base in bases:
        schemes = (base.scheme,) if base.scheme else SCHEMES
        pairs = ([(t, s) for t in tails for s in schemes] if order == FILE_FIRST
                 else [(t, s) for s in schemes for t in tails])
        for tail, scheme in pairs:
            port = base.port if base.port is not None else DEFAULT_PORTS[scheme]
            out.append(Ask(base.prefix + tail, scheme, base.host, port))
    return out


def user_agent(pn: str, version: str, mac: str) -> str:
    """`Cisco-CP-8841-3PCC/11.0 (00562b043615)` [F27]."""
    return f"Cisco-{pn}/{version} ({mac.lower()})"


def vendor_class(pn: str) -> str:
    """Option 60 (cisco-phones.md §1.3): `Cisco Systems, Inc. IP Phone CP-8851-3PCC` and a NUL."""
    return f"Cisco Systems, Inc. IP Phone {pn}\x00"
