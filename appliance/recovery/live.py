"""A Tracker brought up to date from the bus on demand, so a config names the right step the moment it is asked.

A phone that has taken a load reboots and asks for SEP<MAC>.cnf.xml tens of
milliseconds after its lease; a tracker that reads the bus on a timer still
names the load the phone now runs, and the phone, which fetches nothing it
already has, would stay there.  So whoever renders a config first drains the
bus into its tracker under a lock (one indexed read, no write), then asks the
tracker what the phone's next config names (`Tracker.offer`).

The file service's parent process holds the publishing tracker (runner.py);
each TFTP worker process keeps a read-only shadow fed from the same events
since the parent's starting point (ORIGIN_KEY), so both answer the same.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from appliance import events as E

from .tracker import Phone, Tracker

log = logging.getLogger("recovery")

ORIGIN_KEY = "recovery.origin"   # {"pid", "cursor", "phones"}: where and from what the publishing tracker started
BATCH = 200
MAX_BATCHES = 250                # bounds one catch-up; the rest waits for the next call


def make_tracker(catalog, cfg, saved: list[dict] | None = None) -> Tracker:
    """The Tracker with its plan, rejection hint and reset keys drawn from the catalog and config.

    `saved`: phones-table rows recorded before this start (the same snapshot in every process)."""
    from .plan import plan_for

    def replan(p):
        """After a rejection the phone is treated as unknown-load and sent through the stone
        (of the protocol its known load says it runs)."""
        steps = plan_for(catalog, cfg, p.model, p.current).steps
        if p.rejected and steps and steps[0] in p.rejected:
            steps = plan_for(catalog, cfg, p.model, p.current, as_unknown=True, strategy="stepwise").steps
        return steps

    def hint(p):
        plan = plan_for(catalog, cfg, p.model, p.current, as_unknown=True)
        if plan.missing:
            return plan.missing
        return f"move to the stone {plan.steps[0]}" if len(plan.steps) > 1 else ""

    def reset_keys(model):
        try:
            from appliance.firmware.models import by_name
            m = by_name(model) if model else None
            return m.reset if m else None
        except Exception:
            return None

    tracker = Tracker(replan, hint, reset_keys)
    restored = []
    for row in saved or []:
        try:
            restored.append(Phone.from_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("tracker: phone %s not restored: %r", row.get("mac"), exc)
    tracker.restore(restored)
    return tracker


def saved_phones(store) -> list[dict]:
    """The phones table as the last run left it, read once at start so every process resumes alike."""
    try:
        return store.phones()
    except Exception as exc:
        log.warning("tracker: phones table not read: %r", exc)
        return []


def without_timeline(rows: list[dict]) -> list[dict]:
    """The snapshot for the workers' shadows: only the publishing tracker keeps timelines (the part that grows)."""
    keep = ("mac", "model", "ip", "current_load", "plan", "step", "state", "diagnosis")
    return [{k: r.get(k) for k in keep} | {"hints": {"memory": (r.get("hints") or {}).get("memory") or {}}}
            for r in rows]


def flatten(row: dict) -> dict:
    return {**(row.get("data") or {}), "kind": row["kind"], "ts": row["ts"],
            "mac": row.get("mac") or (row.get("data") or {}).get("mac")}


def pending_from(tracking) -> Callable[[str], list[dict]]:
    """This process's FILE_* events not yet on the bus in `tracking` (appliance/tftp/tracking.py) for one MAC:
    queued, or taken by a flush still writing them (a config asked in that window once named a stale step)."""
    def pending(mac: str) -> list[dict]:
        with tracking.lock:
            queued = tracking.inflight + tracking.events
        return [{**data, "kind": kind, "ts": ts, "mac": m} for ts, _src, kind, m, data in queued
                if (m or data.get("mac")) == mac]
    return pending


class Live:
    """`tracker` fed from `store`'s events after `cursor`; `publish` (the parent only) writes its outputs."""

    def __init__(self, store, tracker: Tracker, cursor: int, publish: Callable[[list[dict]], None] | None = None,
                 on_event: Callable[[dict], None] | None = None):
        self.store, self.tracker, self.cursor = store, tracker, cursor
        self.fed_upto = cursor       # every event up to this id has been fed (rows go in time order)
        self.publish, self.on_event = publish, on_event
        self.lock = threading.RLock()

    def _out(self, outs: list[dict]) -> None:
        if outs and self.publish is not None:
            self.publish(outs)

    def catch_up(self) -> int:
        """Feed every event appended since the last call; returns how many rows were read."""
        read = 0
        with self.lock:
            for _ in range(MAX_BATCHES):
                rows = self.store.events_after(self.cursor, BATCH)
                read += len(rows)
                ids, fed, k = [r["id"] for r in rows], set(), 0
                # one writer's batch is not always in time order (transfers and misses flush separately)
                for row in sorted(rows, key=lambda r: (r["ts"], r["id"])):
                    self.cursor = max(self.cursor, row["id"])
                    fed.add(row["id"])
                    while k < len(ids) and ids[k] in fed:
                        self.fed_upto, k = ids[k], k + 1
                    try:
                        self._feed(row)
                    except Exception as exc:  # a bad row must never stop tracking
                        log.warning("tracker: event %s: %r", row.get("id"), exc)
                if len(rows) < BATCH:
                    break
        return read

    def _feed(self, row: dict) -> None:
        ev = flatten(row)
        if row.get("source") == "tracker":
            # the parent's own outputs; a shadow still takes what it learned from the phones' web pages
            if self.publish is None and ev["kind"] == E.PHONE_LOAD and ev.get("how") == "web" and ev.get("mac"):
                self.tracker.learn(str(ev["mac"]).lower(), ev.get("load") or "", "web", float(ev["ts"]))
            return
        known = self.tracker.phones.get(str(ev.get("mac") or "").lower()
                                        or self.tracker.by_ip.get(ev.get("ip") or "", ""))
        if known is not None and known.resume_after >= row["id"]:
            return       # already in the memory this phone was restored with
        self._out(self.tracker.feed(ev))
        if self.on_event is not None:
            self.on_event(ev)

    def learn(self, mac: str, load: str, how: str, ts: float) -> None:
        with self.lock:
            self._out(self.tracker.learn(mac, load, how, ts))

    def tick(self, now: float) -> None:
        with self.lock:
            self._out(self.tracker.tick(now))

    def offer(self, mac: str, pending: list[dict] = ()) -> tuple[bool, str | None]:
        """Catch up, then what the phone's config names right now: (known, load)."""
        with self.lock:
            self.catch_up()
            self.tick(time.time())
            return self.tracker.offer(mac, time.time(), pending)


def shadow(store, catalog, cfg) -> Live | None:
    """A read-only Live replaying from where this file service's publishing tracker started (None until it has)."""
    origin = store.get(ORIGIN_KEY)
    if not isinstance(origin, dict) or origin.get("pid") not in (os.getpid(), os.getppid()):
        return None
    live = Live(store, make_tracker(catalog, cfg, origin.get("phones")), int(origin.get("cursor") or 0))
    live.catch_up()
    return live
