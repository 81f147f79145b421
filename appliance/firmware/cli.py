"""`appliance firmware list|verify|manifest|synth`: what the station has, what is missing, and test loads."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from ..config import ConfigError
from ..recovery import validate
from . import synth
from .catalog import Catalog
from .versions import family

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


def cmd_list(args: argparse.Namespace) -> int:
    cat = _catalog(args)
    if cat is None:
        return EXIT_CONFIG
    if args.json:
        print(json.dumps({"root": str(cat.root), "loads": [load.as_dict() for load in cat.loads],
                          "terms": [t.as_dict() for t in cat.terms], "problems": cat.problems}, indent=2))
        return 0
    if not cat.loads:
        print(f"no loads under {cat.root}")
    for load in [*cat.loads, *cat.terms]:
        models = ", ".join(m.removeprefix("CP-") for m in load.models) or "?"
        state = "complete" if load.complete else "INCOMPLETE"
        print(f"{load.id:28} {load.protocol or '-':5} {state:10} {len(load.components):2} files {load.size:>11} bytes"
              f"  [{models}]  from {load.source}")
        if load.missing:
            print(f"    missing: {', '.join(load.missing)}")
        for why in load.refused:
            print(f"    refused: {why}")
        if load.terms_missing:
            print(f"    no {', '.join(load.terms_missing)}: factory-reset phones cannot start from this load")
    for p in cat.problems:
        print(f"problem: {p}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 1 when a load is incomplete or a manifest/package could not be read: both stop phones in the field."""
    cat = _catalog(args)
    if cat is None:
        return EXIT_CONFIG
    bad: list = [load for load in [*cat.loads, *cat.terms] if not load.complete]
    if args.manifest:
        changed = manifest_problems(Path(cat.root), Path(args.manifest))
        for problem in changed:
            print(f"manifest: {problem}")
        bad += changed
    for load in (b for b in bad if not isinstance(b, str)):
        where = f" (in {load.source})" if load.is_term else ""
        print(f"{load.id}{where}: missing {', '.join(load.missing + load.refused)}")
    for load in cat.loads:
        if load.terms_missing:
            print(f"note: {load.id} has no {', '.join(load.terms_missing)} (factory-reset phones cannot start from it)")
    for p in cat.problems:
        print(f"problem: {p}")
    if bad or cat.problems:
        return EXIT_INCOMPLETE
    print(f"ok: {len(cat.loads)} loads and {len(cat.terms)} term files complete under {cat.root}")
    return 0


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
