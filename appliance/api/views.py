"""Store rows -> the JSON shapes the API serves (one place, so the API, CLI and report agree)."""
from __future__ import annotations

import json
import time
from typing import Any

from .. import problems
from ..config import Config
from ..firmware.versions import ENTERPRISE, MPP, firmware_type
from ..recovery.diagnosis import Code
from ..recovery.facts import PhoneState
from ..recovery.identify import vid_text
from ..recovery.words import STATE_WORDS
from ..store import Store
from ..text import MAX_SHOWN, cleaned, shown
from . import checkup

STALE_SECONDS = 10.0  # five missed heartbeats
# A diagnosis names files and loads in a sentence; it may run longer than one field.
MAX_DIAGNOSIS = 4 * MAX_SHOWN


def expected_services(cfg: Config) -> list[str]:
    names = ["api", "tftp"]
    if cfg.dhcp.enabled:
        names.append("dhcp")
    if cfg.dns.enabled:
        names.append("dns")
    return sorted(names)


def health(cfg: Config, store: Store, now: float | None = None, catalog: Any = None) -> dict:
    """/api/v1/health, and what `appliance status` and the container healthcheck read.

    {"ok": bool, "time", "services": [...], "guard": {...}, "pool": {...},
     "problems": [{"code", "severity": "red"|"amber", "what", "do"}]}: `ok` is false exactly when a red
    problem exists (appliance/problems.py: the station cannot do its job); the dashboard's banner shows
    `problems` as they are.  `catalog`: see checkup.facts.
    """
    now = time.time() if now is None else now
    rows = {s["name"]: s for s in store.services.all()}
    services = []
    for name in sorted(set(expected_services(cfg)) | set(rows)):
        row = rows.get(name, {})
        beat = row.get("heartbeat")
        age = None if beat is None else round(max(0.0, now - beat), 3)
        status = "down" if age is None else ("up" if age <= STALE_SECONDS else "stale")
        services.append({
            "name": name, "expected": name in expected_services(cfg), "status": status,
            "pid": row.get("pid"), "heartbeat_age": age, "started": row.get("started"),
            "last_error": row.get("last_error"), "last_error_at": row.get("last_error_at"),
            "info": row.get("info") or {},
        })
    g, p = guard(store), pool(store)
    found = checkup.find(cfg, store, services=services, guard=g, pool=p, now=now, catalog=catalog)
    ok = not problems.red(found)
    return {"ok": ok, "time": now, "services": services, "guard": g, "pool": p,
            "problems": [x.as_dict() for x in found]}


POOL_COUNTS = ("size", "phones", "others", "others_share", "others_free", "quarantined", "free")


def pool(store: Store) -> dict:
    """DHCP's pool use as the service last published it: who holds it, and whether a phone could get an address."""
    p = store.kv.get("dhcp.status") or {}
    return {"exhausted": bool(p.get("exhausted")), "others_full": bool(p.get("others_full")),
            **{k: p.get(k) for k in POOL_COUNTS}}


def guard(store: Store) -> dict:
    """The rogue-server guard as DHCP last published it; `not_probed` says why its last probe was not sent."""
    g = store.kv.get("dhcp.guard") or {}
    return {"mode": g.get("mode"), "status": g.get("status") or "unknown", "servers": list(g.get("servers") or []),
            "serving": g.get("serving"), "not_probed": g.get("not_probed")}


def phone(row: dict, running: dict | None = None, progress: dict | None = None) -> dict:
    """A phone row as the API, dashboard and `appliance status` show it: every string cleaned (appliance/text.py).

    `progress`: its current load as a whole (api/progress.py whole_load), when the caller knows the catalog."""
    plan = row.get("plan") or []
    step = int(row.get("step") or 0)
    state = shown(row.get("state") or "seen")
    return {
        "mac": shown(row["mac"]), "model": shown(row.get("model")), "ip": shown(row.get("ip")),
        "hostname": shown(row.get("hostname")), "vendor_class": shown(row.get("vendor_class")),
        "first_seen": row["first_seen"], "last_seen": row["last_seen"],
        "load_before": shown(row.get("load_before")), "current_load": shown(row.get("current_load")),
        "load_source": load_source(row), "target_load": shown(row.get("target_load")),
        "plan": [shown(str(p)) for p in plan], "step": step, "steps": len(plan),
        "state": state, "state_words": STATE_WORDS.get(state, state),
        "diagnosis": shown(row.get("diagnosis"), MAX_DIAGNOSIS), "transfer": transfer(running) if running else None,
        "progress": progress, "vid": vid(row),
        "firmware": firmware_type(row.get("current_load")), "target_firmware": firmware_type(row.get("target_load")),
        "conversion": conversion(row),
    }


# How the tracker learned a phone's current load (its memory's "how") -> the word the API and dashboard show.
LOAD_SOURCES = ("step", "settled", "web", "cdp", "lldp", "agent")


