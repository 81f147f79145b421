"""Tracker thread inside the file-service process: tails the events table by id and publishes phone states.

The same tracker answers the file service's config requests between its rounds (live.py), so the
round's period only bounds how fresh the dashboard is, not which load a phone is told to take.
"""
from __future__ import annotations

import os
import threading
import time

from appliance import events as E

from .live import ORIGIN_KEY, Live, make_tracker, saved_phones, without_timeline
from .plan import Chooser
from .webpoll import WebPoller

CURSOR_KEY = "recovery.cursor"
REPLAY_MAX = 20_000
IDLE_S = 0.25     # also how soon a lease starts its DeviceInformationX poll, which must beat the config request


def web_port(cfg) -> int:
    """Port of the phones' own web page ([upgrade] web_port); 0 turns DeviceInformationX polling off."""
    return int(getattr(getattr(cfg, "upgrade", None), "web_port", 80))


def resume_from(saved_cursor: int, phones) -> int:
    """Where a restarted tracker reads the bus from.  The saved cursor can be ahead of a phone's memory
    (it is saved each round, the memory only when the phone changes state, and a kill -9 lands
    anywhere), so go back to the oldest memory of a phone still under way, at most REPLAY_MAX
    events; Live skips each phone's events that its memory already holds."""
    behind = [p.applied for p in phones if p.applied and p.state not in ("done", "stuck")]
    return max(0, min([saved_cursor, *behind]), saved_cursor - REPLAY_MAX)


def start(ctx, catalog, generated=None) -> threading.Thread:
    store, cfg = ctx.store, ctx.config
    saved = saved_phones(store)
    tracker = make_tracker(catalog, cfg, saved)
    port = web_port(cfg)

    def learned(mac: str, info: dict[str, str]) -> None:
        try:
            live.learn(mac, info.get("apploadid") or info.get("versionid") or "", "web", time.time())
        except Exception as exc:  # a store error must not end the poll thread silently
            ctx.log.warning("tracker: %s from its web page: %s", mac, exc)

    web = WebPoller(port=port, deliver=learned) if port else None

    def publish(outs):
        for o in outs:
            p = tracker.phones[o["mac"]]
            p.applied = live.fed_upto        # a successor replays this phone's events after it
            data = {k: v for k, v in o.items() if k not in ("kind", "source", "ts", "mac")}
            store.append_events([(o["ts"], "tracker", o["kind"], p.mac, data)])
            if o["kind"] == E.PHONE_LOAD:     # a load learned between states re-plans the phone
                store.upsert_phone(p.mac, current_load=p.current, target_load=p.target, plan=p.plan, step=p.step,
                                   hints={"timeline": p.timeline[-50:], "memory": p.memory()})
            elif o["kind"] == E.PHONE_STATE:
                store.upsert_phone(p.mac, model=p.model, ip=p.ip, current_load=p.current, target_load=p.target,
                                   plan=p.plan, step=p.step, state=p.state, diagnosis=p.diagnosis or None,
                                   hints={"timeline": p.timeline[-50:], "memory": p.memory()})

    def on_event(ev):
        if web is not None and ev["kind"] == E.DHCP_ACK and ev.get("mac") and ev.get("ip"):
            web.poll(str(ev["mac"]).lower(), ev["ip"])

    cursor = resume_from(int(store.get(CURSOR_KEY, 0) or 0), tracker.phones.values())
    live = Live(store, tracker, cursor, publish, on_event)
    store.put(ORIGIN_KEY, {"pid": os.getpid(), "cursor": cursor, "phones": without_timeline(saved)})
    if generated is not None and isinstance(getattr(generated, "choose", None), Chooser):
        generated.choose.live = live

    def loop():
        saved = cursor
        while not ctx.stopping.is_set():
            read = 0
            try:
                read = live.catch_up()
                if live.cursor != saved:
                    saved = live.cursor
                    store.put(CURSOR_KEY, saved)
                live.tick(time.time())
            except Exception as exc:  # a bad row must never stop tracking
                ctx.log.warning("tracker: %s", exc)
            ctx.stopping.wait(0.05 if read >= 500 else IDLE_S)
        if web is not None:
            web.close()

    th = threading.Thread(target=loop, name="recovery-tracker", daemon=True)
    th.start()
    return th
