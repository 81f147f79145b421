"""Synthetic firmware, byte-faithful to Cisco's files, for tests, the demo and benchmarks (Cisco firmware cannot ship).

Layout from real files (reference cisco-phones.md §0.0 item 1, §4.2): every
manifest and component starts with the signature header signed.py reads (tag 1
first, tag 2 the header length, signer block 3 nesting 4/5/6, signature info 7
nesting 8 and 9(10, 11), a 256-byte tag 12, tag 14 the file's own name, then
single 0x0d padding bytes to a multiple of 4), and the manifest's CRLF text
starts exactly at the header length.  With a 25-character name the header is
412 bytes, as in the real SCCP45.9-4-2SR4-3S.loads.  Packages: `cmterm-*.zip`
(files at the top level) and `.cop.sgn` / `.cop.sha512` (the same header, then
a gzip tar with the firmware files at its top level and an install script).
The signature is deterministic filler: nothing here can be verified, only parsed.

7800/8800 loads (reference phone-families.md §1.2, §2.1) use the 5th-generation
container (container5.py): every file, the `.loads` included, carries its own
name, payload length and payload SHA-256; the manifest's payload is the INI text
of the real `sip78xx.11-0-1-11.loads` with this load's version, names and sizes
(the whole file's size, as in the real one), two platforms of sboot/kern/rootfs
each (`kern78xx...`, `kern2.78xx...`).  kern and sboot payloads start like a
U-Boot image (`27 05 19 56`), sboot2's with `6c 02 00 00`, as the real ones do.
The 8800 families get the same shape: no real 88xx manifest is public, so that is
inference (UNCONFIRMED), the same one the station's parser reads both ways.
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

from . import container5
from .models import by_name, models_for_load
from .versions import MPP, TRANSITION, family, firmware_type, protocol

DEFAULT_SIZE = 256 * 1024
SIGNATURE_LEN = 256
# The real header's signer and CA names are 38 and 34 characters; these keep those lengths (and so its 412 bytes).
SIGNER = "CN=synthSigner;OU=stationOU;O=synthOrg"
CA = "CN=synthCA;OU=stationOU;O=synthOrg"
SERIAL = bytes.fromhex("1234567890abcdef")
DIGEST_SHA1, DIGEST_SHA512 = 1, 4
PADDING = b"\x0d"
MANIFEST_INTRO = ("#\r\n# This file contains a list of archive image files that will be requested by the\r\n"
                  "# RELEASE load version {version}\r\n#\r\n#HARDWARE_COMP_1 5\r\n\r\n")


def _tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def signature_header(filename: str, seed: bytes = b"", digest: int = DIGEST_SHA1,
                     timestamp: int | None = None) -> bytes:
    """The header of a file signed as `filename`: tags 1, 2, 3(4, 5, 6), 7(8, 9(10, 11)), 12, 14, [15], 13 padding."""
    sig = hashlib.shake_256(b"sig" + seed + filename.encode()).digest(SIGNATURE_LEN)
    signer = _tlv(3, _tlv(4, SIGNER.encode() + b"\0") + _tlv(5, SERIAL) + _tlv(6, CA.encode() + b"\0"))
    info = _tlv(7, _tlv(8, bytes([digest])) + _tlv(9, _tlv(10, b"\0") + _tlv(11, b"\x02")))
    body = signer + info + _tlv(12, sig) + _tlv(14, filename.encode() + b"\0")
    if timestamp is not None:
        body += _tlv(15, struct.pack(">I", timestamp))
    unpadded = 10 + len(body)
    total = unpadded + (-unpadded % 4)
    if total > 0xFFFF:
        raise ValueError(f"file name {filename[:40]!r}... makes the header longer than 65535 bytes")
    return _tlv(1, b"\x01\x01") + _tlv(2, struct.pack(">H", total)) + body + PADDING * (total - unpadded)


# Load families whose files are 5th-generation containers: 7800 measured; 88xx, 8845/65, 7832, 8832 by inference.
GEN5_FAMILIES = ("sip78xx", "sip88xx", "sip8845_65", "sip7832", "sip8832")
GEN5_PLATFORMS = (
    # (platform, name prefix per role, ebr_* lines as in the real sip78xx.11-0-1-11.loads)
    ("PLATFORM_1", "", ("ebr_diskver = 1", "ebr_sboot   = (-1,2,0,2,0x280000,-1)(-1,2,0,2,0x5980000,-1)",
                        "ebr_kern    = (-1,2,0,8,0x480000,-1)(-1,2,0,8,0x5b80000,-1)",
                        "ebr_rootfs  = (-1,2,1,11,0xe80000,-1)(-1,2,1,11,0x6580000,-1)")),
    ("PLATFORM_2", "2.", ("ebr_diskver = 1", "ebr_sboot   = (-1,2,0,2,0x280000,-1)(-1,2,0,2,0x5e80000,-1)",
                          "ebr_kern    = (-1,2,0,8,0x480000,-1)(-1,2,0,8,0x6080000,-1)",
                          "ebr_rootfs  = (-1,2,1,11,0xe80000,-1)(-1,2,1,11,0x6a80000,-1)")),
)
GEN5_ROLES = ("sboot", "kern", "rootfs")
GEN5_TAIL = "\n\n\n"     # the real payload ends in four LFs (its 972 bytes, measured)
UIMAGE = bytes.fromhex("27051956")
SBOOT2 = bytes.fromhex("6c020000")


def is_gen5(load_id: str) -> bool:
    """True for a load of a 5th-generation family (sip78xx.*, sip88xx.*, ...)."""
    return (family(load_id) or "").lower() in GEN5_FAMILIES


def _model_part(load_id: str) -> str:
    """"sip78xx.11-0-1-11" -> "78xx", as in the component names and Cisco's package names."""
    return (family(load_id) or "load")[3:]


