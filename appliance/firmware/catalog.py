"""The firmware catalog: every load on the (read-only) firmware volume and in unpacked packages.

The root is never written to; packages are unpacked into one cache directory
per package (keyed by name, size and mtime, so a replaced package is unpacked
again and a removed one is dropped).  Lookups go through one case-insensitive
index of the union, because phones and TFTP servers disagree on case; a file in
a locale directory is found only by its `<locale>/<name>` path.  A signed file's
tag 14 is its identity (reference §0.0 item 2): a manifest or component signed
under another name is reported and never offered, and no manifest is ever
served under another's name.  A file is judged by its content, never its name:
a 5th-generation container (7800/8800) whose payload length or SHA-256 does
not match its header, or that is signed as another file, is a named problem and
is never served (integrity.py); another intact copy of the same name is served
instead, if there is one.  `refresh()` is cheap (one directory walk, at most
once per `poll_interval`) so the file service can call it on every request.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import unpack as unpacker
from .container5 import name_matches
from .integrity import STATE_NAME as INTEGRITY_STATE
from .integrity import Integrity, Progress
from .licences import FOLDERS as LICENCE_FOLDERS
from .loads import MAX_BYTES, ManifestError, parse_manifest
from .models import by_name, models_for_load, normalize_model
from .signed import HeaderError, is_signed, parse_signed_header, signed_name_matches
from .versions import family, protocol, version_key

MAX_DEPTH = 4
MAX_ENTRIES = 20_000
REFUSED_SUFFIX = ".refused"
PRUNE_GRACE = 120.0    # seconds an unpacked package no longer on the volume stays (other processes may still use it)
TMP_GRACE = 3600.0
SETTLE_SECONDS = 10.0  # a package this young that fails to unpack is probably still being copied: retry, don't refuse
CACHE_LAYOUT = 2       # bumped when unpack.py places files differently (2: locale directories kept)


@dataclass
class Load:
    id: str
    family: str | None
    models: list[str]
    version: tuple[int, ...] | None
    manifest: str                      # the .loads file name as found
    components: list[str]
    missing: list[str]
    complete: bool
    source: str = "root"               # "root" or the package file name
    signed: bool = False
    size: int = 0                      # bytes of the components present
    mismatched: list[str] = field(default_factory=list)   # present, but not the size the manifest claims
    hardware_comp: int | None = None
    protocol: str | None = None        # "sccp", "sip", "mgcp" (versions.protocol); part of the load's identity
    refused: list[str] = field(default_factory=list)        # "name: why" for components a phone would refuse
    terms_missing: list[str] = field(default_factory=list)  # termNN.default.loads no package provides for this load
    format: str = "plain"              # the manifest's: "plain", "tlv" (79xx header), "container5" (7800/8800)
    # 5th generation: [{"name": "PLATFORM_1", "files", "missing", "refused", "complete"}]; a phone fetches only
    # its own platform's files, so each platform is complete or not on its own
    platforms: list[dict] = field(default_factory=list)
    # the manifest's gates as written (HARDWARE_COMP_1, HW_REV, SW_CAP, hwcompat, swcompat, transition): their
    # meaning is UNCONFIRMED (reference phone-families.md §1.1), so they are shown, never enforced
    evidence: dict = field(default_factory=dict)

    @property
    def is_term(self) -> bool:
        return (self.family or "").lower().startswith("term")

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.id, "family": self.family, "protocol": self.protocol, "models": list(self.models),
                "version": list(self.version) if self.version else None, "manifest": self.manifest,
                "components": list(self.components), "missing": list(self.missing), "complete": self.complete,
                "files": len(self.components), "source": self.source, "signed": self.signed, "size": self.size,
                "mismatched": list(self.mismatched), "hardware_comp": self.hardware_comp,
                "refused": list(self.refused), "terms_missing": list(self.terms_missing), "format": self.format,
                "platforms": [dict(p, files=list(p["files"]), missing=list(p["missing"]), refused=list(p["refused"]))
                              for p in self.platforms],
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class _Entry:
    path: Path        # real path inside root or cache
    rel: str          # relative path as found (for root) or "<package>/<name>" (for cache)
    size: int
    source: str


class Catalog:
    def __init__(self, root: Path | str, cache_dir: Path | str, poll_interval: float = 1.0,
                 max_unpack: int = unpacker.MAX_TOTAL):
        self.root = Path(root)
        self.cache_dir = Path(cache_dir)
        self.poll_interval = poll_interval
        self.max_unpack = max_unpack
        self.loads: list[Load] = []
        self.terms: list[Load] = []     # termNN.default.loads copies (factory-reset manifests), one per package
        self.problems: list[str] = []
        self._by_rel: dict[str, _Entry] = {}
        self._by_name: dict[str, list[_Entry]] = {}
        self._by_locale: dict[str, _Entry] = {}
        self._signature: tuple | None = None
        self._checked = 0.0
        self._pending = False      # a package looked half-copied: rescan on the next poll even if nothing changed
        self._lock = threading.RLock()
        self._headers: dict[tuple, str | None] = {}   # (path, size, mtime) -> why a phone would refuse it, or None
        self.scans = 0
        self.integrity = Integrity(self.cache_dir)
        self.rehash = False                    # hash every container again on the next scan (firmware verify)
        self.progress: Progress | None = None  # told how hashing goes (firmware verify on a terminal)
        self._bad: dict[Path, str] = {}        # real path -> why it is never served

    @classmethod
    def from_config(cls, cfg) -> "Catalog":
        return cls(Path(cfg.tftp.root), Path(cfg.state.dir) / "cache" / "firmware")

    # ---- scanning -------------------------------------------------------------------------------------
    def _walk(self) -> tuple[list[tuple[str, os.stat_result, Path]], list[str]]:
        """(relative path, stat, real path) of every regular file under root that really lives inside root."""
        out: list[tuple[str, os.stat_result, Path]] = []
        problems: list[str] = []
        try:
            real_root = self.root.resolve(strict=True)
        except OSError as exc:
            return out, [f"firmware root {self.root} is not readable: {exc.strerror or exc}"]
        stack = [(real_root, "", 0)]
        while stack:
            d, prefix, depth = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError as exc:
                problems.append(f"cannot list {prefix or '.'}: {exc.strerror or exc}")
                continue
            for e in entries:
                if len(out) >= MAX_ENTRIES:
                    problems.append(f"more than {MAX_ENTRIES} files under the root; the rest are ignored")
                    return out, problems
                rel = f"{prefix}{e.name}"
                try:
                    if e.is_symlink():
                        target = Path(os.path.realpath(e.path))
                        if not _inside(target, real_root):
                            problems.append(f"{rel}: symlink pointing outside the firmware root, ignored")
                            continue
                        st = target.stat()
                        if not _is_reg(st):
                            continue
                        out.append((rel, st, target))
                    elif e.is_dir(follow_symlinks=False):
                        # licences/ holds one phone's files each, served only to it (licences.py): never the library's
                        if depth == 0 and e.name.lower() in LICENCE_FOLDERS:
                            continue
                        if depth + 1 < MAX_DEPTH and not e.name.startswith("."):
                            stack.append((Path(e.path), rel + "/", depth + 1))
                    elif e.is_file(follow_symlinks=False):
                        out.append((rel, e.stat(follow_symlinks=False), Path(e.path)))
                except OSError:
                    continue
        return out, problems

    def _signature_of(self, files) -> tuple:
        return tuple((rel, st.st_size, st.st_mtime_ns) for rel, st, _ in files)

    def scan(self) -> None:
        """Full rescan: walk the root, unpack new packages, parse every manifest, recompute completeness."""
        with self._lock:
            files, problems = self._walk()
            self._pending = False
            self._signature = self._signature_of(files)
            self._checked = time.monotonic()
            by_rel: dict[str, _Entry] = {}
            by_name: dict[str, list[_Entry]] = {}
            by_locale: dict[str, _Entry] = {}     # "<locale>/<file>", wherever that folder sits
            packages = []
            for rel, st, real in files:
                entry = _Entry(real, rel, st.st_size, "root")
                if unpacker.is_archive(rel):
                    packages.append((rel, st, real))
                by_rel[rel.lower()] = entry
                if _in_locale_dir(rel):
                    by_locale.setdefault("/".join(rel.lower().split("/")[-2:]), entry)
                else:
                    by_name.setdefault(Path(rel).name.lower(), []).append(entry)
            # root files win over package contents of the same name: the tech put them there on purpose
            keep = set()
            for rel, st, real in packages:
                key, unpacked, why = self._unpacked(rel, st, real)
                keep.add(key)
                problems.extend(why)
                if unpacked is None:
                    continue
                pkg = Path(rel).name
                for name, p, pst in _package_files(unpacked):
                    entry = _Entry(p, f"{pkg}/{name}", pst.st_size, pkg)
                    if "/" in name:
                        by_locale.setdefault(name.lower(), entry)
                    else:
                        by_name.setdefault(name.lower(), []).append(entry)
            self._prune_cache(keep)
            self._by_rel, self._by_name, self._by_locale = by_rel, by_name, by_locale
            self._bad, bad_problems = self._judge_files()
            self.loads, load_problems = self._build_loads()
            self.problems = problems + bad_problems + load_problems
            self.scans += 1

    def _unpacked(self, rel: str, st: os.stat_result, real: Path) -> tuple[str, Path | None, list[str]]:
        """The cache directory holding this package's files, unpacking it if needed."""
        name = Path(rel).name
        digest = hashlib.sha256(f"{CACHE_LAYOUT}\0{rel}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
        key = f"{_safe_dir(name)}-{digest}"
        dest = self.cache_dir / key
        refused = self.cache_dir / (key + REFUSED_SUFFIX)
        if refused.exists():
            return key, None, [f"{rel}: refused: {refused.read_text(errors='replace').strip()}"]
        if (dest / ".complete").exists():
            return key, dest, self._stored_problems(dest, rel)
        tmp = self.cache_dir / f".tmp-{key}-{os.getpid()}-{threading.get_ident()}"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            result = unpacker.unpack(real, tmp, self.max_unpack)
            (tmp / ".complete").write_text(json.dumps({"package": rel, "problems": result.problems}))
        except unpacker.Refused as exc:
            if time.time() - st.st_mtime < SETTLE_SECONDS:
                self._pending = True
                return key, None, [f"{rel}: not readable yet (still being copied?), will look again: {exc}"]
            try:
                refused.write_text(str(exc) + "\n")
            except OSError:
                pass
            return key, None, [f"{rel}: refused: {exc}"]
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return key, None, [f"{rel}: cannot unpack into {self.cache_dir}: {exc.strerror or exc}"]
        try:
            os.rename(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)   # another process unpacked it first
            if not (dest / ".complete").exists():
                return key, None, [f"{rel}: could not be placed in the cache"]
        return key, dest, [f"{rel}: {p}" for p in result.problems]

    @staticmethod
    def _stored_problems(dest: Path, rel: str) -> list[str]:
        try:
            return [f"{rel}: {p}" for p in json.loads((dest / ".complete").read_text()).get("problems", [])]
        except (OSError, ValueError, AttributeError):
            return []

    def _prune_cache(self, keep: set[str]) -> None:
        """Drop unpacked packages no longer on the volume (and leftovers of interrupted unpacks)."""
        try:
            entries = list(os.scandir(self.cache_dir))
        except OSError:
            return
        now = time.time()
        for e in entries:
            name = e.name
            try:
                age = now - e.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if name.startswith(".tmp-"):
                if age > TMP_GRACE:
                    shutil.rmtree(e.path, ignore_errors=True)
                continue
            if name == INTEGRITY_STATE:
                continue
            base = name[:-len(REFUSED_SUFFIX)] if name.endswith(REFUSED_SUFFIX) else name
            # another process may have unpacked a package this one has not seen yet: leave young entries alone
            if base not in keep and age > PRUNE_GRACE:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(e.path)
                    except OSError:
                        pass

    def _judge_files(self) -> tuple[dict[Path, str], list[str]]:
        """Every file of the union judged by its content: {real path: why it is never served}, and the problems."""
        entries = [e for e in self._by_rel.values() if not unpacker.is_archive(e.rel)]
        entries += [e for es in self._by_name.values() for e in es if e.source != "root"]
        entries += [e for e in self._by_locale.values() if e.source != "root"]
        verdicts = self.integrity.check_all(sorted({e.path for e in entries}), rehash=self.rehash,
                                            progress=self.progress)
        self.rehash = False
        self.integrity.save()
        bad: dict[Path, str] = {}
        problems: list[str] = []
        for e in sorted(entries, key=lambda e: e.rel):
            verdict = verdicts.get(e.path)
            if verdict is None or not verdict.container5 or e.path in bad:
                continue
            served = e.rel.rsplit("/", 1)[-1]
            why = verdict.problem
            if why is None and verdict.filename is not None and not name_matches(verdict.filename, served):
                why = f"signed as {verdict.filename!r}, not {served!r}: a phone refuses a file under another name"
            if why is not None:
                bad[e.path] = why
                problems.append(f"{e.rel}: not served: {why}; copy it again from its Cisco package (zip or COP)")
        return bad, problems

    def corrupt(self) -> dict[str, str]:
        """{file as found: why it is never served}: damaged, truncated, malformed or misnamed containers."""
        with self._lock:
            self._ensure()
            by_path = {e.path: e.rel for e in self._by_rel.values()}
            by_path.update({e.path: e.rel for es in self._by_name.values() for e in es})
            by_path.update({e.path: e.rel for e in self._by_locale.values()})
            return {by_path.get(p, str(p)): why for p, why in self._bad.items()}

    def _build_loads(self) -> tuple[list[Load], list[str]]:
        """Loads from the first copy of each manifest name; term files from every copy (each package has its own)."""
        loads: dict[str, Load] = {}
        terms: list[Load] = []
        problems: list[str] = []
        for lname, entries in sorted(self._by_name.items()):
            if not lname.endswith(".loads"):
                continue
            is_term = lname.startswith("term")
            entries = [e for e in entries if e.path not in self._bad]
            for entry in entries if is_term else entries[:1]:
                load, problem = self._load_from(entry)
                if problem:
                    problems.append(problem)
                if load is None:
                    continue
                if load.is_term:
                    terms.append(load)
                else:
                    loads.setdefault(load.id.lower(), load)
        self.terms = sorted(terms, key=lambda load: (load.id, load.source))
        ordered = sorted(loads.values(), key=lambda load: (load.family or "", load.version or (), load.id))
        for load in ordered:
            load.terms_missing = self._terms_missing(load)
        return ordered, problems

    def _terms_missing(self, load: Load) -> list[str]:
        """Term files of the load's models that no copy provides with this load's components."""
        want = [c.lower() for c in load.components]
        have = {t.manifest.lower() for t in self.terms if [c.lower() for c in t.components] == want}
        terms = sorted({m.term for name in load.models if (m := by_name(name)) and m.term})
        return [t for t in terms if t.lower() not in have]

    def _refusal(self, entry: _Entry, name: str) -> str | None:
        """Why a phone would refuse this signed file served as `name` (bad header, other signed name); None if fine.

        Unsigned files pass: synthetic unsigned loads exist for tests, and this is not a signature check.
        """
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc}"
        key = (str(entry.path), st.st_size, st.st_mtime_ns, name.lower())
        if key in self._headers:
            return self._headers[key]
        why = None
        try:
            with open(entry.path, "rb") as f:
                head = f.read(unpacker.HEADER_READ)
            if is_signed(head):
                header = parse_signed_header(head)
                if not signed_name_matches(header.filename, name):
                    why = f"signed as {header.filename!r}, not {name!r}"
        except HeaderError as exc:
            why = f"malformed signature header: {exc}"
        except OSError as exc:
            why = f"unreadable: {exc.strerror or exc}"
        if len(self._headers) > 4 * MAX_ENTRIES:
            self._headers.clear()
        self._headers[key] = why
        return why

    def _load_from(self, entry: _Entry) -> tuple[Load | None, str | None]:
        name = entry.path.name if entry.source == "root" else entry.rel.split("/", 1)[1]
        where = entry.rel
        try:
            with open(entry.path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError as exc:
            return None, f"{where}: unreadable: {exc.strerror or exc}"
        try:
            m = parse_manifest(data)
        except ManifestError as exc:
            return None, f"{where}: malformed manifest: {exc}"
        if m.signed and not signed_name_matches(m.filename, name):
            return None, (f"{where}: signed as {m.filename!r} but named {name!r}: a phone refuses a manifest "
                          "under another name (tag 14), so it is not offered")
        load_id = name[:-len(".loads")]
        missing, mismatched, refused, size = [], [], [], 0
        for c in m.components:
            found = self.lookup(c.name)
            if found is None or found.size == 0:
                bad = self._bad_copy(c.name)
                if bad:
                    refused.append(f"{c.name}: not served: {bad}")
                else:
                    missing.append(c.name)
                continue
            size += found.size
            if c.size is not None and c.size != found.size:
                mismatched.append(c.name)
            why = self._refusal(found, c.name)
            if why:
                refused.append(f"{c.name}: {why}")
        platforms = []
        for p in m.platforms:
            names = [f.name for f in p.files]
            p_missing = [n for n in names if n in missing]
            p_refused = [r for r in refused if r.split(":", 1)[0] in names]
            platforms.append({"name": p.name, "files": names, "missing": p_missing, "refused": p_refused,
                              "complete": not p_missing and not p_refused})
        fam = family(load_id)
        models = models_for_load(load_id)
        load = Load(id=load_id, family=fam, models=models, version=version_key(load_id), manifest=name,
                    components=m.names, missing=missing, complete=not missing and not refused, source=entry.source,
                    signed=m.signed, size=size, mismatched=mismatched, hardware_comp=m.hardware_comp,
                    protocol=protocol(load_id), refused=refused, format=m.format, platforms=platforms,
                    evidence=m.evidence)
        problems = [f"{where}: component {r}" for r in refused]
        return load, "; ".join(problems) or None

    def _bad_copy(self, name: str) -> str | None:
        """Why the copies of `name` that exist are never served (all of them judged bad); None if there are none."""
        key = (name or "").replace("\\", "/").lstrip("/").lower()
        copies = [e for e in self._by_name.get(key, []) if e.path in self._bad]
        copies += [e for e in (self._by_rel.get(key), self._by_locale.get(key)) if e is not None and e.path in self._bad]
        return self._bad[copies[0].path] if copies else None

    # ---- polling --------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Rescan if the volume changed since the last look; True if it did.  Looks at most once per poll_interval."""
        with self._lock:
            now = time.monotonic()
            if self._signature is not None and now - self._checked < self.poll_interval:
                return False
            self._checked = now
            files, _ = self._walk()
            if not self._pending and self._signature is not None and self._signature_of(files) == self._signature:
                return False
            self.scan()
            return True

    def _ensure(self) -> None:
        if self._signature is None:
            self.scan()

    # ---- lookups --------------------------------------------------------------------------------------
    def lookup(self, name: str) -> _Entry | None:
        key = (name or "").replace("\\", "/").lstrip("/").lower()
        if not key or any(part in ("", ".", "..") for part in key.split("/")):
            return None
        entry = self._by_rel.get(key) or self._by_locale.get(key)
        if entry is not None and entry.path in self._bad:
            entry = None        # never served; another intact copy of the same name may be
        if entry is not None or "/" in key:
            return entry        # a locale request is never answered from another folder
        hits = [e for e in self._by_name.get(key, []) if e.path not in self._bad]
        if not hits:
            return None
        for e in hits:
            if e.source == "root" and "/" not in e.rel:
                return e
        return hits[0]

    def resolve(self, name: str) -> Path | None:
        """The real file for a requested name (case-insensitive, one leading '/' stripped), only inside root or cache."""
        with self._lock:
            self._ensure()
            entry = self.lookup(name)
            if entry is not None and not os.path.exists(entry.path):
                self.scan()   # the file went away under us (package replaced, cache pruned): look again
                entry = self.lookup(name)
        if entry is None:
            return None
        try:
            real = entry.path.resolve(strict=True)
            roots = [self.root.resolve(strict=True)]
            if self.cache_dir.exists():
                roots.append(self.cache_dir.resolve(strict=True))
        except OSError:
            return None
        if not any(_inside(real, r) for r in roots) or not real.is_file():
            return None
        return real

    def copies(self, name: str) -> list[Path]:
        """Every file of this name in the union (packages often carry their own termNN.default.loads)."""
        with self._lock:
            self._ensure()
            return [e.path for e in self._by_name.get(Path(name).name.lower(), [])]

    def load(self, load_id: str) -> Load | None:
        with self._lock:
            self._ensure()
            key = (load_id or "").lower().removesuffix(".loads")
            return next((load for load in self.loads if load.id.lower() == key), None)

    def load_listing(self, component: str) -> list[Load]:
        """Loads whose manifest lists this component file, matched case-insensitively (term manifests excluded).

        A 79x1/2/5 phone's DeviceInformationX names its application jar, not its load (reference §0.0 item 3);
        the manifests that list the jar are what maps it back to a load ID.

        Args:
            component: a component file name as a phone or page spells it ("jar45sccp.9-4-2SR4-3.sbn").
        Returns:
            the matching loads in catalog order; [] for an empty or unlisted name.
        """
        key = (component or "").strip().lower() if isinstance(component, str) else ""
        if not key:
            return []
        with self._lock:
            self._ensure()
            return [load for load in self.loads if any(c.lower() == key for c in load.components)]

    def loads_for_model(self, model: str, protocol: str | None = None) -> list[Load]:
        """Loads (not term manifests) that run on a model, oldest first; only one protocol's when given."""
        with self._lock:
            self._ensure()
            name = normalize_model(model)
            return [load for load in self.loads if name in load.models and not load.is_term
                    and (protocol is None or load.protocol == protocol)]

    def newest_complete(self, model: str, protocol: str | None = None) -> Load | None:
        """The newest complete load for a model (of one protocol when given: versions never compare across them)."""
        done = [load for load in self.loads_for_model(model, protocol) if load.complete and load.version is not None]
        return max(done, key=lambda load: load.version) if done else None

    def term_file_for(self, load_id: str, term_name: str) -> Path | None:
        """The copy of termNN.default.loads that lists the same components as this load (a package's own)."""
        load = self.load(load_id)
        if load is None:
            return None
        want = [c.lower() for c in load.components]
        for path in self.copies(term_name):
            try:
                m = parse_manifest(path.read_bytes()[:MAX_BYTES + 1])
            except (OSError, ManifestError):
                continue
            if [n.lower() for n in m.names] == want:
                return path
        return None

    def files(self) -> list[tuple[str, Path, int]]:
        """(name as served, real path, size) for every file in the union, root first; packages themselves excluded."""
        with self._lock:
            self._ensure()
            out, seen = [], set()
            for entry in sorted(self._by_rel.values(), key=lambda e: e.rel):
                if unpacker.is_archive(entry.rel) or entry.path in self._bad:
                    continue
                seen.add(Path(entry.rel).name.lower())
                out.append((entry.rel, entry.path, entry.size))
            for _key, entry in sorted(self._by_locale.items()):
                if entry.source != "root" and entry.path not in self._bad:
                    out.append((entry.rel.split("/", 1)[1], entry.path, entry.size))
            for key, entries in sorted(self._by_name.items()):
                entries = [e for e in entries if e.path not in self._bad]
                if key in seen or not entries:
                    continue
                e = entries[0]
                if e.source != "root":
                    out.append((e.path.name, e.path, e.size))
            return out


def _in_locale_dir(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) >= 2 and bool(unpacker.LOCALE_DIR.match(parts[-2]))


def _package_files(unpacked: Path) -> list[tuple[str, Path, os.stat_result]]:
    """(name as served, path, stat) of an unpacked package: top-level files and `<locale>/<file>`."""
    out = []
    for top in sorted(os.scandir(unpacked), key=lambda e: e.name):
        try:
            if top.is_dir(follow_symlinks=False):
                out += [(f"{top.name}/{e.name}", Path(e.path), e.stat(follow_symlinks=False))
                        for e in sorted(os.scandir(top.path), key=lambda e: e.name) if e.is_file(follow_symlinks=False)]
            elif top.is_file(follow_symlinks=False) and not top.name.startswith("."):
                out.append((top.name, Path(top.path), top.stat(follow_symlinks=False)))
        except OSError:
            continue
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _is_reg(st: os.stat_result) -> bool:
    import stat
    return stat.S_ISREG(st.st_mode)


def _safe_dir(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:80]
