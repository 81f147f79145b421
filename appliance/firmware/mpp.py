"""What a multiplatform (MPP, 3PCC) phone sends, read: its profile requests, its HTTP User-Agent, its licence's name.

Facts and sources (phone-families.md §3.1, §3.4): out of the box an MPP phone asks `/$PSN.xml` (`8851-3PCC.xml`),
then `/Cisco/$PN/$MA.cfg` (`/Cisco/CP-8851-3PCC/001234ab45de.cfg`, lower-case MAC) over TFTP, HTTP and HTTPS
[F24][F7]; its HTTP User-Agent is `Cisco-CP-8841-3PCC/11.0 (00562b043615)` (model, version, MAC) [F27]; its DHCP
option 60 ends `CP-8851-3PCC` (reference cisco-phones.md §1.3); a conversion licence is `<UPPER-CASE MAC>.lic`
[F24].  Everything here is a phone's claim: bounded, validated, and None (never an exception) for what does not
fit.  Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME = 128          # a profile path is ~40 characters; anything longer is not one
MAX_USER_AGENT = 256
MAX_LICENCE_BYTES = 64 * 1024   # a Cisco licence is a small signed text file; a larger one is not one

# PSN: the model's four digits, "NR" for the no-radio variants (UNCONFIRMED: no source shows an NR profile name,
# accepted so such a phone is not refused on a guess), then -3PCC.
_PSN = r"(\d{4})(NR)?-3PCC"
_PROFILE_PSN = re.compile(rf"^{_PSN}\.xml$", re.I)
_PROFILE_MAC = re.compile(rf"^Cisco/CP-{_PSN}/([0-9a-f]{{12}})\.cfg$", re.I)
# The version is what the firmware writes ("11.0", "12.0.3_..." in a SIP trace): kept as text, bounded.
_UA = re.compile(rf"^Cisco-CP-{_PSN}/([0-9A-Za-z][0-9A-Za-z.()_\-]{{0,39}}) \(([0-9A-Fa-f]{{12}})\)")
_LICENCE = re.compile(r"^([0-9A-F]{12})\.lic$", re.I)
_VENDOR = re.compile(rf"CP-{_PSN}\s*$", re.I)


@dataclass(frozen=True)
class Profile:
    """A profile request: `model` as the station names it ("CP-8851"), `psn` as asked ("8851-3PCC"), `mac` when the
    request names one (`/Cisco/CP-8851-3PCC/<mac>.cfg`), 12 lower-case hex digits."""
    model: str
    psn: str
    mac: str | None


@dataclass(frozen=True)
class UserAgent:
    """What an MPP phone's User-Agent says: model ("CP-8841"), version as written ("11.0"), MAC (lower case)."""
    model: str
    version: str
    mac: str


def _model(digits: str, nr: str | None) -> str:
    return f"CP-{digits}{'NR' if nr else ''}"


def parse_profile(path: str | None) -> Profile | None:
    """The profile a requested path asks for, or None.

    Args:
        path: the name as looked up (one leading '/' stripped, '\\' as '/'), any case.
    Returns:
        a Profile for `<PSN>.xml` or `Cisco/CP-<PSN>/<mac>.cfg`; None for anything else (too long, other folders,
        a MAC that is not 12 hex digits, `..`).
    """
    if not path or len(path) > MAX_NAME or not path.isascii():
        return None
    if m := _PROFILE_PSN.match(path):
        return Profile(_model(m.group(1), m.group(2)), f"{m.group(1)}{m.group(2) or ''}-3PCC".upper(), None)
    if m := _PROFILE_MAC.match(path):
        return Profile(_model(m.group(1), m.group(2)), f"{m.group(1)}{m.group(2) or ''}-3PCC".upper(),
                       m.group(3).lower())
    return None


def parse_user_agent(text: str | bytes | None) -> UserAgent | None:
    """An MPP phone's HTTP User-Agent, or None (another client, oversized, non-ASCII, control characters)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(text) > MAX_USER_AGENT or not text.isascii() or not text.isprintable():
        return None
    m = _UA.match(text)
    if m is None:
        return None
    return UserAgent(_model(m.group(1), m.group(2)), m.group(3), m.group(4).lower())


def is_mpp_vendor_class(text: str | bytes | None) -> bool:
    """DHCP option 60 of an MPP phone (`... CP-8851-3PCC`, trailing NUL or not)."""
    if text is None:
        return False
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return bool(_VENDOR.search(text.replace("\x00", "")[:255]))


def licence_name(mac: str) -> str:
    """`<UPPER-CASE MAC>.lic` for a MAC in any spelling the station keeps (12 hex digits)."""
    clean = mac.replace(":", "").replace("-", "").replace(".", "")
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", clean):
        raise ValueError(f"not a MAC: {mac[:40]!r}")
    return f"{clean.upper()}.lic"


def licence_mac(name: str | None) -> str | None:
    """The MAC a licence file name is for (lower case), from its base name; None if it is no licence's name."""
    if not name or len(name) > MAX_NAME:
        return None
    m = _LICENCE.match(name.replace("\\", "/").rsplit("/", 1)[-1])
    return m.group(1).lower() if m else None


def is_licence_name(name: str | None) -> bool:
    """Any `*.lic` name: never served from the firmware library (only licences.py answers it, to its MAC)."""
    return bool(name) and str(name).lower().rstrip().endswith(".lic")


def version_tuple(version: str | None) -> tuple[int, ...]:
    """The leading numbers of a reported version ("11.3.3" -> (11, 3, 3); "12.0.3_xyz" -> (12, 0, 3))."""
    m = re.match(r"^(\d{1,3})(?:[.\-(](\d{1,3}))?(?:[.\-)(]+(\d{1,3}))?", version or "")
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def reports(version: str | None, key: tuple[int, ...] | None) -> bool:
    """Whether a reported version is a load whose version key is `key`.

    A User-Agent's version may be shorter than the release ("11.0" in the one example [F27]): the numbers it does
    give must all match, and it must give at least major and minor.  Both readings (short and full) are kept."""
    got = version_tuple(version)
    return key is not None and len(got) >= 2 and tuple(key[:len(got)]) == got
