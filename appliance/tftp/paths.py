"""Request name -> real file under the root, for TFTP and HTTP alike.

Phones ask `/mk-sip.jar`, `English_United_Kingdom\\x.jar` and `Jar11sip...` for
`jar11sip...` (reference §2.1), so one leading `/` is stripped, `\\` is a
separator and lookup ignores case.  tftpy joins the name onto its root and
follows symlinks out of it; here every answer is re-checked with realpath to
lie inside an allowed base and to be a regular file, so neither `..`, NUL,
absolute names nor a symlink can reach anything else.
"""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

MAX_NAME = 1024


def servable_name(raw: bytes | str) -> str | None:
    """The relative, '/'-separated name a client asked for, or None if it may never be served."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not raw or len(raw) > MAX_NAME or "\0" in raw:
        return None
    name = raw.replace("\\", "/")
    if name.startswith("/"):
        name = name[1:]
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == ".." or (len(part) >= 2 and part[1] == ":" and not parts):
            return None
        if any(ord(c) < 32 for c in part):
            return None
        parts.append(part)
    return "/".join(parts) or None


def inside(path: str, bases: tuple[str, ...]) -> bool:
    return any(path == b or path.startswith(b + os.sep) for b in bases)


def safe_file(path: str | os.PathLike, bases: tuple[str, ...]) -> str | None:
    """realpath of `path` if it is a regular file inside one of `bases` (given as realpaths)."""
    try:
        real = os.path.realpath(path)
        if not inside(real, bases):
            return None
        if not stat.S_ISREG(os.stat(real).st_mode):
            return None
    except (OSError, ValueError):
        return None
    return real


class DirResolver:
    """Case-insensitive lookup in one directory tree (used when no firmware catalog is present).

    Directory listings are cached per directory and revalidated by mtime, so a
    burst of requests costs one `listdir` per directory, not one per request.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.realpath(root)
        self.bases = (self.root,)
        self._lock = threading.Lock()
        self._dirs: dict[str, tuple[float, dict[str, str]]] = {}

    def _listing(self, directory: str) -> dict[str, str]:
        try:
            mtime = os.stat(directory).st_mtime
        except OSError:
            return {}
        with self._lock:
            cached = self._dirs.get(directory)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            names = os.listdir(directory)
        except OSError:
            return {}
        table: dict[str, str] = {}
        for n in sorted(names):
            table.setdefault(n.lower(), n)
        with self._lock:
            if len(self._dirs) > 4096:
                self._dirs.clear()
            self._dirs[directory] = (mtime, table)
        return table

    def resolve(self, name: str) -> Path | None:
        clean = servable_name(name)
        if clean is None:
            return None
        current = self.root
        for part in clean.split("/"):
            candidate = os.path.join(current, part)
            if not os.path.lexists(candidate):
                real = self._listing(current).get(part.lower())
                if real is None:
                    return None
                candidate = os.path.join(current, real)
            current = candidate
        found = safe_file(current, self.bases)
        return Path(found) if found else None
