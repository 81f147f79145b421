"""The phone's reader of a 5th-generation `.loads` payload: an INI file (phone-families.md §1.2).

The real sip78xx.11-0-1-11.loads payload (LF line endings), abridged:

    # RELEASE Model=78xx Version=11-0-1-11
    [CISCO-ID]
    version = 11-0-1-11
    hwcompat = 0x00000003
    swcompat = 0x00000004
    transition = 0x00000000
    loadversion = 0x00000001
    [PLATFORM_1]
    sboot=sboot78xx.11-0-1-11.sbn size=370348
    kern=kern78xx.11-0-1-11.sbn size=3089488
    rootfs=rootfs78xx.11-0-1-11.sbn size=40239440
    ebr_diskver = 1
    ebr_sboot   = (-1,2,0,2,0x280000,-1)(-1,2,0,2,0x5980000,-1)
    [PLATFORM_2]
    sboot=sboot2.78xx.11-0-1-11.sbn size=596540
    ...

A file line is `key=file size=N`; other `key = value` lines (the ebr_* flash layout) are kept as settings.
What a phone does with a payload it cannot read is UNCONFIRMED; the model refuses one without
[CISCO-ID] `version`, without any [PLATFORM_n], with a section twice, a line it cannot read, or a number
that is not one.  The meaning of hwcompat/swcompat/transition is UNCONFIRMED (§1.2, §8 item 1): they are
read here, and truth.py decides whether a phone looks at them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_PAYLOAD = 64 * 1024          # the real one is 972 bytes
MAX_PLATFORMS = 16
MAX_FILES = 32
_SECTION = re.compile(r"^\[([A-Za-z0-9_-]{1,32})\]$")
_PLATFORM = re.compile(r"^PLATFORM_(\d{1,2})$")
_FILE = re.compile(r"^([!-~]{1,128})\s+size=(\d{1,10})$")


class ManifestError(ValueError):
    """A payload the phone model cannot read; the message says where."""


@dataclass(frozen=True)
class PlatformFile:
    key: str          # sboot, kern, rootfs
    name: str
    size: int


@dataclass(frozen=True)
class Manifest5:
    version: str
    hwcompat: int | None
    swcompat: int | None
    transition: int | None
    platforms: dict[int, tuple[PlatformFile, ...]]
    settings: dict[str, dict[str, str]] = field(default_factory=dict)   # every key = value, per section


def _number(text: str, key: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ManifestError(f"[CISCO-ID] {key} = {text[:40]!r} is not a number") from None


def parse(payload: bytes) -> Manifest5:
    """The manifest a payload holds; ManifestError for anything the phone model cannot read."""
    if len(payload) > MAX_PAYLOAD:
        raise ManifestError(f"payload of {len(payload)} bytes, more than a manifest holds ({MAX_PAYLOAD})")
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"byte {exc.start} is not ASCII") from None
    settings: dict[str, dict[str, str]] = {}
    files: dict[int, list[PlatformFile]] = {}
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := _SECTION.match(line):
            section = m.group(1).upper()
            if section in settings:
                raise ManifestError(f"line {number}: section [{section}] appears twice")
            settings[section] = {}
            if p := _PLATFORM.match(section):
                if len(files) >= MAX_PLATFORMS:
                    raise ManifestError(f"line {number}: more than {MAX_PLATFORMS} platforms")
                files[int(p.group(1))] = []
            continue
        if section is None:
            raise ManifestError(f"line {number}: {line[:40]!r} before any [section]")
        if "=" not in line:
            raise ManifestError(f"line {number}: {line[:40]!r} is not key = value")
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise ManifestError(f"line {number}: no key before '='")
        p = _PLATFORM.match(section)
        if p and (f := _FILE.match(value)):
            listed = files[int(p.group(1))]
            if len(listed) >= MAX_FILES:
                raise ManifestError(f"line {number}: more than {MAX_FILES} files in [{section}]")
            listed.append(PlatformFile(key, f.group(1), int(f.group(2))))
            continue
        if key in settings[section]:
            raise ManifestError(f"line {number}: {key} given twice in [{section}]")
        settings[section][key] = value
    ident = settings.get("CISCO-ID")
    if ident is None:
        raise ManifestError("no [CISCO-ID] section")
    if not ident.get("version"):
        raise ManifestError("[CISCO-ID] has no version")
    platforms = {n: tuple(v) for n, v in files.items() if v}
    if not platforms:
        raise ManifestError("no [PLATFORM_n] section lists a file")
    gates = {k: _number(ident[k], k) if k in ident else None for k in ("hwcompat", "swcompat", "transition")}
    return Manifest5(ident["version"], gates["hwcompat"], gates["swcompat"], gates["transition"], platforms, settings)
