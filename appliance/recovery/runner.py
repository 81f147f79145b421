"""Tracker thread inside the file-service process: tails the events table by id and publishes phone states.

The same tracker answers the file service's config requests between its rounds (live.py), so the
round's period only bounds how fresh the dashboard is, not which load a phone is told to take.
"""
from __future__ import annotations

import os
import threading
import time

from appliance import events as E

from .live import ORIGIN_KEY, Live, known_loads, make_tracker
from .plan import Chooser
from .webpoll import WebPoller

CURSOR_KEY = "recovery.cursor"


def web_port(cfg) -> int:
    """Port of the phones' own web page ([upgrade] web_port); 0 turns DeviceInformationX polling off."""
    return int(getattr(getattr(cfg, "upgrade", None), "web_port", 80))


def start(ctx, catalog, generated=None) -> threading.Thread:
    store, cfg = ctx.store, ctx.config
    known = known_loads(store)
    tracker = make_tracker(catalog, cfg, known)
    port = web_port(cfg)
    web = WebPoller(port=port) if port else None

    def publish(outs):
        for o in outs:
            p = tracker.phones[o["mac"]]
            data = {k: v for k, v in o.items() if k not in ("kind", "source", "ts", "mac")}
            store.append_events([(o["ts"], "tracker", o["kind"], p.mac, data)])
            if o["kind"] == E.PHONE_LOAD:     # a load learned between states re-plans the phone
                store.upsert_phone(p.mac, current_load=p.current, target_load=p.target, plan=p.plan, step=p.step)
            elif o["kind"] == E.PHONE_STATE:
                store.upsert_phone(p.mac, model=p.model, ip=p.ip, current_load=p.current, target_load=p.target,
                                   plan=p.plan, step=p.step, state=p.state, diagnosis=p.diagnosis or None,
                                   hints={"timeline": p.timeline[-50:]})

    def on_event(ev):
        if web is not None and ev["kind"] == E.DHCP_ACK and ev.get("mac") and ev.get("ip"):
            web.poll(str(ev["mac"]).lower(), ev["ip"])

    cursor = int(store.get(CURSOR_KEY, 0) or 0)
    live = Live(store, tracker, cursor, publish, on_event)
    store.put(ORIGIN_KEY, {"pid": os.getpid(), "cursor": cursor, "known": known})
    if generated is not None and isinstance(getattr(generated, "choose", None), Chooser):
        generated.choose.live = live

    def loop():
        saved = cursor
        while not ctx.stopping.is_set():
            read = 0
            try:
                read = live.catch_up()
                for mac, info in (web.drain() if web is not None else []):
                    live.learn(mac, info.get("apploadid") or info.get("versionid"), "web", time.time())
                if live.cursor != saved:
                    saved = live.cursor
                    store.put(CURSOR_KEY, saved)
                live.tick(time.time())
            except Exception as exc:  # a bad row must never stop tracking
                ctx.log.warning("tracker: %s", exc)
            ctx.stopping.wait(0.05 if read >= 500 else 0.5)
        if web is not None:
            web.close()

    th = threading.Thread(target=loop, name="recovery-tracker", daemon=True)
    th.start()
    return th