def gen5_platforms(load_id: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(platform, [(role, file name)])] shaped like the real 7800 load: sboot78xx..., kern2.78xx..."""
    part, ver = _model_part(load_id), _version_part(load_id)
    return [(plat, [(role, f"{role}{prefix}{part}.{ver}.sbn") for role in GEN5_ROLES])
            for plat, prefix, _ in GEN5_PLATFORMS]


def gen5_signature(name: str) -> bytes:
    return hashlib.shake_256(b"sig5" + name.encode()).digest(container5.SIGNATURE_LEN)


def gen5_file(name: str, payload: bytes) -> bytes:
    """A 5th-generation file signed as `name` around `payload` (header as measured on the real files)."""
    return container5.build(name, payload, gen5_signature(name))


def gen5_manifest_text(load_id: str, sizes: dict[str, int], hwcompat: int = 0x3, transition: int = 0) -> str:
    """The INI payload of the real sip78xx.11-0-1-11.loads, for this load's version, files and sizes."""
    ver = _version_part(load_id)
    lines = ["#", "# (C) 2013 Cisco Systems 5th-Generation IP Phones",
             f"# RELEASE Model={_model_part(load_id)} Version={ver}", "# Thu Nov 19 09:06:01 CST 2015",
             f"# LOADS={load_id}.loads", "#", "", "[CISCO-ID]", f"version = {ver}", f"hwcompat = 0x{hwcompat:08x}",
             "swcompat = 0x00000004", f"transition = 0x{transition:08x}", "loadversion = 0x00000001"]
    ebr = {plat: lines5 for plat, _, lines5 in GEN5_PLATFORMS}
    for plat, files in gen5_platforms(load_id):
        lines += ["", f"[{plat}]"] + [f"{role}={n} size={sizes[n]}" for role, n in files] + list(ebr[plat])
    return "\n".join(lines) + "\n" + GEN5_TAIL


