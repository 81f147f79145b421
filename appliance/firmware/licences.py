"""Conversion licences: `<UPPER-CASE MAC>.lic` files in the firmware volume's `licences/` folder.

Cisco issues one licence per phone MAC for an Enterprise <-> MPP conversion (phone-families.md §3.1, §3.5 [F24]);
the station can only hand the tech's files to the phone they are for.  So a licence is served to the address that
holds that MAC's lease and to nobody else (identity rule, recovery/identity.py), it is never part of the firmware
library (catalog.py skips the folder; files.py refuses every `*.lic` name the library would answer), and outside
this module only "present" or "absent" is ever said of it: no content, size or path in logs, the API or reports.

A file that cannot be a licence is absent, with the reason kept for `problems()`: empty, larger than
mpp.MAX_LICENCE_BYTES, not a regular file inside the folder, or naming other MACs and not its own.  The licence's
format is not documented in any source read; whether it names its MAC at all is UNCONFIRMED, so a file that names
no MAC is taken as it is, and only one that names MACs, none of them its own, is refused.
"""
from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

from .mpp import MAX_LICENCE_BYTES, licence_mac, licence_name

FOLDER = "licences"
FOLDERS = ("licences", "licenses")     # either spelling a tech may use; both are kept out of the library
# A MAC the file names: written with separators (ab:12:34:56:de:78), or bare after the word MAC ("MAC=AB123456DE78").
# A bare run of 12 hex digits alone is not read as one: signed or encoded content holds such runs by chance.
_MACS = re.compile(rb"(?<![0-9A-Fa-f:\-])([0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5})(?![0-9A-Fa-f:\-])"
                   rb"|mac[\s\"'=:]{0,3}([0-9A-Fa-f]{12})(?![0-9A-Fa-f])", re.I)
MAX_FILES = 10_000


def _macs_in(data: bytes) -> set[str]:
    return {re.sub(rb"[:\-]", b"", a or b).decode().lower() for a, b in _MACS.findall(data[:MAX_LICENCE_BYTES])}


class Licences:
    """The licence folders under one firmware root (read-only; looked up on every question, so a file the tech adds
    or removes counts at once)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._problems: dict[str, str] = {}

    def _folders(self) -> list[Path]:
        try:
            return [self.root / e.name for e in os.scandir(self.root)
                    if e.name.lower() in FOLDERS and e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    def _candidates(self, mac: str) -> list[Path]:
        want = licence_name(mac).lower()
        out = []
        for folder in self._folders():
            try:
                out += [folder / e.name for e in os.scandir(folder) if e.name.lower() == want]
            except OSError:
                continue
        return out

    def _judge(self, path: Path, mac: str) -> tuple[bytes | None, str | None]:
        """(the licence's bytes, None) or (None, why it is not one)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None, "not a readable regular file (a link or a folder?)"
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None, "not a regular file"
            if st.st_size == 0:
                return None, "empty"
            if st.st_size > MAX_LICENCE_BYTES:
                return None, f"larger than {MAX_LICENCE_BYTES // 1024} KiB: not a licence"
            data = os.pread(fd, MAX_LICENCE_BYTES + 1, 0)
        except OSError:
            return None, "not readable"
        finally:
            os.close(fd)
        named = _macs_in(data)
        if named and mac not in named:
            return None, "names another phone's MAC, not this one"
        return data, None

    def read(self, mac: str | None) -> bytes | None:
        """The licence for `mac` (any spelling), or None when it is absent or cannot be one (see problems())."""
        key = licence_mac(licence_name(mac)) if mac else None
        if key is None:
            return None
        for path in self._candidates(key):
            data, why = self._judge(path, key)
            with self._lock:
                if why is None:
                    self._problems.pop(key, None)
                    return data
                if len(self._problems) < MAX_FILES:
                    self._problems[key] = why
        return None

    def present(self, mac: str | None) -> bool:
        """Whether a usable licence for `mac` is in the volume (the only thing said of it outside this module)."""
        try:
            return self.read(mac) is not None
        except ValueError:
            return False

    def problems(self) -> dict[str, str]:
        """{mac: why its file is not a licence} for the files last judged unusable (no content, ever)."""
        with self._lock:
            return dict(self._problems)
