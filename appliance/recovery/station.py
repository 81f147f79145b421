"""Composition root of the recovery tracker: builds the Tracker, its Hub and the Deciders the file service renders with.

One Tracker lives in the file service's parent process (hub.py).  Generated
configs ask a Decider which load to name: `HubDecider` in the parent (HTTP),
`ChannelDecider` in a TFTP worker (one question on its socketpair), and
`TableDecider`, the answer from the phones table, when neither can answer
(tests, a tracker that is not up).
"""
from __future__ import annotations

import logging

from appliance.firmware.models import by_name, model_from_vendor_class
from appliance.firmware.names import classify

from . import identify
from .hub import Channel, Hub, socket_path
from .plan import plan_phone
from .tracker import Phone, Plan, Tracker
from .webpoll import WebPoller

log = logging.getLogger("recovery")


def not_upgradable(model: str) -> str | None:
    """Why a model takes no load by manifest (reference §0.0 item 10), or None."""
    m = by_name(model) if model else None
    if m is None or m.manifest:
        return None
    return (f"not upgradable by manifest ({m.name} firmware is {m.images or 'images'} files with no .loads "
            "manifest; the station cannot offer it a load: upgrade it by hand)")


def web_port(cfg) -> int:
    """Port of the phones' own web page ([upgrade] web_port); 0 turns DeviceInformationX polling off."""
    return cfg.upgrade.web_port


def make_tracker(catalog, cfg, store=None) -> Tracker:
    """The Tracker with its planner, component counts, reset keys and lease lookups drawn from catalog and store."""

    def planner(p: Phone) -> Plan:
        plan = plan_phone(catalog, cfg, p.model, p.current, p.protocol, p.rejected)
        return Plan(plan.steps, plan.missing)

    def components_of(load_id: str) -> int:
        load = catalog.load(load_id) if load_id else None
        return len(load.components) if load else 0

    def reset_keys(model: str) -> str | None:
        m = by_name(model) if model else None
        return m.reset if m else None

    def lease_of(ip: str) -> tuple[str, str] | None:
        if store is None:
            return None
        try:
            lease = store.leases.at(ip)
        except Exception as exc:
            log.warning("tracker: lease of %s not read: %s", ip, exc)
            return None
        if not lease:
            return None
        return lease["mac"], model_from_vendor_class(lease.get("vendor_class")) or ""

    return Tracker(planner, components_of, reset_keys, lease_of, not_upgradable)


def restored(store) -> list[Phone]:
    """The phones as the last run left them, so a restarted file service resumes every one."""
    out = []
    try:
        rows = store.phones.all()
    except Exception as exc:
        log.warning("tracker: phones table not read: %r", exc)
        return out
    for row in rows:
        try:
            out.append(Phone.from_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("tracker: phone %s not restored: %r", row.get("mac"), exc)
    return out


def build_hub(cfg, catalog, store) -> Hub:
    """The parent's Hub: tracker restored from the store; DeviceInformationX polls mapped to load IDs unless off."""
    tracker = make_tracker(catalog, cfg, store)
    tracker.restore(restored(store))
    hub = Hub(tracker, store, socket_path(cfg))
    port = web_port(cfg)
    if port:
        hub.identify = lambda fields: identify.from_page(fields, catalog)
        hub.web = WebPoller(port=port, deliver=hub.page)
    return hub


class TableDecider:
    """Answers from the phones table: the step its row records, else the plan for an unknown load."""

    def __init__(self, store, catalog, cfg):
        self.store, self.catalog, self.cfg = store, catalog, cfg

    def _row(self, mac: str | None, ip: str | None) -> dict | None:
        if self.store is None:
            return None
        try:
            if not mac and ip:
                lease = self.store.leases.at(ip)
                mac = lease["mac"] if lease else None
            return self.store.phones.get(mac) if mac else None
        except Exception as exc:
            log.warning("decider: phone row not read: %s", exc)
            return None

    def config(self, ip, name, mac, model) -> str | None:
        row = self._row(mac or classify(name).mac, ip)
        if row and row.get("plan"):
            steps = row["plan"]
            k = min(int(row.get("step") or 0), len(steps) - 1)
            return steps[k]
        if row and row.get("current_load") and row.get("target_load") == row.get("current_load"):
            return row["current_load"]
        plan = plan_phone(self.catalog, self.cfg, model or (row or {}).get("model") or "",
                          (row or {}).get("current_load"))
        return plan.steps[0] if plan.steps else None

    def default(self, model: str) -> str | None:
        plan = plan_phone(self.catalog, self.cfg, model, None)
        return plan.steps[0] if plan.steps else None

    def term(self, ip, term, model) -> str | None:
        return self.config(ip, term, None, model)


class HubDecider:
    """In the parent process: the tracker itself, under the hub's lock."""

    def __init__(self, hub: Hub, fallback: TableDecider):
        self.hub, self.fallback = hub, fallback

    def config(self, ip, name, mac, model) -> str | None:
        return self.hub.config(ip or "", name, mac) if ip else self.fallback.config(ip, name, mac, model)

    def default(self, model: str) -> str | None:
        return self.fallback.default(model)

    def term(self, ip, term, model) -> str | None:
        return self.hub.term(ip, term, model) if ip else self.fallback.term(ip, term, model)


class ChannelDecider:
    """In a TFTP worker: one question to the parent's tracker; the phones table if it does not answer in time."""

    def __init__(self, channel: Channel, fallback: TableDecider):
        self.channel, self.fallback = channel, fallback
        self.unanswered = 0

    def config(self, ip, name, mac, model) -> str | None:
        ok, load = self.channel.ask("config", ip=ip, name=name, mac=mac) if ip else (False, None)
        if ok:
            return load
        self.unanswered += 1
        return self.fallback.config(ip, name, mac, model)

    def default(self, model: str) -> str | None:
        return self.fallback.default(model)

    def term(self, ip, term, model) -> str | None:
        ok, load = self.channel.ask("term", ip=ip, name=term, model=model) if ip else (False, None)
        if ok:
            return load
        self.unanswered += 1
        return self.fallback.term(ip, term, model)
