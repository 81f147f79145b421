"""`appliance firmware list|verify|manifest|synth`: what the station has, what is missing, and test loads."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from ..config import ConfigError
from ..recovery import validate
from ..text import clean
from . import synth
from .catalog import Catalog
from .versions import SR_FORM_MAINT, family

EXIT_INCOMPLETE = 1
EXIT_CONFIG = 2


def register(subparsers) -> None:
    p = subparsers.add_parser("firmware", help="firmware library: list, verify, manifest, synth")
    sub = p.add_subparsers(dest="firmware_cmd", required=True, metavar="CMD")
    ls = sub.add_parser("list", help="print the catalog of loads")
    ls.add_argument("--json", action="store_true", help="machine-readable catalog")
    ls.set_defaults(func=cmd_list)
    vf = sub.add_parser("verify", help="list incomplete loads with their missing files; exit 1 if any")
    vf.add_argument("--manifest", help="also check every file against a kit's manifest (from `firmware manifest`)")
    vf.set_defaults(func=cmd_verify)
    mf = sub.add_parser("manifest", help="JSON of every file (size, sha256) and every load, for kits")
    mf.add_argument("--root", help="firmware directory (default [tftp] root from the config)")
    mf.set_defaults(func=cmd_manifest)
    sy = sub.add_parser("synth", help="write a synthetic load (tests, demo, benchmarks)")
    sy.add_argument("dest", help="directory to write into")
    sy.add_argument("load_id", help="load ID, e.g. SCCP45.9-4-2SR4-3S")
    sy.add_argument("--size", type=int, default=256 * 1024, help="total component bytes (default 262144)")
    sy.add_argument("--components", type=int, default=5)
    sy.add_argument("--unsigned", action="store_true", help="no signature headers")
    sy.add_argument("--term", action="store_true", help="also write the termNN.default.loads files (loose form)")
    kind = sy.add_mutually_exclusive_group()
    kind.add_argument("--zip", action="store_true", help="as a cmterm-*.zip package")
    kind.add_argument("--cop", action="store_true", help="as a .cop.sgn package")
    sy.set_defaults(func=cmd_synth)
    p.set_defaults(needs_config=False)


def _config(args):
    try:
        return validate.load(args.config, resolve_network=False)   # firmware needs no interface
    except ConfigError as exc:
        print(f"appliance: bad config: {exc}", file=sys.stderr)
        return None


def _catalog(args):
    cfg = _config(args)
    if cfg is None:
        return None
    cat = Catalog.from_config(cfg)
    cat.scan()
    return cat


def human_version(key: tuple[int, ...] | None) -> str | None:
    """A version key as Cisco writes it: (8, 5, 2, 1, 0) -> "8.5(2)SR1", (9, 4, 2, 4, 3) -> "9.4(2)SR4-3".

    The build is shown only after an SR, the form versions.version_key reads back; a 7940/60 SR-form load of an
    unknown maintenance release (versions.SR_FORM_MAINT stands in for it) is shown without one ("8.2 SR5").
    None for no version (term files, IDs the station does not understand).
    """
    if not key or len(key) < 5:
        return None
    major, minor, maint, sr, build = key[:5]
    if maint == SR_FORM_MAINT and sr:
        return f"{major}.{minor} SR{sr}"
    text = f"{major}.{minor}({maint})"
    if sr:
        text += f"SR{sr}" + (f"-{build}" if build else "")
    return text


_DIGEST = re.compile(r"-[0-9a-f]{16}$")


def _origin(cat: Catalog, path: Path) -> str:
    """Where one copy of a file comes from: "root" (loose on the volume) or the package it was unpacked from."""
    try:
        rel = path.relative_to(cat.cache_dir)
    except ValueError:
        return "root"
    # the cache keeps each package in "<package name>-<16 hex digits of its identity>" (catalog._unpacked)
    return _DIGEST.sub("", rel.parts[0]) if rel.parts else "root"


def duplicates(cat: Catalog, name: str) -> dict | None:
    """{"served": origin, "others": [origins]} when `name` is found more than once, else None.

    The served copy is the one the catalog's lookup gives a phone asking for `name` (a loose file in the root
    first, else the first package).  Term files are not asked this way: which copy a phone gets depends on its
    plan (see term_defaults).
    """
    copies = cat.copies(name)
    entry = cat.lookup(name)
    if len(copies) < 2 or entry is None:
        return None
    origins = [_origin(cat, p) for p in copies]
    served = entry.source
    others = list(origins)
    if served in others:
        others.remove(served)
    else:
        others = origins[1:]
    return {"served": served, "others": others}


def term_defaults(cat: Catalog, cfg) -> dict[str, list[str]]:
    """Which copy of each termNN.default.loads a factory-reset phone gets: {"<term>|<source>": [models]}.

    A factory-reset phone asks its term file before the station knows its load; the file service answers with
    the copy listing the load the recovery core's defaults name for that model (generated.py's term_file), so
    the answer is asked of the same core here, never decided twice.
    """
    from ..recovery.facts import CatalogChanged
    from ..recovery.station import make_tracker
    from .models import MODELS

    core = make_tracker(cat, cfg)
    core.handle(CatalogChanged(0.0), 0.0)
    defaults = dict(core.defaults())
    served: dict[str, list[str]] = {}
    for model in MODELS:
        if not model.term:
            continue
        load_id = defaults.get(model.name)
        first = cat.load(load_id) if load_id else None
        if first is None:
            continue
        want = [c.lower() for c in first.components]
        copy = next((t for t in cat.terms if t.manifest.lower() == model.term.lower()
                     and [c.lower() for c in t.components] == want), None)
        if copy is not None:
            served.setdefault(f"{copy.manifest.lower()}|{copy.source}", []).append(model.name)
    return served


def _lists(cat: Catalog, term) -> str | None:
    """The load whose components a term file lists (a package's own term file lists its load's)."""
    want = [c.lower() for c in term.components]
    return next((load.id for load in cat.loads if [c.lower() for c in load.components] == want), None)


def _files(cat: Catalog, load) -> list[dict]:
    """A load's files with their roles, and, for a name found twice, which copy is served."""
    out = [{"name": load.manifest, "role": "term file" if load.is_term else "manifest",
            "missing": False, "copies": None if load.is_term else duplicates(cat, load.manifest)}]
    for c in load.components:
        out.append({"name": c, "role": "component", "missing": c in load.missing, "copies": duplicates(cat, c)})
    return out


