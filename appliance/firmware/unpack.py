"""Unpack Cisco firmware packages (cmterm-*.zip, *.cop.sgn, *.cop.sha512) into a directory, refusing hostile archives.

Firmware files land flat at the top (zips are flat as Cisco ships them; a
COP's TFTP files sit at its tar's top level or under usr/local/cm/tftp/).
Locale files keep their one directory (`English_United_Kingdom/...-sccp.jar`)
because phones ask for them by that path, and one language must never answer
for another.  Packages come from techs' downloads, so nothing in them is
trusted: members that would leave the archive (absolute, `..`), links and
devices are refused, and the bytes actually written are counted against a
budget instead of believing the sizes the archive declares.
"""
from __future__ import annotations

import gzip
import re
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import container5
from .signed import HeaderError, is_signed, parse_signed_header

MAX_TOTAL = 4 << 30          # bytes written per archive
MAX_MEMBERS = 10_000
MAX_RATIO = 200              # firmware images are already compressed; far higher means a bomb
RATIO_FLOOR = 8 << 20        # small highly compressible files (manifests, scripts) are fine
CHUNK = 1 << 20
TFTP_PREFIX = ("usr", "local", "cm", "tftp")     # where CUCM's TFTP files live inside a COP (reference §4.1)
LOCALE_DIR = re.compile(r"^[A-Z][a-z]+(?:_[A-Z][a-z]+)+$")   # English_United_States, Chinese_China, ...
HEADER_READ = 1 << 16                             # a header length is 16 bits


class Refused(Exception):
    """The whole archive is refused; str() says why."""


@dataclass
class Result:
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


ARCHIVE_SUFFIXES = (".zip", ".cop.sgn", ".cop.sha512", ".cop", ".tar.gz")


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_member(name: str) -> str:
    """Where a member lands: its file name, or `<locale>/<file name>`; Refused if its path tries to leave the archive."""
    norm = name.replace("\\", "/")
    p = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in p.parts:
        raise Refused(f"member {name[:120]!r} points outside the archive (path traversal)")
    base = p.name
    if not base or base in (".", ".."):
        raise Refused(f"member {name[:120]!r} has no file name")
    parts = [x for x in p.parts if x not in ("", ".")]
    if tuple(x.lower() for x in parts[:len(TFTP_PREFIX)]) == TFTP_PREFIX:
        parts = parts[len(TFTP_PREFIX):]
    if len(parts) >= 2 and LOCALE_DIR.match(parts[-2]):
        return f"{parts[-2]}/{base}"
    return base


