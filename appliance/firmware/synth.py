"""Synthetic but structurally real firmware for tests, the demo and benchmarks (Cisco firmware cannot ship).

A load is a `.loads` manifest with a TLV signature header (the layout of the
real files, reference §4.2) listing component files that each start with the
same kind of header followed by deterministic pseudo-random bytes.  Packages:
`cmterm-*.zip` (files at the top level) and `.cop.sgn` (signature header, then a
gzip tar holding the files under usr/local/cm/tftp/ plus an install script).
"""
from __future__ import annotations

import hashlib
import io
import random
import re
import struct
import tarfile
import zipfile
from pathlib import Path

from .models import by_name, models_for_load
from .versions import family

DEFAULT_SIZE = 256 * 1024
SIGNATURE_LEN = 256


def _tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def signature_header(filename: str, seed: bytes = b"") -> bytes:
    """Tags 1 (version 1.1), 2 (header length), 3/4 signer, 5 serial, 6 CA, 8/11 signature info, 12 signature, 14 file name, 13 padding."""
    sig = hashlib.shake_256(b"sig" + seed + filename.encode()).digest(SIGNATURE_LEN)
    body = (_tlv(3, _tlv(4, b"CN=synthSigner;OU=recovery-station;O=synthetic"))
            + _tlv(5, b"1234567890abcdef") + _tlv(6, b"CN=synthCA;OU=recovery-station;O=synthetic")
            + _tlv(7, _tlv(8, b"\x01")) + _tlv(11, b"\x02") + _tlv(12, sig) + _tlv(14, filename.encode() + b"\0"))
    fixed = 5 + 5  # tag 1 and tag 2 fields
    total = fixed + len(body) + 3
    total += -total % 4
    pad = total - fixed - len(body) - 3
    header = _tlv(1, b"\x01\x01") + _tlv(2, struct.pack(">H", total)) + body + _tlv(13, b"\0" * pad)
    assert len(header) == total
    return header


def _version_part(load_id: str) -> str:
    fam = family(load_id) or "load"
    rest = load_id[len(fam):].lstrip(".-_") if load_id.lower().startswith(fam.lower()) else load_id
    return re.sub(r"S$", "", rest) or "0"


def component_names(load_id: str, components: int = 5) -> list[str]:
    """Names shaped like the real ones: jar45sccp.9-4-2ES26.sbn for SCCP45, P0030801SR02.sbn/.sb2 for 7940/60."""
    fam = family(load_id) or "load"
    ver = _version_part(load_id)
    m = re.match(r"^(SCCP|SIP)(\d\d)$", fam, re.I)
    if m:
        proto, nn = m.group(1).lower(), m.group(2)
        base = [f"jar{nn}{proto}", f"cnu{nn}", f"apps{nn}", f"dsp{nn}", f"cvm{nn}{proto}"]
        names = [f"{b}.{ver}ES26.sbn" for b in base]
    elif fam.upper() in ("P003", "P0S3", "P0M3"):
        names = [f"{load_id}.sbn", f"{load_id}.sb2"]
    else:
        names = [f"{p}{fam}.{ver}.sbn" for p in ("kern", "rootfs", "sboot", "dsp", "apps")]
    while len(names) < components:
        names.append(f"part{len(names)}{fam}.{ver}.sbn")
    return names[:max(1, components)]


def term_files(load_id: str) -> list[str]:
    return sorted({m.term for name in models_for_load(load_id) if (m := by_name(name)) and m.term})


def manifest_bytes(load_id: str, names: list[str], signed: bool = True, filename: str | None = None) -> bytes:
    text = ("# This file contains a list of archive image files that will be requested by the\r\n"
            f"# RELEASE load version {_version_part(load_id)} (synthetic)\r\n#\r\n#HARDWARE_COMP_1 5\r\n\r\n"
            + "".join(f"{n}\r\n" for n in names))
    head = signature_header(filename or f"{load_id}.loads") if signed else b""
    return head + text.encode("ascii")


def load_files(load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5, signed: bool = True,
               term: bool = False) -> dict[str, bytes]:
    """{file name: content} for one load; component contents together make up about size_bytes."""
    names = component_names(load_id, components)
    files = {f"{load_id}.loads": manifest_bytes(load_id, names, signed)}
    if term:
        for t in term_files(load_id):
            files[t] = manifest_bytes(load_id, names, signed, filename=t)
    each = max(1, size_bytes // len(names))
    for n in names:
        head = signature_header(n) if signed else b""
        body = random.Random(n).randbytes(max(1, each - len(head)))
        files[n] = head + body
    return files


def write_load(dest_dir: Path | str, load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5,
               signed: bool = True, term: bool = False) -> list[Path]:
    """Loose files of one load in dest_dir; returns their paths (the .loads first)."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in load_files(load_id, size_bytes, components, signed, term).items():
        (dest / name).write_bytes(data)
        out.append(dest / name)
    return out


def package_name(load_id: str, kind: str) -> str:
    fam = family(load_id) or "load"
    ver = _version_part(load_id)
    proto = "sip" if fam.lower().startswith("sip") or fam.upper() == "P0S3" else "sccp"
    models = "_".join(sorted({re.sub(r"\D", "", m)[:4] for m in models_for_load(load_id)})) or fam
    return f"cmterm-{models}-{proto}.{ver}" + (".zip" if kind == "zip" else ".cop.sgn")


def write_zip(dest_dir: Path | str, load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5,
              signed: bool = True, term: bool = True, name: str | None = None) -> list[Path]:
    """A cmterm-*.zip with the load's files at the top level, like Cisco's downloads."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (name or package_name(load_id, "zip"))
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for fname, data in load_files(load_id, size_bytes, components, signed, term).items():
            zf.writestr(fname, data)
    tmp.replace(path)
    return [path]


def cop_bytes(files: dict[str, bytes], extra_members: list[tarfile.TarInfo] | None = None,
              filename: str = "synthetic.cop.sgn") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
        script = b"#!/bin/sh\n# install script (ignored by the station)\nexit 0\n"
        info = tarfile.TarInfo("install.sh")
        info.size, info.mode = len(script), 0o755
        tf.addfile(info, io.BytesIO(script))
        for fname, data in files.items():
            info = tarfile.TarInfo(f"usr/local/cm/tftp/{fname}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra_members or []:
            tf.addfile(info, io.BytesIO(b"\0" * info.size) if info.isreg() else None)
    return signature_header(filename) + buf.getvalue()


def write_cop(dest_dir: Path | str, load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5,
              signed: bool = True, term: bool = True, name: str | None = None) -> list[Path]:
    """A .cop.sgn: signature header followed by a gzip tar (files under usr/local/cm/tftp/)."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (name or package_name(load_id, "cop"))
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(cop_bytes(load_files(load_id, size_bytes, components, signed, term), filename=path.name))
    tmp.replace(path)
    return [path]
