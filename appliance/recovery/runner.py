"""Tracker thread inside the file-service process: tails the events table by id."""
from __future__ import annotations

import threading
import time

from .plan import plan_for
from .tracker import Tracker

CURSOR_KEY = "recovery.cursor"


def _flatten(row: dict) -> dict:
    return {**(row.get("data") or {}), "kind": row["kind"], "ts": row["ts"], "mac": row.get("mac") or (row.get("data") or {}).get("mac")}


def start(ctx, catalog, generated=None) -> threading.Thread:
    store, cfg = ctx.store, ctx.config

    def replan(p):
        """After a rejection the phone is treated as unknown-load and sent through the stone."""
        steps = plan_for(catalog, cfg, p.model, p.current).steps
        if p.rejected and steps and steps[0] in p.rejected:
            from .plan import make_plan, target_for, _catalog_ids
            from .rules import all_rules
            target = target_for(catalog, cfg, p.model)
            steps = make_plan(p.model, None, target, _catalog_ids(catalog, p.model),
                              all_rules(list(cfg.upgrade.rules or [])), "stepwise").steps if target else []
        return steps

    def hint(p):
        plan = plan_for(catalog, cfg, p.model, None)
        if plan.missing:
            return plan.missing
        return f"move to the stone {plan.steps[0]}" if len(plan.steps) > 1 else ""

    tracker = Tracker(replan, hint)

    def publish(outs):
        for o in outs:
            p = tracker.phones[o["mac"]]
            store.append_events([(o["ts"], "tracker", "PHONE_STATE", p.mac, {"state": o["state"], "detail": o["detail"]})])
            store.upsert_phone(p.mac, model=p.model, ip=p.ip, current_load=p.current, target_load=p.target,
                               plan=p.plan, step=p.step, state=p.state, diagnosis=p.diagnosis or None,
                               hints={"timeline": p.timeline[-50:]})

    def loop():
        cursor = int(store.get(CURSOR_KEY, 0) or 0)
        while not ctx.stopping.is_set():
            try:
                rows = store.events_after(cursor, 500)
                for row in rows:
                    cursor = row["id"]
                    if row.get("source") != "tracker":
                        publish(tracker.feed(_flatten(row)))
                if rows:
                    store.put(CURSOR_KEY, cursor)
                publish(tracker.tick(time.time()))
            except Exception as exc:  # a bad row must never stop tracking
                ctx.log.warning("tracker: %s", exc)
            ctx.stopping.wait(1.0)

    th = threading.Thread(target=loop, name="recovery-tracker", daemon=True)
    th.start()
    return th