class _Writer:
    def __init__(self, dest: Path, archive_size: int, max_total: int):
        self.dest, self.total, self.archive_size, self.max_total = dest, 0, max(1, archive_size), max_total
        self.result = Result()
        self.seen: set[str] = set()

    def add(self, base: str, stream, label: str) -> None:
        if base.lower() in self.seen:
            self.result.problems.append(f"duplicate file name {base!r} in the package; kept the first")
            return
        self.seen.add(base.lower())
        target = self.dest / base
        target.parent.mkdir(exist_ok=True)
        with open(target, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                self.total += len(chunk)
                if self.total > self.max_total:
                    raise Refused(f"unpacks to more than {self.max_total} bytes (decompression bomb?)")
                if self.total > RATIO_FLOOR and self.total > MAX_RATIO * self.archive_size:
                    raise Refused(f"expands more than {MAX_RATIO}x its size at {label!r} (decompression bomb)")
                out.write(chunk)
        self.result.files.append(base)


def _unzip(path: Path, w: _Writer) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Refused(f"not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise Refused(f"{len(infos)} members (limit {MAX_MEMBERS})")
        for info in infos:
            if info.is_dir():
                continue
            base = _safe_member(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode and mode != 0o100000:
                w.result.problems.append(f"skipped {info.filename!r}: not a regular file (symlink or device)")
                continue
            try:
                with zf.open(info) as stream:
                    w.add(base, stream, info.filename)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
                    OSError, ValueError) as exc:
                raise Refused(f"broken member {info.filename!r}: {exc}") from None


SCRIPT_SUFFIXES = (".sh", ".py", ".pl")


def _install_script(name: str) -> bool:
    """COP install scripts sit at the tar's top level, apart from the firmware; phones never ask for them."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return len(parts) == 1 and parts[0].lower().endswith(SCRIPT_SUFFIXES)


GZIP = b"\x1f\x8b\x08"


def _tar_payload_offset(path: Path) -> int:
    """Where the gzip stream starts: after the signature header if there is one.

    Which header a CUCM 12.x/14.x `.k3.cop.sgn` / `.k4.cop.sha512` carries is UNCONFIRMED (a field note strips
    "the first ~420 bytes" with dd, another finds the gzip magic at 428; reference phone-families.md §2.1):
    the TLV header and the 5th-generation container are both read, and a header neither parser knows is
    passed over to the first gzip magic within its first 64 KiB (a wrong guess fails the gzip CRC and is refused).
    """
    with open(path, "rb") as f:
        head = f.read(HEADER_READ + 2)
    if head[:2] == b"\x1f\x8b":
        return 0
    if is_signed(head):
        try:
            length = parse_signed_header(head).length
        except HeaderError as exc:
            raise Refused(f"bad signature header: {exc}") from None
    elif container5.is_container5(head):
        try:
            header = container5.parse_header(head[:container5.MAX_HEADER])
            container5.check_size(header, path.stat().st_size)
        except container5.Container5Error as exc:
            raise Refused(f"bad 5th-generation header: {exc}") from None
        length = header.length
    else:
        length = head.find(GZIP, 0, HEADER_READ)
        if length < 0:
            raise Refused("neither a signature header nor gzip data in its first 64 KiB")
    if head[length:length + 2] != b"\x1f\x8b":
        raise Refused(f"no gzip data at byte {length}, after the signature header")
    return length


def _untar(path: Path, w: _Writer) -> None:
    offset = _tar_payload_offset(path)
    raw = open(path, "rb")
    try:
        raw.seek(offset)
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        with tarfile.open(fileobj=gz, mode="r|") as tf:
            members = 0
            for info in tf:
                members += 1
                if members > MAX_MEMBERS:
                    raise Refused(f"more than {MAX_MEMBERS} members")
                if info.isdir():
                    continue
                base = _safe_member(info.name)
                if not info.isreg():
                    w.result.problems.append(f"skipped {info.name!r}: not a regular file (link or device)")
                    continue
                if _install_script(info.name):
                    continue
                stream = tf.extractfile(info)
                if stream is None:
                    continue
                w.add(base, stream, info.name)
            _drain(gz, w)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise Refused(f"broken gzip tar: {exc}") from None
    finally:
        raw.close()


def _drain(gz: gzip.GzipFile, w: _Writer) -> None:
    """Read the gzip stream to its end: only there is its CRC checked, and tar stops reading at its end marker,
    so a corrupted member would otherwise be served as firmware."""
    while chunk := gz.read(CHUNK):
        w.total += len(chunk)
        if w.total > w.max_total:
            raise Refused(f"unpacks to more than {w.max_total} bytes (decompression bomb?)")


def unpack(path: Path, dest: Path, max_total: int = MAX_TOTAL) -> Result:
    """Unpack `path` into the new directory `dest` (flat).  Raises Refused and removes `dest` if the archive is refused."""
    dest.mkdir(parents=True, exist_ok=False)
    w = _Writer(dest, path.stat().st_size, max_total)
    try:
        if path.name.lower().endswith(".zip"):
            _unzip(path, w)
        else:
            _untar(path, w)
        if not w.result.files:
            raise Refused("contains no files")
    except Refused:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except Exception as exc:  # an archive must never take the catalog down
        shutil.rmtree(dest, ignore_errors=True)
        raise Refused(f"cannot unpack: {type(exc).__name__}: {exc}") from None
    return w.result