def _short(models: list[str]) -> str:
    return ", ".join(m.removeprefix("CP-") for m in models) or "?"


def catalog_doc(cat: Catalog, cfg) -> dict:
    """`firmware list --json`: every load and term file with versions as text, files with roles, copies served."""
    served = term_defaults(cat, cfg)
    loads = []
    for load in cat.loads:
        doc = load.as_dict()
        doc["version"] = human_version(load.version)
        doc["contents"] = _files(cat, load)
        loads.append(doc)
    terms = []
    for term in cat.terms:
        doc = term.as_dict()
        doc["version"] = None
        doc["contents"] = _files(cat, term)
        doc["lists"] = _lists(cat, term)
        doc["served_to"] = served.get(f"{term.manifest.lower()}|{term.source}", [])
        terms.append(doc)
    return {"root": str(cat.root), "loads": loads, "terms": terms, "problems": list(cat.problems)}


LIST_HEADER = ("LOAD", "VERSION", "PROTOCOL", "STATE", "FILES", "BYTES", "MODELS", "FROM")


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalog: a header, one line per load (human version) with its files and their roles, then the
    term files, saying which copy a factory-reset phone is served; `--json` the same as data.  Exit 2 on a bad
    config."""
    cfg = _config(args)
    if cfg is None:
        return EXIT_CONFIG
    cat = Catalog.from_config(cfg)
    cat.scan()
    doc = catalog_doc(cat, cfg)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"firmware under {clean(str(cat.root))}: {len(doc['loads'])} load(s), {len(doc['terms'])} term file(s)")
    if not doc["loads"]:
        print("no loads: copy the cmterm-*.zip (or .cop.sgn, or loose files) of your phones' loads here")
    else:
        print(f"{LIST_HEADER[0]:28} {LIST_HEADER[1]:13} {LIST_HEADER[2]:8} {LIST_HEADER[3]:10} "
              f"{LIST_HEADER[4]:>5} {LIST_HEADER[5]:>11}  {LIST_HEADER[6]:20} {LIST_HEADER[7]}")
    for load in doc["loads"]:
        state = "complete" if load["complete"] else "INCOMPLETE"
        print(f"{clean(load['id']):28} {load['version'] or '-':13} {load['protocol'] or '-':8} {state:10} "
              f"{len(load['components']):>5} {load['size']:>11}  {clean(_short(load['models'])):20} "
              f"{clean(load['source'])}")
        _print_files(load)
        for why in load["refused"]:
            print(f"    refused: {clean(why, 512)}")
        for line in platform_lines(load):
            print(f"    {line}")
        if load["evidence"]:
            gates = ", ".join(f"{clean(k, 40)}={clean(str(v), 60)}" for k, v in load["evidence"].items())
            print(f"    gates in the manifest (shown, not enforced: their meaning is not confirmed): {gates}")
        if load["terms_missing"]:
            print(f"    no {clean(', '.join(load['terms_missing']))}: factory-reset phones cannot start from this load")
    if doc["terms"]:
        print("term files (what a factory-reset phone asks for first; each package brings its own copy):")
        print(f"    {'TERM FILE':24} {'LISTS':24} {'FROM':40} SERVED")
        for term in doc["terms"]:
            served = (f"to a factory-reset {_short(term['served_to'])}" if term["served_to"]
                      else "only to a phone whose plan starts with the load it lists")
            state = "" if term["complete"] else f" (INCOMPLETE: missing {clean(', '.join(term['missing']), 512)})"
            print(f"    {clean(term['manifest']):24} {clean(term['lists'] or '(no load here)'):24} "
                  f"{clean(term['source']):40} {served}{state}")
    for p in doc["problems"]:
        print(f"problem: {clean(p, 1024)}", file=sys.stderr)
    return 0


def _where(origin: str) -> str:
    return "loose in the firmware folder" if origin == "root" else f"in {clean(origin)}"


def _print_files(load: dict) -> None:
    for f in load["contents"]:
        note = " (MISSING)" if f["missing"] else ""
        copies = f["copies"]
        if copies:
            others = ", ".join(_where(o) for o in copies["others"])
            note += f" (found {1 + len(copies['others'])} times: the copy {_where(copies['served'])} is served;" \
                    f" also {others})"
        print(f"    {f['role']:10} {clean(f['name'])}{note}")


def platform_lines(load: dict) -> list[str]:
    """One line per platform of a 7800/8800 load: complete, or what it misses and which files are not served."""
    out = []
    for p in load.get("platforms") or []:
        if p["complete"]:
            out.append(f"{clean(p['name'], 40)}: complete ({clean(', '.join(p['files']), 512)})")
            continue
        why = []
        if p["missing"]:
            why.append(f"missing {', '.join(p['missing'])}")
        if p["refused"]:
            why.append(f"not usable: {'; '.join(p['refused'])}")
        out.append(f"{clean(p['name'], 40)}: INCOMPLETE, {clean('; '.join(why), 1024)} "
                   "(phones of this platform cannot take the load)")
    return out


class _Progress:
    """A progress line on a terminal while `verify` hashes 7800/8800 files (a library can hold gigabytes)."""

    def __init__(self, stream):
        self.stream = stream
        self.shown = 0.0

    def __call__(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done < total and now - self.shown < 0.2:
            return
        self.shown = now
        pct = 100 * done // total if total else 100
        tail = f" {clean(name, 48)}" if name and done < total else ""
        self.stream.write(f"\rchecking firmware: {done >> 20}/{total >> 20} MiB ({pct}%){tail}\x1b[K")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 1 when a load is incomplete, a file is damaged (a 7800/8800 file whose SHA-256 is not its header's),
    or a manifest/package could not be read: each stops phones in the field.  Every 7800/8800 file is hashed
    again (not taken from the cache), with a progress line when stderr is a terminal."""
    cfg = _config(args)
    if cfg is None:
        return EXIT_CONFIG
    cat = Catalog.from_config(cfg)
    cat.rehash = True
    if sys.stderr.isatty():
        cat.progress = _Progress(sys.stderr)
    cat.scan()
    bad: list = [load for load in [*cat.loads, *cat.terms] if not load.complete]
    if args.manifest:
        changed = manifest_problems(Path(cat.root), Path(args.manifest))
        for problem in changed:
            print(f"manifest: {problem}")
        bad += changed
    for load in (b for b in bad if not isinstance(b, str)):
        where = f" (in {load.source})" if load.is_term else ""
        if load.platforms:
            for line in platform_lines(load.as_dict()):
                if "INCOMPLETE" in line:
                    print(f"{clean(load.id)} {line}")
            continue
        print(f"{load.id}{where}: missing {', '.join(load.missing + load.refused)}")
    for load in cat.loads:
        if load.terms_missing:
            print(f"note: {load.id} has no {', '.join(load.terms_missing)} (factory-reset phones cannot start from it)")
    for p in cat.problems:
        print(f"problem: {p}")
    if _empty(cat) or bad or cat.problems:
        return EXIT_INCOMPLETE
    print(f"ok: {len(cat.loads)} loads and {len(cat.terms)} term files complete under {cat.root}")
    return 0


