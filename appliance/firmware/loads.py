"""`.loads` manifests, sans-I/O: bytes in, a Manifest or ManifestError out.

A signed manifest is a TLV signature header (tag 1 byte, length 2 bytes
big-endian; tag 2 holds the header length) followed by a plain-text list of
component files; plain manifests have no header.  Nothing in the file is
trusted: lengths are bounds-checked, sizes are only recorded as claims, and
component names that could leave the firmware directory are refused, since the
catalog resolves them as file names.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

MAX_BYTES = 1 << 20          # real manifests are a few KB; refuse to parse megabytes of "list"
MAX_COMPONENTS = 512
MAX_NAME = 255
MAX_KEYS = 64                # "#?" gates and KEY=VALUE attributes; real files have one or two
TAG_VERSION, TAG_HEADER_LEN, TAG_FILENAME, TAG_PADDING = 1, 2, 14, 13
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
    filename: str | None = None          # header tag 14, the name the signer gave the file
    hardware_comp: int | None = None     # "#HARDWARE_COMP_1 n"
    gates: dict = field(default_factory=dict)        # "#? HW_REV 0-2.*", "#? SW_CAP ..."
    attributes: dict = field(default_factory=dict)   # "LA_VERSION=PAS30831"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]


def parse_header(data: bytes) -> tuple[int, dict[int, bytes]]:
    """Walk the TLV header; returns (header length, {tag: first value}).  Raises ManifestError on any inconsistency."""
    tags: dict[int, bytes] = {}
    header_len: int | None = None
    pos = 0
    while header_len is None or pos < header_len:
        if pos + 3 > len(data):
            raise ManifestError(f"truncated signature header at byte {pos} (file is {len(data)} bytes)")
        tag = data[pos]
        (length,) = struct.unpack_from(">H", data, pos + 1)
        end = pos + 3 + length
        if end > len(data):
            raise ManifestError(f"signature header field {tag} at byte {pos} claims {length} bytes past the end of the file")
        if header_len is not None and end > header_len:
            raise ManifestError(f"signature header field {tag} at byte {pos} runs past the header length {header_len}")
        value = data[pos + 3:end]
        tags.setdefault(tag, value)
        if tag == TAG_HEADER_LEN:
            if length != 2:
                raise ManifestError(f"header-length field has {length} bytes, expected 2")
            (header_len,) = struct.unpack(">H", value)
            if header_len < end:
                raise ManifestError(f"header length {header_len} ends inside the header (at byte {end})")
            if header_len > len(data):
                raise ManifestError(f"truncated: header length {header_len}, file has {len(data)} bytes")
        elif header_len is None and pos == 0 and tag != TAG_VERSION:
            raise ManifestError(f"signature header starts with field {tag}, expected 1 (version)")
        elif header_len is None and pos > 0:
            raise ManifestError("signature header has no header-length field after the version")
        pos = end
    return header_len, tags


def _check_text(payload: bytes) -> str:
    bad = next((i for i, b in enumerate(payload) if b < 32 and b not in _ALLOWED_CTRL or b == 127), None)
    if bad is not None:
        raise ManifestError(f"binary byte 0x{payload[bad]:02x} at payload offset {bad}")
    try:
        return payload.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"non-ASCII byte at payload offset {exc.start}") from None


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
    """Parse a whole .loads file (signed or plain)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ManifestError("manifest must be bytes")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise ManifestError(f"{len(data)} bytes is far too large for a manifest (limit {MAX_BYTES})")
    if not data.strip(b"\0 \t\r\n"):
        raise ManifestError("empty manifest")
    signed = data[0] == TAG_VERSION
    header_len, tags = parse_header(data) if signed else (0, {})
    text = _check_text(data[header_len:].rstrip(b"\0"))
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
    version = None
    if TAG_VERSION in tags and len(tags[TAG_VERSION]) == 2:
        version = f"{tags[TAG_VERSION][0]}.{tags[TAG_VERSION][1]}"
    filename = None
    if TAG_FILENAME in tags:
        fn = tags[TAG_FILENAME].split(b"\0", 1)[0].decode("ascii", "replace")[:MAX_NAME]
        filename = fn or None
    return Manifest(tuple(comps), signed, header_len, version, filename, hwcomp, gates, attrs)


def fuzz_manifest(data: bytes) -> None:
    """Fuzz entry point: any bytes either parse into a bounded, safe Manifest or raise ManifestError; anything else is a bug."""
    try:
        m = parse_manifest(data)
    except ManifestError:
        return
    assert 0 < len(m.components) <= MAX_COMPONENTS
    assert m.header_len <= len(data)
    assert len(m.gates) <= MAX_KEYS and len(m.attributes) <= MAX_KEYS
    for c in m.components:
        assert "/" not in c.name and "\\" not in c.name and c.name not in (".", "..") and len(c.name) <= MAX_NAME
