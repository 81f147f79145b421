"""`.loads` manifests, sans-I/O: bytes in, a Manifest or ManifestError out.

A signed manifest is Cisco's signature header (signed.py) followed, at the
header length, by a CRLF text list of component files; plain manifests have no
header.  A 5th-generation manifest (7800/8800) is recognised by its content,
the container's magic (container5.py), and its payload is an INI file with
per-platform file lists (loads5.py); its payload length and SHA-256 are checked
here, since the whole file is in hand.  Nothing in the file is trusted: sizes are only recorded as claims, and
component names that could leave the firmware directory are refused, since the
catalog resolves them as file names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import container5, loads5
from .signed import HeaderError, SignedHeader, is_signed, parse_signed_header

MAX_BYTES = 1 << 20          # real manifests are a few KB; refuse to parse megabytes of "list"
MAX_COMPONENTS = 512
MAX_NAME = 255
MAX_KEYS = 64                # "#?" gates and KEY=VALUE attributes; real files have one or two
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+\-~]*$")
_MD5 = re.compile(r"^[0-9A-Fa-f]{32}$")
_ALLOWED_CTRL = {9, 10, 13}


class ManifestError(ValueError):
    """The manifest is malformed or truncated; str() says where, for the operator."""


@dataclass(frozen=True)
class Component:
    name: str
    size: int | None = None     # claimed by the wireless form; never used to read anything
    md5: str | None = None
    optional: bool = False      # "#+" lines of the wireless form


@dataclass(frozen=True)
class Manifest:
    components: tuple[Component, ...]
    signed: bool = False
    header_len: int = 0
    version: str | None = None           # header tag 1, e.g. "1.1"
    filename: str | None = None          # header tag 14, the name the signer gave the file (its identity)
    hardware_comp: int | None = None     # "#HARDWARE_COMP_1 n"
    gates: dict = field(default_factory=dict)        # "#? HW_REV 0-2.*", "#? SW_CAP ..."
    attributes: dict = field(default_factory=dict)   # "LA_VERSION=PAS30831"
    format: str = "plain"                # "plain", "tlv" (79xx header) or "container5" (7800/8800)
    platforms: tuple[loads5.Platform, ...] = ()      # 5th generation: each platform's files
    cisco_id: dict = field(default_factory=dict)     # 5th generation: [CISCO-ID] keys (version, hwcompat, ...)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]

    @property
    def evidence(self) -> dict[str, str]:
        """The manifest's hardware/software gates as written: `#HARDWARE_COMP_1 n` (79xx), `#? HW_REV` and
        `#? SW_CAP` (792x), hwcompat/swcompat/transition (7800).  Their meaning is UNCONFIRMED (reference
        phone-families.md §1.1, §8 item 1): shown to the operator as evidence, never enforced."""
        out: dict[str, str] = {}
        if self.hardware_comp is not None:
            out["HARDWARE_COMP_1"] = str(self.hardware_comp)
        out.update(self.gates)
        out.update({k: v for k, v in self.cisco_id.items() if k in loads5.GATE_KEYS})
        return out


def _check_text(payload: bytes, base: int) -> str:
    """The payload as text; `base` is its offset in the file, so errors name the file's byte."""
    bad = next((i for i, b in enumerate(payload) if b < 32 and b not in _ALLOWED_CTRL or b == 127), None)
    if bad is not None:
        raise ManifestError(f"binary byte 0x{payload[bad]:02x} at byte {base + bad} (payload offset {bad})")
    try:
        return payload.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"non-ASCII byte at byte {base + exc.start} (payload offset {exc.start})") from None


def _component(line: str, lineno: int, optional: bool) -> Component:
    parts = line.split()
    name = parts[0]
    if len(name) > MAX_NAME or not _NAME.match(name) or name in (".", ".."):
        raise ManifestError(f"line {lineno}: unsafe or invalid component name {name[:60]!r}")
    if len(parts) == 1:
        return Component(name, optional=optional)
    if len(parts) == 3 and parts[1].isdigit() and len(parts[1]) <= 12 and _MD5.match(parts[2]):
        return Component(name, int(parts[1]), parts[2].upper(), optional)
    raise ManifestError(f"line {lineno}: expected NAME or NAME<TAB>SIZE<TAB>MD5, got {line[:80]!r}")


