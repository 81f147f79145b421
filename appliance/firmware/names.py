"""What a file name a phone asks for means, in one place (reference cisco-phones.md §2, §0.0 item 10).

Phones ask in any case (`TERM65.DEFAULT.LOADS`, `Jar45sccp...`), with a leading
`/` (`/mk-sip.jar`), over TFTP or HTTP :6970; all of those are the same request.
The tracker, the generated-file renderer and the file service classify names
here so they never disagree.  Pure: no I/O.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .mpp import is_licence_name, licence_mac, parse_profile


class Kind(enum.Enum):
    CONFIG = "config"                  # SEP<MAC>.cnf.xml, XMLDefault.cnf.xml, OS79XX.TXT, SIPDefault.cnf, SEP/SIP<MAC>.cnf
    SIGNED_CONFIG = "signed config"    # SEP<MAC>.cnf.xml.sgn (.enc.sgn): asked by a phone holding a trust list
    TRUST_LIST = "trust list"          # CTLSEP<MAC>.tlv, ITLSEP<MAC>.tlv, ITLFile.tlv, CTLFile.tlv
    TERM = "term manifest"             # termNN.default.loads: what a factory-reset phone asks first
    MANIFEST = "manifest"              # <LOADID>.loads
    LOADER_7940 = "7940 loader"        # P003.../P0S3....sbn: flashed first, then the phone reboots
    APP_7940 = "7940 application"      # P003.../P0S3....sb2: fetched after that reboot; the load is in after it
    COMPONENT = "component"            # .sbn, .sgn, .bin, .sebn, .SBN ...: listed in a manifest
    PROFILE = "mpp profile"            # <PSN>.xml, Cisco/CP-<PSN>/<mac>.cfg: a multiplatform (3PCC) phone's config
    LICENCE = "licence"                # <MAC>.lic: an Enterprise<->MPP conversion licence, served to its MAC only
    OTHER = "other"                    # locale jars, dialplan.xml, ring lists, ...


@dataclass(frozen=True)
class Name:
    asked: str        # as the phone sent it
    path: str         # one leading '/' stripped, '\\' as '/': what is looked up
    kind: Kind
    mac: str | None   # from SEP<MAC>/CTLSEP<MAC>/ITLSEP<MAC>/SIP<MAC>, Cisco/CP-<PSN>/<mac>.cfg, <MAC>.lic: 12 lower hex
    term: str | None = None     # "term65" for term manifests
    load: str | None = None     # the load ID a manifest or 7940 loader/app names (as asked)
    model: str | None = None    # the model an MPP profile request names ("CP-8851")

    @property
    def key(self) -> str:
        """Case-folded path: two requests for the same file compare equal."""
        return self.path.lower()


_SEP_CONFIG = re.compile(r"^(?:SEP|SIP)([0-9A-F]{12})\.cnf(?:\.xml)?$", re.I)
_DEFAULT_CONFIG = re.compile(r"^(?:XMLDefault\.cnf\.xml|SEPDefault\.cnf(?:\.xml)?|SIPDefault\.cnf|OS79XX\.TXT)$", re.I)
_SIGNED_CONFIG = re.compile(r"^(?:SEP([0-9A-F]{12}))?.*\.cnf(?:\.xml)?(?:\.enc)?\.sgn$", re.I)
_TRUST = re.compile(r"^(?:(?:CTL|ITL)SEP([0-9A-F]{12})\.tlv|ITLFile\.tlv|CTLFile\.tlv)$", re.I)
_TERM = re.compile(r"^(term\d\d)\.default\.loads$", re.I)
_MANIFEST = re.compile(r"^(.+)\.loads$", re.I)
_7940 = re.compile(r"^(P0[0-9A-Z]{2}[0-9A-Z\-]+)\.(sbn|sb2)$", re.I)
_COMPONENT = re.compile(r"\.(?:sbn|sb2|sgn|sebn|sbin|zup|bin\d?|zz)$", re.I)
_ANY_MAC = re.compile(r"(?:^|/)(?:CTL|ITL)?SEP([0-9A-F]{12})", re.I)


def lookup_name(name: str) -> str:
    """What is looked up for a requested name: '\\' as '/', one leading '/' stripped."""
    return (name or "").replace("\\", "/").removeprefix("/")


def classify(asked: str) -> Name:
    """The meaning of a requested file name.

    Args:
        asked: the name as the phone sent it (TFTP RRQ or HTTP path), any case.
    Returns:
        a Name; unknown names are Kind.OTHER, never an error.
    """
    path = lookup_name(asked)
    base = path.rsplit("/", 1)[-1]
    m = _ANY_MAC.search(path)
    mac = m.group(1).lower() if m else None
    if profile := parse_profile(path):
        return Name(asked, path, Kind.PROFILE, profile.mac, model=profile.model)
    if is_licence_name(base):
        return Name(asked, path, Kind.LICENCE, licence_mac(base))
    if "/" not in path:
        if (m := _SEP_CONFIG.match(base)) or _DEFAULT_CONFIG.match(base):
            return Name(asked, path, Kind.CONFIG, m.group(1).lower() if m else None)
        if _SIGNED_CONFIG.match(base):
            return Name(asked, path, Kind.SIGNED_CONFIG, mac)
        if _TRUST.match(base):
            return Name(asked, path, Kind.TRUST_LIST, mac)
        if m := _TERM.match(base):
            return Name(asked, path, Kind.TERM, None, term=m.group(1).lower())
        if m := _MANIFEST.match(base):
            return Name(asked, path, Kind.MANIFEST, None, load=m.group(1))
        if m := _7940.match(base):
            kind = Kind.LOADER_7940 if m.group(2).lower() == "sbn" else Kind.APP_7940
            return Name(asked, path, kind, None, load=m.group(1))
        if _COMPONENT.search(base):
            return Name(asked, path, Kind.COMPONENT, None)
    return Name(asked, path, Kind.OTHER, mac)