def _memory(row: dict) -> dict:
    """The core's memory of the phone (recovery/memory.py) from the row's hints (a dict or its JSON)."""
    hints = row.get("hints")
    if isinstance(hints, str):
        try:
            hints = json.loads(hints)
        except ValueError:
            hints = None
    memory = hints.get("memory") if isinstance(hints, dict) else None
    return memory if isinstance(memory, dict) else {}


def conversion(row: dict) -> str | None:
    """A move between Enterprise and multiplatform firmware ([upgrade] convert), as its own result: "converted"
    (done, on the other kind's target), "converting", "refused" (stuck: no licence, a model or VID Cisco excludes;
    the diagnosis says which), None for a phone no conversion concerns."""
    memory = _memory(row)
    note = memory.get("note")
    if isinstance(note, list) and note and note[0] == Code.CONVERT_REFUSED.value:
        return "refused"
    started = memory.get("converted_from")
    if started not in (ENTERPRISE, MPP):
        return None
    now = firmware_type(row.get("current_load"))
    done = row.get("state") == PhoneState.DONE.value and row.get("current_load") == row.get("target_load")
    return "converted" if done and now not in (None, started) else "converting"


def vid(row: dict) -> str | None:
    """The phone's hardware version ("V20") as its web page gave it, None when unknown: it sets the oldest load
    the phone will run (firmware/floors.toml)."""
    return vid_text(_memory(row).get("vid"))


def load_source(row: dict) -> str | None:
    """Where current_load comes from: "step" (installed here), "settled" (took a config naming it, fetched
    nothing), "web" (its DeviceInformationX page), "cdp"/"lldp" (its own announcement: a claim); None if unknown."""
    if not row.get("current_load"):
        return None
    hints = row.get("hints")
    if isinstance(hints, str):
        try:
            hints = json.loads(hints)
        except ValueError:
            hints = None
    memory = hints.get("memory") if isinstance(hints, dict) else None
    how = memory.get("how") if isinstance(memory, dict) else None
    if not isinstance(how, str) or not how:
        return None
    word = how.split(",", 1)[0].strip().lower()
    return word if word in LOAD_SOURCES else "other"


def running_by_mac(store: Store) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for t in store.transfers.recent(running_only=True, limit=1000):
        if t.get("mac") and t["mac"] not in out:
            out[t["mac"]] = t
    return out


def phones(store: Store) -> list[dict]:
    running = running_by_mac(store)
    return [phone(r, running.get(r["mac"])) for r in store.phones.all()]


def transfer(row: dict) -> dict:
    keys = ("id", "proto", "client_ip", "client_port", "mac", "file", "bytes", "total", "started", "updated",
            "duration", "result")
    return {k: shown(row.get(k)) for k in keys}


def lease(row: dict) -> dict:
    keys = ("mac", "ip", "state", "expires", "hostname", "vendor_class", "client_id", "prl", "updated")
    return {k: shown(row.get(k)) for k in keys}


def timeline(store: Store, mac: str, limit: int = 500) -> list[dict]:
    return [event(r) for r in store.events.timeline(mac, limit)]


def event(row: dict) -> dict:
    data = row.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = {}
    return {"id": row["id"], "ts": row["ts"], "source": shown(row["source"]), "kind": shown(row["kind"]),
            "mac": shown(row.get("mac")), "data": cleaned(data) if isinstance(data, dict) else {}}


REPORT_FIELDS = ["mac", "model", "vid", "ip", "first_seen", "last_seen", "load_before", "load_after", "target_load",
                 "result", "diagnosis", "duration", "firmware", "conversion"]
def result(row: dict) -> str:
    """"recovered" only when the phone runs its target ("converted" when that moved it between Enterprise and
    multiplatform firmware); "failed" when stuck; "needs restart" when waiting."""
    state = row.get("state") or PhoneState.SEEN.value
    if state == PhoneState.DONE.value and row.get("current_load") and row.get("current_load") == row.get("target_load"):
        return "converted" if conversion(row) == "converted" else "recovered"
    if state == PhoneState.STUCK.value:
        return "failed"
    return "needs restart" if state == PhoneState.WAITING.value else "in progress"


def report(store: Store) -> list[dict]:
    rows = []
    for p in store.phones.all():
        rows.append({
            "mac": shown(p["mac"]), "model": shown(p.get("model")), "vid": vid(p), "ip": shown(p.get("ip")),
            "first_seen": _iso(p["first_seen"]), "last_seen": _iso(p["last_seen"]),
            "load_before": shown(p.get("load_before")), "load_after": shown(p.get("current_load")),
            "target_load": shown(p.get("target_load")), "result": result(p),
            "diagnosis": shown(p.get("diagnosis"), MAX_DIAGNOSIS), "duration": round(p["last_seen"] - p["first_seen"], 1),
            "firmware": firmware_type(p.get("current_load")), "conversion": conversion(p),
        })
    return rows


def _iso(ts: Any) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(ts)))
