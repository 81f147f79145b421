"""Whether a firmware file on disk is intact, judged by its content: the I/O around container5.py.

A file is recognised by its first bytes (the 5th-generation magic), never by its name.  Such a file is
read once, its payload length and SHA-256 compared with its header; the verdict is kept per (path, size,
mtime) in memory and in one JSON file in the cache directory, so a station that restarts does not hash
a gigabyte of rootfs images again.  `firmware verify` asks for a fresh look (rehash) and a progress report.
Files in other formats pass here: the TLV header carries no digest to check.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import container5

CHUNK = 1 << 20
STATE_NAME = "integrity-v1.json"
MAX_REMEMBERED = 50_000

Progress = Callable[[int, int, str], None]     # (bytes hashed so far, bytes to hash in all, file being hashed)


@dataclass(frozen=True)
class Verdict:
    container5: bool              # the file starts with the 5th-generation magic
    filename: str | None = None   # the name it is signed as
    problem: str | None = None    # why it must not be served (damaged, truncated, malformed); None if intact


PLAIN = Verdict(False)


def _key(path: Path, st: os.stat_result) -> str:
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


class Integrity:
    """Verdicts on files, remembered by (path, size, mtime).  Not thread-safe: the catalog calls it under its lock."""

    def __init__(self, state_dir: Path | None = None):
        self.state = state_dir / STATE_NAME if state_dir is not None else None
        self._known: dict[str, Verdict] = {}
        self._loaded = False
        self._dirty = False
        self.hashed_bytes = 0          # bytes read for digests by this object (for tests and the CLI)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.state is None:
            return
        try:
            doc = json.loads(self.state.read_text())
            for key, (is_c5, name, problem) in doc.items():
                self._known[str(key)] = Verdict(bool(is_c5), name, problem)
        except (OSError, ValueError, TypeError, AttributeError):
            pass    # no state yet, or a damaged one: everything is looked at again

    def save(self) -> None:
        """Write the remembered container verdicts (atomically); a failure only costs hashing again later."""
        if self.state is None or not self._dirty:
            return
        doc = {k: [v.container5, v.filename, v.problem] for k, v in self._known.items() if v.container5}
        tmp = self.state.with_name(f".{STATE_NAME}.{os.getpid()}")
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.state)
            self._dirty = False
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass

    def check_all(self, paths: list[Path], rehash: bool = False, progress: Progress | None = None) -> dict[Path, Verdict]:
        """The verdict on every file in `paths` (unreadable ones are left out: the catalog reports those itself).

        Args:
            paths: files to judge.
            rehash: hash every container again, ignoring what was remembered (`firmware verify`).
            progress: called as bytes are hashed, for a terminal's progress line.
        """
        self._load()
        out: dict[Path, Verdict] = {}
        todo: list[tuple[Path, os.stat_result, str]] = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = _key(path, st)
            known = self._known.get(key)
            if known is not None and not (rehash and known.container5):
                out[path] = known
                continue
            try:
                with open(path, "rb") as f:
                    head = f.read(4)
            except OSError:
                continue
            if not container5.is_container5(head):
                self._remember(key, PLAIN)
                out[path] = PLAIN
                continue
            todo.append((path, st, key))
        total = sum(st.st_size for _, st, _ in todo)
        done = 0
        for path, st, key in todo:
            verdict, read = self._hash(path, st.st_size, done, total, progress)
            done += st.st_size
            self.hashed_bytes += read
            if verdict is None:
                continue
            self._remember(key, verdict)
            out[path] = verdict
        if progress is not None and todo:
            progress(total, total, "")
        return out

    def _remember(self, key: str, verdict: Verdict) -> None:
        if len(self._known) >= MAX_REMEMBERED:
            self._known.clear()
        self._known[key] = verdict
        self._dirty = self._dirty or verdict.container5

    @staticmethod
    def _hash(path: Path, size: int, base: int, total: int, progress: Progress | None) -> tuple[Verdict | None, int]:
        """(verdict, bytes read); verdict None if the file could not be read."""
        read = 0
        try:
            with open(path, "rb") as f:
                head = f.read(container5.MAX_HEADER)
                read += len(head)
                try:
                    header = container5.parse_header(head[:size])
                    container5.check_size(header, size)
                except container5.Container5Error as exc:
                    return Verdict(True, None, str(exc)), read
                hasher = container5.PayloadHasher(header)
                hasher.feed(head[header.length:])
                while chunk := f.read(CHUNK):
                    hasher.feed(chunk)
                    read += len(chunk)
                    if progress is not None:
                        progress(base + read, total, path.name)
                try:
                    hasher.check()
                except container5.Container5Error as exc:
                    return Verdict(True, header.filename, str(exc)), read
                return Verdict(True, header.filename, None), read
        except OSError:
            return None, read