def _empty(cat: Catalog) -> bool:
    """An empty library recovers no phone: say so in the words of the station's red "no-firmware" problem
    (appliance/problems.py, the one place that says what to copy where)."""
    if cat.loads:
        return False
    from ..problems import Library, Station, empty_library

    p = empty_library(Station(config="", interface="", firmware_root=str(cat.root)), Library())
    print(f"{p.what}\n{p.do}")
    return True


def manifest_problems(root: Path, manifest: Path) -> list[str]:
    """Files under `root` that differ from a kit's manifest: missing, changed (size or sha256), or added.

    Args:
        root: the firmware directory.
        manifest: JSON written by `appliance firmware manifest`.
    Returns:
        one line per difference, [] when the directory is exactly what the kit shipped.
    """
    try:
        doc = json.loads(manifest.read_text())
        listed = {f["path"]: f for f in doc["files"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{manifest} cannot be read as a manifest: {exc}"]
    problems = []
    present = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    for rel, entry in sorted(listed.items()):
        path = present.get(rel)
        if path is None:
            problems.append(f"{rel} is missing")
        elif path.stat().st_size != entry.get("size") or _sha256(path) != entry.get("sha256"):
            problems.append(f"{rel} differs from the manifest (size or sha256)")
    problems += [f"{rel} is not in the manifest" for rel in sorted(set(present) - set(listed))]
    return problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_manifest(args: argparse.Namespace) -> int:
    if args.root:
        root = Path(args.root)
    else:
        cfg = _config(args)
        if cfg is None:
            return EXIT_CONFIG
        root = Path(cfg.tftp.root)
    if not root.is_dir():
        print(f"appliance: firmware root {root} is not a directory", file=sys.stderr)
        return EXIT_CONFIG
    with tempfile.TemporaryDirectory(prefix="fw-manifest-") as tmp:
        cat = Catalog(root, Path(tmp))
        cat.scan()
        files = []
        for p in sorted(q for q in root.rglob("*") if q.is_file() and not q.is_symlink()):
            files.append({"path": p.relative_to(root).as_posix(), "size": p.stat().st_size, "sha256": _sha256(p)})
        doc = {"root": str(root), "files": files,
               "loads": [{k: v for k, v in load.as_dict().items() if k in ("id", "complete", "missing", "models", "source")}
                         for load in [*cat.loads, *cat.terms]],
               "problems": cat.problems}
    print(json.dumps(doc, indent=2))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    if family(args.load_id) is None:
        print(f"appliance: {args.load_id!r} is not a load ID this station understands", file=sys.stderr)
        return EXIT_CONFIG
    kw = dict(size_bytes=max(1, args.size), components=max(1, args.components), signed=not args.unsigned)
    if args.zip:
        paths = synth.write_zip(args.dest, args.load_id, **kw)
    elif args.cop:
        paths = synth.write_cop(args.dest, args.load_id, **kw)
    else:
        paths = synth.write_load(args.dest, args.load_id, term=args.term, **kw)
    for p in paths:
        print(p)
    return 0
