"""What a name means: a generated config, a file of the catalog, or nothing.

Shared by TFTP and HTTP so both serve the same bytes under the same rules.
Files up to PRELOAD_MAX are read once into memory and sliced per block (no
syscall per block, no SIGBUS risk as with mmap of a file someone truncates);
larger ones are read with `os.pread` per block.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .paths import DirResolver, clean_name, safe_file

log = logging.getLogger("tftp")

PRELOAD_MAX = 64 << 20
CACHE_BYTES = 256 << 20
NETASCII_MAX = 16 << 20    # text-mode gets are configs and notes, never firmware


@dataclass
class Source:
    name: str            # the cleaned name as asked
    resolved: str        # real file name, or "generated:<name>"
    size: int
    read: Callable[[int, int], bytes]
    fd: int | None = None
    data: bytes | None = None

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class Files:
    """Resolve and open served files.  `catalog` may be None (then a plain directory root is served)."""

    def __init__(self, root: str | os.PathLike, catalog=None, generated=None, cache_dir: str | os.PathLike | None = None,
                 refused: Callable[[str], bool] | None = None):
        self.root = os.path.realpath(root)
        self.catalog = catalog
        self.generated = generated
        self.refused = refused
        bases = [self.root]
        if cache_dir is not None:
            bases.append(os.path.realpath(cache_dir))
        self.bases = tuple(bases)
        self.plain = DirResolver(self.root)
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._cached_bytes = 0

    def resolve(self, name: str) -> str | None:
        if self.catalog is not None:
            try:
                found = self.catalog.resolve(name)
            except Exception as exc:   # a catalog bug must cost one request, not the service
                log.warning("catalog.resolve(%r) failed: %r", name, exc)
                found = None
            return safe_file(found, self.bases) if found is not None else None
        found = self.plain.resolve(name)
        return str(found) if found is not None else None

    def render(self, name: str, client_ip: str | None) -> bytes | None:
        if self.generated is None:
            return None
        try:
            body = self.generated.render(name, client_ip=client_ip)
        except Exception as exc:
            log.warning("generated.render(%r) failed: %r", name, exc)
            return None
        return bytes(body) if body is not None else None

    def open(self, raw_name: bytes | str, client_ip: str | None = None) -> tuple[str | None, Source | None]:
        """-> (cleaned name or None if unservable, Source or None if not found)."""
        name = clean_name(raw_name)
        if name is None:
            return None, None
        if self.refused is not None and self.refused(name):
            return name, None        # trust lists and signed configs: "not found" at once (reference §6)
        body = self.render(name, client_ip)
        if body is not None:
            return name, Source(name, f"generated:{name}", len(body), _slicer(body), data=body)
        path = self.resolve(name)
        if path is None:
            return name, None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return name, None
        try:
            st = os.fstat(fd)
            size = st.st_size
            if size <= PRELOAD_MAX:
                data = self._preloaded(fd, path, st)
                os.close(fd)
                return name, Source(name, path, len(data), _slicer(data), data=data)
        except OSError:
            os.close(fd)
            return name, None
        return name, Source(name, path, size, lambda off, n, fd=fd: os.pread(fd, n, off), fd=fd)

    def _preloaded(self, fd: int, path: str, st: os.stat_result) -> bytes:
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        chunks, offset = [], 0
        while offset < st.st_size:
            chunk = os.pread(fd, min(8 << 20, st.st_size - offset), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        data = b"".join(chunks)
        with self._lock:
            self._cache[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= len(old)
        return data

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0


def _slicer(data: bytes) -> Callable[[int, int], memoryview]:
    view = memoryview(data)
    return lambda off, n: view[off:off + n]


def as_netascii(source: Source) -> Source | None:
    """The source in RFC 764 netascii (LF -> CR LF, bare CR -> CR NUL), which the client turns back,
    so `tftp` in its default text mode gets the file byte for byte; None if it is too large to convert."""
    if source.size > NETASCII_MAX:
        return None
    data = bytes(source.read(0, source.size))
    source.close()
    text = data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")
    return Source(source.name, source.resolved, len(text), _slicer(text), data=text)