def gen5_load_files(load_id: str, size_bytes: int = DEFAULT_SIZE) -> dict[str, bytes]:
    """{file name: content} of one 5th-generation load: the .loads first, then both platforms' files."""
    names = [n for _, files in gen5_platforms(load_id) for _, n in files]
    each = max(1, size_bytes // len(names))
    comps: dict[str, bytes] = {}
    for n in names:
        lead = SBOOT2 if n.lower().startswith("sboot2.") else UIMAGE if n.lower().startswith(("kern", "sboot")) else b""
        body = lead + random.Random(n).randbytes(max(1, each - container5.MIN_HEADER - len(lead)))
        comps[n] = gen5_file(n, body)
    # A transition load's [CISCO-ID] transition field is presumed non-zero (phone-families.md §1.2, UNCONFIRMED).
    text = gen5_manifest_text(load_id, {n: len(d) for n, d in comps.items()},
                              transition=1 if firmware_type(load_id) == TRANSITION else 0)
    return {f"{load_id}.loads": gen5_file(f"{load_id}.loads", text.encode("ascii")), **comps}


def _version_part(load_id: str) -> str:
    fam = family(load_id) or "load"
    rest = load_id[len(fam):].lstrip(".-_") if load_id.lower().startswith(fam.lower()) else load_id
    return re.sub(r"S$", "", rest) or "0"


# 6921/6941/6961 and 8941/8945 loads as in the real SCCP69xx.9-4-1-3SR3.loads and SCCP894x.9-4-2SR1-2.loads
# (dkgroot/provision_sccp tftpboot/firmware/6921, /894x, HEAD 152d8d8; reference phone-families.md §4.1, §4.2):
# the payload is the bare list of names, CRLF between them and none after the last for 69xx, LF after each for
# 894x; 69xx lists a boot and a DSP image shared by SCCP and SIP loads; 894x lists nine .binN.sgn parts and
# leaves BOOT894x.0-0-2-0.bin.sgn, which sits beside them, unlisted (why is UNCONFIRMED).
BOOT_69XX = ("BOOT69xx.0-0-0-14.zz.sgn", "DSP69xx.12-4-123-2.160119.zz.sgn")
BOOT_894X = "BOOT894x.0-0-2-0.bin.sgn"
PARTS_894X = 9


def _is_69xx(load_id: str) -> bool:
    return (family(load_id) or "").lower() in ("sccp69xx", "sip69xx")


def _is_894x(load_id: str) -> bool:
    return (family(load_id) or "").lower() in ("sccp894x", "sip894x")


def component_names(load_id: str, components: int = 5) -> list[str]:
    """Names shaped like the real ones: jar45sccp.9-4-2SR4-3.sbn for SCCP45.9-4-2SR4-3S, P0030801SR02.sbn/.sb2 for 7940/60.

    69xx and 894x loads always have their real count (3, 9): `components` does not apply to them.
    """
    fam = family(load_id) or "load"
    ver = _version_part(load_id)
    if _is_69xx(load_id):
        return [*BOOT_69XX, f"{load_id}.zz.sgn"]
    if _is_894x(load_id):
        return [f"{load_id}.bin{i}.sgn" for i in range(1, PARTS_894X + 1)]
    m = re.match(r"^(SCCP|SIP)(\d\d)$", fam, re.I)
    if m:
        proto, nn = m.group(1).lower(), m.group(2)
        base = [f"jar{nn}{proto}", f"cnu{nn}", f"apps{nn}", f"dsp{nn}", f"cvm{nn}{proto}"]
        names = [f"{b}.{ver}.sbn" for b in base]
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
    """A manifest signed as `filename` (default `<load_id>.loads`; a term file is signed with its own name)."""
    if _is_69xx(load_id):
        text = "\r\n".join(names)
    elif _is_894x(load_id):
        text = "".join(f"{n}\n" for n in names)
    else:
        text = MANIFEST_INTRO.format(version=_version_part(load_id)) + "".join(f"{n}\r\n" for n in names)
    head = signature_header(filename or f"{load_id}.loads") if signed else b""
    return head + text.encode("ascii")


def load_files(load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5, signed: bool = True,
               term: bool = False) -> dict[str, bytes]:
    """{file name: content} for one load; component contents together make up about size_bytes."""
    if is_gen5(load_id):
        return gen5_load_files(load_id, size_bytes)     # always containers, no term files: none exist for 78xx
    names = component_names(load_id, components)
    files = {f"{load_id}.loads": manifest_bytes(load_id, names, signed)}
    if term:
        for t in term_files(load_id):
            files[t] = manifest_bytes(load_id, names, signed, filename=t)
    if _is_894x(load_id):
        names = [*names, BOOT_894X]
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
    """Cisco's download name: cmterm-7945_7965-sccp.9-4-2SR4-3.zip (kind "zip"), .cop.sgn ("cop"), .cop.sha512 ("sha512").

    7800/8800 (reference phone-families.md §2.1): cmterm-78xx.11-5-1-18.zip, cmterm-88xx-sip.12-8-1-0001-455.k3.cop.sgn,
    cmterm-78xx.14-4-1-0301-6.k4.cop.sha512.
    """
    fam = family(load_id) or "load"
    ver = _version_part(load_id)
    if is_gen5(load_id):
        part = _model_part(load_id)
        if firmware_type(load_id) == MPP:      # cmterm-88xx.11-3-3MPP0001-377_REL.zip (phone-families.md §3.4 [F7])
            return {"zip": f"cmterm-{part}.{ver}_REL.zip", "cop": f"cmterm-{part}.{ver}_REL.k3.cop.sgn",
                    "sha512": f"cmterm-{part}.{ver}_REL.k4.cop.sha512"}[kind]
        return {"zip": f"cmterm-{part}.{ver}.zip", "cop": f"cmterm-{part}-sip.{ver}.k3.cop.sgn",
                "sha512": f"cmterm-{part}.{ver}.k4.cop.sha512"}[kind]
    proto = protocol(load_id) or "sccp"
    models = "_".join(sorted({re.sub(r"\D", "", m)[:4] for m in models_for_load(load_id)})) or fam
    if _is_69xx(load_id):
        models = "69xx"     # cmterm-69xx-sccp.9-3-1-3 (6900 release notes 9.3(1), reference §4.1)
    return f"cmterm-{models}-{proto}.{ver}" + {"zip": ".zip", "cop": ".cop.sgn", "sha512": ".cop.sha512"}[kind]


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


INSTALL_SCRIPT = b"#!/bin/sh\n# install script (the station ignores it)\nexit 0\n"


def cop_bytes(files: dict[str, bytes], extra_members: list[tarfile.TarInfo] | None = None,
              filename: str = "synthetic.cop.sgn", prefix: str = "") -> bytes:
    """A COP: the signature header (signed as `filename`), then a gzip tar of `files` under `prefix` and an install script.

    Firmware COPs carry the TFTP files at the tar's top level (prefix ""); locale COPs under
    usr/local/cm/tftp/<locale>/ (reference §4.1; the exact internal layout is UNCONFIRMED, the
    unpacker accepts both).
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("install.sh")
        info.size, info.mode = len(INSTALL_SCRIPT), 0o755
        tf.addfile(info, io.BytesIO(INSTALL_SCRIPT))
        for fname, data in files.items():
            info = tarfile.TarInfo(f"{prefix}{fname}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra_members or []:
            tf.addfile(info, io.BytesIO(b"\0" * info.size) if info.isreg() else None)
    digest = DIGEST_SHA512 if filename.lower().endswith(".sha512") else DIGEST_SHA1
    return signature_header(filename, digest=digest) + buf.getvalue()


def write_cop(dest_dir: Path | str, load_id: str, size_bytes: int = DEFAULT_SIZE, components: int = 5,
              signed: bool = True, term: bool = True, name: str | None = None, kind: str = "cop") -> list[Path]:
    """A .cop.sgn (or kind "sha512": .cop.sha512): signature header, then a gzip tar with the files at its top level."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (name or package_name(load_id, kind))
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(cop_bytes(load_files(load_id, size_bytes, components, signed, term), filename=path.name))
    tmp.replace(path)
    return [path]


def write_locale_cop(dest_dir: Path | str, locale: str, files: dict[str, bytes], name: str | None = None) -> list[Path]:
    """A locale COP (po-locale-<locale>.cop.sgn): files under usr/local/cm/tftp/<locale>/."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (name or f"po-locale-{locale}.cop.sgn")
    path.write_bytes(cop_bytes(files, filename=path.name, prefix=f"usr/local/cm/tftp/{locale}/"))
    return [path]
