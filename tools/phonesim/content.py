"""What the phone reads out of the text files it fetched: configs, OS79XX.TXT, SIP .cnf, manifest lists.

Pure functions over bytes, lenient the way a phone is (a regex, not a strict XML
parser) and bounded (a manifest lists at most MAX_COMPONENTS files).
"""
from __future__ import annotations

import re

MAX_COMPONENTS = 64
_LOAD_INFO = re.compile(rb"<loadInformation(\d*)\b[^>]*>\s*([^<]*?)\s*</loadInformation\1\s*>")
_WEB_ACCESS = re.compile(rb"<webAccess>\s*(\d)\s*</webAccess>")
_IMAGE_VERSION = re.compile(rb"^\s*image_version\s*:\s*\"?([^\"\s]+)\"?", re.M)


def load_information(config: bytes, device_type: int) -> str | None:
    """The load a SEP<MAC>.cnf.xml (`<loadInformation>`) or XMLDefault.cnf.xml (`<loadInformationNNN>` for
    this device type, §3.4) names, without suffix (§3.1); None when it names none."""
    plain = None
    for m in _LOAD_INFO.finditer(config[:1 << 20]):
        value = m.group(2).decode("ascii", "replace") or None
        if m.group(1) and int(m.group(1)) == device_type and value:
            return value
        if not m.group(1) and plain is None:
            plain = value
    return plain


def web_access(config: bytes) -> bool | None:
    """`<webAccess>`: 0 = enabled, 1 = disabled (§7.2); None when the config does not say."""
    m = _WEB_ACCESS.search(config[:1 << 20])
    return None if m is None else m.group(1) == b"0"


def os79xx(text: bytes) -> str | None:
    """The load OS79XX.TXT names: its first line.  A trailing space is kept, as it breaks the phone
    (bug CSCdv19260, §5.2 [23])."""
    line = text[:256].split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")
    return line or None


def image_version(text: bytes) -> str | None:
    """`image_version:` of a 7940/60 SIPDefault.cnf / SIP<MAC>.cnf (§2.2)."""
    m = _IMAGE_VERSION.search(text[:1 << 16])
    return m.group(1).decode("ascii", "replace") if m else None


def manifest_components(payload: bytes) -> list[str]:
    """The files a .loads payload lists (§4.2): one per line, comments (#) and KEY=VALUE lines skipped,
    wireless `name TAB size MD5` lines reduced to the name."""
    names: list[str] = []
    for raw in payload.decode("latin-1").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" in line:
            continue
        names.append(line.split()[0])
        if len(names) >= MAX_COMPONENTS:
            break
    return names
