"""What a name means: a generated config, a file of the catalog, or nothing.

Shared by TFTP and HTTP so both serve the same bytes under the same rules.
Generated configs are rendered into memory; firmware is read with `os.pread`
from the page cache, as tftpd-hpa and dnsmasq do (per block here, 16 KiB ahead
in the C pump, which reads the same descriptor).  A copy in each
worker's heap (an earlier design) saved 0.24 us of a ~18 us block but cost
every worker its own copy of every load in flight: 37 MiB more at the peak of a
50-phone run, on a station that must fit a 512 MB Raspberry Pi.  mmap would
share those pages but turns a file truncated on the host into SIGBUS.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

from ..firmware.names import Kind, classify
from .paths import DirResolver, safe_file, servable_name

log = logging.getLogger("tftp")

NETASCII_MAX = 16 << 20    # text-mode gets are configs and notes, never firmware


@dataclass
class Source:
    name: str            # the cleaned name as asked
    resolved: str        # real file name, or "generated:<name>"
    size: int
    read: Callable[[int, int], bytes]
    fd: int | None = None
    data: bytes | None = None
    names: str | None = None     # a generated config or term file: the load it names

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
                 refused: Callable[[str], bool] | None = None, licences=None):
        """`licences` (firmware/licences.Licences): conversion licences, each served only to the address holding
        its MAC's lease (the core's answer table, through `generated`); without it no `*.lic` is ever served."""
        self.licences = licences
        self.root = os.path.realpath(root)
        self.catalog = catalog
        self.generated = generated
        self.refused = refused
        bases = [self.root]
        if cache_dir is not None:
            bases.append(os.path.realpath(cache_dir))
        self.bases = tuple(bases)
        self.plain = DirResolver(self.root)

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

    def render(self, name: str, client_ip: str | None, proto: str = "tftp") -> tuple[bytes | None, str | None]:
        """(bytes of a generated file or None, the load it names)."""
        if self.generated is None:
            return None, None
        try:
            body, load = self.generated.render_named(name, client_ip=client_ip, proto=proto)
        except Exception as exc:
            log.warning("generated.render(%r) failed: %r", name, exc)
            return None, None
        return (bytes(body) if body is not None else None), load

    def knows(self, raw_name: bytes | str, client_ip: str | None) -> bool:
        """False while a per-phone generated file is asked from an address the core has not yet told the
        table about (the lease is on its way): the request waits a moment instead of a wrong answer."""
        name = servable_name(raw_name)
        return name is None or self.generated is None or self.generated.knows(name, client_ip)

    def licence(self, name: str, client_ip: str | None) -> bytes | None:
        """A licence's bytes for the phone holding `client_ip`'s lease when the name is its own MAC's; else None.

        Only the core's table says who holds an address (recovery/identity.py: only the lease holder's requests
        are facts about it), so a stranger, another MAC's address, a name with no MAC: all "not found"."""
        mac = classify(name).mac
        table = getattr(self.generated, "table", None)
        row = table.at(client_ip) if table is not None and mac else None
        if row is None or row.mac != mac or self.licences is None:
            return None
        try:
            return self.licences.read(mac)
        except (OSError, ValueError) as exc:
            log.warning("a licence could not be read: %s", type(exc).__name__)
            return None

    def open(self, raw_name: bytes | str, client_ip: str | None = None, proto: str = "tftp"
             ) -> tuple[str | None, Source | None]:
        """-> (cleaned name or None if unservable, Source or None if not found).  `proto` ("tftp", "http"): how it
        was asked (an MPP profile names its load over the same)."""
        name = servable_name(raw_name)
        if name is None:
            return None, None
        if self.refused is not None and self.refused(name):
            return name, None        # trust lists and signed configs: "not found" at once (reference §6)
        if classify(name).kind is Kind.LICENCE:
            # Never from the library or the root, whoever asks: a licence is one phone's (firmware/licences.py).
            data = self.licence(name, client_ip)
            if data is None:
                return name, None
            return name, Source(name, "licence", len(data), _slicer(data), data=data)
        body, load = self.render(name, client_ip, proto)
        if body is not None:
            return name, Source(name, f"generated:{name}", len(body), _slicer(body), data=body, names=load)
        path = self.resolve(name)
        if path is None:
            return name, None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return name, None
        try:
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            return name, None
        return name, Source(name, path, size, _preader(fd, size), fd=fd)


class Truncated(OSError):
    """The file shrank while being served: end the transfer rather than send a short block as its end."""


def _preader(fd: int, size: int) -> Callable[[int, int], bytes]:
    def read(off: int, n: int) -> bytes:
        chunk = os.pread(fd, n, off)
        if len(chunk) < n and off + len(chunk) < size:
            raise Truncated(f"file shorter than its {size} bytes at offset {off + len(chunk)}")
        return chunk
    return read


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
