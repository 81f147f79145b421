"""Whole-load progress for a phone: bytes of all its current load's files, and the time left at its running rate.

A phone fetches a load's manifest (.loads) and then each component; the dashboard wants one bar for the lot
and how long it still takes.  The sizes come from the firmware catalog (what the station will serve), the
bytes done from this phone's transfer rows.  `whole_load` is pure; `attach` reads the catalog and the store.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

log = logging.getLogger("api")

# States in which the phone is fetching (or just fetched) its current step's files; the others show no bar.
LOADING_STATES = ("configured", "downloading", "rebooting")
TRANSFERS_LOOKED_AT = 100        # a load has at most ~20 files; a few retries of each fit


def _key(name: Any) -> str:
    """A file name as the catalog matches it: case-insensitive, one leading '/' dropped (phones send both)."""
    return str(name or "").replace("\\", "/").lstrip("/").lower()


def whole_load(load_id: str, files: list[tuple[str, int]], transfers: Iterable[dict]) -> dict:
    """Progress of one load from its files and one phone's transfers (any order).

    Args:
        load_id: the load being fetched (plan[step]).
        files: (name, size) of the manifest first, then its components, as the station serves them.
        transfers: this phone's transfer rows (keys file, bytes, total, started, updated, duration, result).
    Returns:
        {"load", "files", "files_done", "bytes", "total", "rate" (bytes/s or None), "eta" (s or None)}.

    The current pass starts at this phone's latest request of the manifest: after a retry or a refusal the phone
    fetches the whole load again, so files it fetched in an earlier pass are not counted twice.  With no manifest
    request on record (pruned, or a phone that asked the components only) every transfer counts.
    """
    sizes = {_key(name): max(0, int(size)) for name, size in files}
    manifest = _key(files[0][0]) if files else ""
    rows = [t for t in transfers if _key(t.get("file")) in sizes]
    starts = [float(t.get("started") or 0) for t in rows if _key(t.get("file")) == manifest]
    since = max(starts) if starts else float("-inf")
    newest: dict[str, dict] = {}
    for t in sorted((t for t in rows if float(t.get("started") or 0) >= since),
                    key=lambda t: (float(t.get("started") or 0), int(t.get("id") or 0))):
        newest[_key(t["file"])] = t
    done, files_done, rates = 0, 0, []
    for name, t in newest.items():
        size = sizes[name]
        if t.get("result") == "complete":
            done += size
            files_done += 1
        elif t.get("result") == "running":
            done += min(size, max(0, int(t.get("bytes") or 0)))
        elapsed = float(t.get("updated") or 0) - float(t.get("started") or 0)
        if t.get("result") == "running" and elapsed > 0 and int(t.get("bytes") or 0) > 0:
            rates.append(int(t["bytes"]) / elapsed)
    if not rates:
        # between two files nothing is running: the last finished file's rate stands in for the next one's
        finished = [t for t in newest.values() if t.get("result") == "complete" and float(t.get("duration") or 0) > 0]
        if finished:
            last = max(finished, key=lambda t: float(t.get("updated") or 0))
            rates.append(sizes[_key(last["file"])] / float(last["duration"]))
    total = sum(sizes.values())
    rate = sum(rates) if rates else None
    eta = round((total - done) / rate, 1) if rate and total > done else (0.0 if total and done >= total else None)
    return {"load": load_id, "files": len(sizes), "files_done": files_done, "bytes": done, "total": total,
            "rate": round(rate, 1) if rate else None, "eta": eta}


def load_files(catalog: Any, load_id: str) -> list[tuple[str, int]] | None:
    """(name, size) of a load's manifest and components as the catalog serves them; None if it has no such load."""
    load = catalog.load(load_id)
    if load is None or load.is_term:
        return None
    out = []
    for name in [load.manifest, *load.components]:
        entry = catalog.lookup(name)
        out.append((name, entry.size if entry is not None else 0))
    return out


def platform_groups(catalog: Any, load_id: str) -> list[set[str]]:
    """The files of each platform a 7800/8800 load lists (empty for a load of one file set)."""
    load = catalog.load(load_id)
    return [{_key(n) for n in p.get("files", ())} for p in (getattr(load, "platforms", None) or [])]


def own_platform(files: list[tuple[str, int]], groups: list[set[str]], transfers: list[dict]) -> list[tuple[str, int]]:
    """The manifest and the files of the platform this phone fetches: a 7800/8800 takes only its own platform's
    (reference phone-families.md §1.2), so the other platforms' bytes are never its to wait for.  Before it
    fetched a component the first platform stands in."""
    if not groups:
        return files
    fetched = {_key(t.get("file")) for t in transfers}
    chosen = next((g for g in groups if fetched & g), groups[0])
    return [f for i, f in enumerate(files) if i == 0 or _key(f[0]) in chosen]


def attach(phones: list[dict], store: Any, catalog: Any) -> list[dict]:
    """Set each phone doc's "progress" (whole_load) while it fetches a load the catalog knows, else None.

    `catalog` None (unavailable) leaves every progress None: the page then shows the running file alone."""
    for doc in phones:
        doc["progress"] = None
        plan, step = doc.get("plan") or [], int(doc.get("step") or 0)
        if catalog is None or doc.get("state") not in LOADING_STATES or not 0 <= step < len(plan):
            continue
        try:
            files = load_files(catalog, plan[step])
        except Exception as exc:  # a catalog that cannot answer leaves the bar off, never the phone list
            log.warning("load progress unavailable for %s: %s", plan[step], exc)
            continue
        if files:
            transfers = store.transfers.recent(mac=doc["mac"], limit=TRANSFERS_LOOKED_AT)
            files = own_platform(files, platform_groups(catalog, plan[step]), transfers)
            doc["progress"] = whole_load(plan[step], files, transfers)
    return phones
