"""Tracker thread inside the file-service process: tails the events table by id."""
from __future__ import annotations

import threading
import time

from appliance import events as E

from .plan import plan_for
from .tracker import Tracker
from .webpoll import WebPoller

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

    def reset_keys(model):
        try:
            from appliance.firmware.models import by_name
            m = by_name(model) if model else None
            return m.reset if m else None
        except Exception:
            return None

    tracker = Tracker(replan, hint, reset_keys)
    web = WebPoller(port=int(getattr(getattr(cfg, "recovery", None), "web_port", 80) or 80))

    def publish(outs):
        for o in outs:
            p = tracker.phones[o["mac"]]
            data = {k: v for k, v in o.items() if k not in ("kind", "source", "ts", "mac")}
            store.append_events([(o["ts"], "tracker", o["kind"], p.mac, data)])
            if o["kind"] != E.PHONE_STATE:
                continue
            store.upsert_phone(p.mac, model=p.model, ip=p.ip, current_load=p.current, target_load=p.target,
                               plan=p.plan, step=p.step, state=p.state, diagnosis=p.diagnosis or None,
                               hints={"timeline": p.timeline[-50:]})

    def loop():
        cursor = int(store.get(CURSOR_KEY, 0) or 0)
        while not ctx.stopping.is_set():
            try:
                rows = store.events_after(cursor, 500)
                # one writer's batch is not always in time order (transfers and misses flush separately)
                for row in sorted(rows, key=lambda r: (r["ts"], r["id"])):
                    cursor = max(cursor, row["id"])
                    if row.get("source") != "tracker":
                        ev = _flatten(row)
                        publish(tracker.feed(ev))
                        if ev["kind"] == E.DHCP_ACK and ev.get("mac") and ev.get("ip"):
                            web.poll(str(ev["mac"]).lower(), ev["ip"])
                for mac, info in web.drain():
                    load = info.get("apploadid") or info.get("versionid")
                    publish(tracker.learn(mac, load, "web", time.time()))
                if rows:
                    store.put(CURSOR_KEY, cursor)
                publish(tracker.tick(time.time()))
            except Exception as exc:  # a bad row must never stop tracking
                ctx.log.warning("tracker: %s", exc)
            ctx.stopping.wait(0.05 if len(rows) == 500 else 0.5)
        web.close()

    th = threading.Thread(target=loop, name="recovery-tracker", daemon=True)
    th.start()
    return th