def parse_manifest(data: bytes) -> Manifest:
    """Parse a whole .loads file (signed or plain).

    Args:
        data: the file's bytes (at most MAX_BYTES).
    Returns:
        the Manifest: components in file order, duplicates (by case) dropped.
    Raises:
        ManifestError: malformed header, binary or non-ASCII text, unsafe names, no components; says where.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ManifestError("manifest must be bytes")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise ManifestError(f"{len(data)} bytes is far too large for a manifest (limit {MAX_BYTES})")
    if not data.strip(b"\0 \t\r\n"):
        raise ManifestError("empty manifest")
    if container5.is_container5(data):
        return _parse_container5(data)
    header: SignedHeader | None = None
    if is_signed(data):
        try:
            header = parse_signed_header(data)
        except HeaderError as exc:
            raise ManifestError(str(exc)) from None
    header_len = header.length if header else 0
    text = _check_text(data[header_len:].rstrip(b"\0"), header_len)
    comps: list[Component] = []
    seen: set[str] = set()
    gates: dict[str, str] = {}
    attrs: dict[str, str] = {}
    hwcomp = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        optional = False
        if not line:
            continue
        if line.startswith("#+"):
            line, optional = line[2:].strip(), True
            if not line:
                continue
        elif line.startswith("#?"):
            key, _, value = line[2:].strip().partition(" ")
            if key:
                gates[key[:64]] = value.strip()[:256]
                if len(gates) > MAX_KEYS:
                    raise ManifestError(f"line {lineno}: more than {MAX_KEYS} '#?' lines")
            continue
        elif line.startswith("#"):
            m = re.match(r"#\s*HARDWARE_COMP_1\s+(\d{1,6})\s*$", line)
            if m:
                hwcomp = int(m.group(1))
            continue
        elif "=" in line and " " not in line.split("=", 1)[0] and "\t" not in line:
            key, _, value = line.partition("=")
            attrs[key[:64]] = value[:256]
            if len(attrs) > MAX_KEYS:
                raise ManifestError(f"line {lineno}: more than {MAX_KEYS} KEY=VALUE lines")
            continue
        comp = _component(line, lineno, optional)
        if comp.name.lower() in seen:
            continue
        seen.add(comp.name.lower())
        comps.append(comp)
        if len(comps) > MAX_COMPONENTS:
            raise ManifestError(f"more than {MAX_COMPONENTS} components")
    if not comps:
        raise ManifestError("lists no component files")
    return Manifest(tuple(comps), header is not None, header_len, header.version if header else None,
                    header.filename if header else None, hwcomp, gates, attrs, "tlv" if header else "plain")


def _parse_container5(data: bytes) -> Manifest:
    """A 5th-generation manifest: the container checked whole (length, SHA-256), then its INI payload."""
    try:
        header = container5.verify(data)
    except container5.Container5Error as exc:
        raise ManifestError(str(exc)) from None
    text = _check_text(data[header.length:].rstrip(b"\0"), header.length)
    try:
        ini = loads5.parse_ini(text)
    except loads5.IniError as exc:
        raise ManifestError(str(exc)) from None
    comps: list[Component] = []
    seen: set[str] = set()
    for platform in ini.platforms:
        for f in platform.files:
            if f.name.lower() not in seen:
                seen.add(f.name.lower())
                comps.append(Component(f.name, f.size))
    if len(comps) > MAX_COMPONENTS:
        raise ManifestError(f"more than {MAX_COMPONENTS} component files")
    return Manifest(tuple(comps), True, header.length, None, header.filename, None, {}, dict(ini.attributes),
                    "container5", ini.platforms, dict(ini.cisco_id))


def fuzz_manifest(data: bytes) -> None:
    """Fuzz entry point: any bytes either parse into a bounded, safe Manifest or raise ManifestError; anything else is a bug."""
    try:
        m = parse_manifest(data)
    except ManifestError:
        return
    assert 0 < len(m.components) <= MAX_COMPONENTS
    assert m.header_len <= len(data)
    assert m.format != "container5" or (m.platforms and all(p.files for p in m.platforms))
    assert len(m.gates) <= MAX_KEYS and len(m.attributes) <= MAX_KEYS
    for c in m.components:
        assert "/" not in c.name and "\\" not in c.name and c.name not in (".", "..") and len(c.name) <= MAX_NAME
