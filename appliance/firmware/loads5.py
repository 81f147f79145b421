"""The 5th-generation `.loads` payload, sans-I/O: INI text in, an Ini5 or IniError out.

Real example (`sip78xx.11-0-1-11.loads`, reference phone-families.md §1.2, LF line endings):

    # RELEASE Model=78xx Version=11-0-1-11
    # LOADS=sip78xx.11-0-1-11.loads
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
    sboot=sboot2.78xx.11-0-1-11.sbn size=596540 ...

A phone fetches only its own platform's files, so completeness is per platform.  Which hardware is which
platform is UNCONFIRMED; so are the file keys of 88xx platforms (RE notes name fbi/sb2/vc4 files): a line is
a file when its value is `NAME size=N`, whatever its key, which reads both.  `hwcompat`, `swcompat` and
`transition` look like hardware/software gates; their meaning is UNCONFIRMED (§1.1, §8 item 1), so they are
kept as evidence to show, never as rules.  The size is the whole file's (header included), as the real
components' sizes show.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_SECTIONS = 32
MAX_KEYS = 64               # per section; the real ones have 5 to 7
MAX_FILES = 32              # per platform; the real ones have 3
MAX_NAME = 255
MAX_SIZE = 1 << 40
CISCO_ID = "CISCO-ID"
GATE_KEYS = ("hwcompat", "swcompat", "transition")
_SECTION = re.compile(r"^\[([A-Za-z0-9_.\-]{1,64})\]$")
_PLATFORM = re.compile(r"^PLATFORM_(\d{1,3})$", re.I)
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+\-~]*$")
_COMMENT_ATTR = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,31})=(\S{1,128})")


class IniError(ValueError):
    """The INI payload is malformed; str() names the line."""


@dataclass(frozen=True)
class PlatformFile:
    role: str          # the key: "sboot", "kern", "rootfs"
    name: str
    size: int          # the whole file's size, as the manifest claims it


@dataclass(frozen=True)
class Platform:
    name: str                              # "PLATFORM_1"
    files: tuple[PlatformFile, ...]
    settings: dict = field(default_factory=dict)   # the other keys (ebr_*), kept as text


@dataclass(frozen=True)
class Ini5:
    version: str                           # [CISCO-ID] version, e.g. "11-0-1-11"
    cisco_id: dict                         # every [CISCO-ID] key as text
    platforms: tuple[Platform, ...]
    attributes: dict = field(default_factory=dict)   # from the comment lines: Model, Version, LOADS

    def number(self, key: str) -> int | None:
        """A [CISCO-ID] number ("0x00000003" -> 3); None when absent or not a number."""
        text = self.cisco_id.get(key)
        try:
            return int(text, 0) if text is not None else None
        except ValueError:
            return None

    @property
    def gates(self) -> dict[str, str]:
        """hwcompat/swcompat/transition as written: evidence of hardware/software gating, meaning UNCONFIRMED."""
        return {k: self.cisco_id[k] for k in GATE_KEYS if k in self.cisco_id}


def _file_entry(key: str, value: str, lineno: int) -> PlatformFile | None:
    """`sboot78xx.11-0-1-11.sbn size=370348` -> a PlatformFile; None when the value is not of that form."""
    tokens = value.split()
    sizes = [t for t in tokens[1:] if t.lower().startswith("size=")]
    if not tokens or not sizes:
        return None
    name, size = tokens[0], sizes[0][5:]
    if len(name) > MAX_NAME or not _NAME.match(name) or name in (".", ".."):
        raise IniError(f"line {lineno}: unsafe or invalid file name {name[:60]!r}")
    if not size.isdigit() or len(size) > 13 or int(size) > MAX_SIZE:
        raise IniError(f"line {lineno}: size {size[:20]!r} of {name} is not a byte count")
    return PlatformFile(key, name, int(size))


def parse_ini(text: str) -> Ini5:
    """Parse the INI payload of a 5th-generation `.loads`.

    Args:
        text: the payload as text (the caller has checked it is ASCII without binary bytes).
    Returns:
        the Ini5: [CISCO-ID] keys, platforms in file order with their files.
    Raises:
        IniError: a section twice, no [CISCO-ID] or no version in it, no [PLATFORM_n], a platform without files,
        a key twice in a section, a line outside any section, a bound broken; the message names the line.
    """
    sections: dict[str, tuple[int, dict[str, str], list[PlatformFile]]] = {}
    order: list[str] = []
    attrs: dict[str, str] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("#", ";")):
            if current is None:
                for k, v in _COMMENT_ATTR.findall(line):
                    if len(attrs) < MAX_KEYS:
                        attrs.setdefault(k, v)
            continue
        m = _SECTION.match(line)
        if m:
            name = m.group(1).upper()
            if name in sections:
                raise IniError(f"line {lineno}: section [{name}] appears twice (first at line {sections[name][0]})")
            if len(sections) >= MAX_SECTIONS:
                raise IniError(f"line {lineno}: more than {MAX_SECTIONS} sections")
            sections[name] = (lineno, {}, [])
            order.append(name)
            current = name
            continue
        if current is None:
            raise IniError(f"line {lineno}: {line[:60]!r} is outside any [section]")
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not _KEY.match(key):
            raise IniError(f"line {lineno}: expected KEY = VALUE in [{current}], got {line[:60]!r}")
        _, keys, files = sections[current]
        if key.lower() in keys:
            raise IniError(f"line {lineno}: {key} appears twice in [{current}]")
        if len(keys) >= MAX_KEYS:
            raise IniError(f"line {lineno}: more than {MAX_KEYS} keys in [{current}]")
        keys[key.lower()] = value[:256]
        if _PLATFORM.match(current):
            entry = _file_entry(key, value, lineno)
            if entry is not None:
                if any(f.name.lower() == entry.name.lower() for f in files):
                    raise IniError(f"line {lineno}: {entry.name} is listed twice in [{current}]")
                if len(files) >= MAX_FILES:
                    raise IniError(f"line {lineno}: more than {MAX_FILES} files in [{current}]")
                files.append(entry)
    if CISCO_ID not in sections:
        raise IniError(f"no [{CISCO_ID}] section")
    cisco_id = sections[CISCO_ID][1]
    version = cisco_id.get("version", "")
    if not version:
        raise IniError(f"[{CISCO_ID}] (line {sections[CISCO_ID][0]}) has no version")
    platforms = []
    for name in order:
        lineno, keys, files = sections[name]
        if not _PLATFORM.match(name):
            continue
        if not files:
            raise IniError(f"[{name}] (line {lineno}) lists no files (expected lines like 'kern=NAME size=N')")
        file_keys = {f.role.lower() for f in files}
        platforms.append(Platform(name, tuple(files), {k: v for k, v in keys.items() if k not in file_keys}))
    if not platforms:
        raise IniError("no [PLATFORM_n] section: the manifest names no files for any phone")
    return Ini5(version=version, cisco_id=dict(cisco_id), platforms=tuple(platforms), attributes=attrs)
