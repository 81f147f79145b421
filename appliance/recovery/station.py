"""Composition root of the recovery core: its Library over the catalog and config, its restore, its Hub.

One Tracker lives in the file service's parent process (hub.py).  Nothing
here decides anything: it hands the core what it may ask (library.py) and
what the store remembers (phones, and the leases DHCP holds), through
`handle` like every other event.
"""
from __future__ import annotations

import logging
import time

from appliance.firmware import conversion, floors
from appliance.firmware.licences import Licences
from appliance.firmware.models import MODELS, by_name, model_from_vendor_class

from . import identify
from .facts import Lease, Restored
from .hub import Hub, socket_path
from .library import Library
from .memory import from_row
from .phone import Phone
from .plan import per_model, plan_phone
from .rules import all_rules, model_has_rule
from .tracker import Tracker
from .webpoll import WebPoller

log = logging.getLogger("recovery")


def not_upgradable(model: str) -> tuple[str, str] | None:
    """(model, what its firmware files are) when a model takes no load by manifest (reference §0.0 item 10)."""
    m = by_name(model) if model else None
    if m is None or m.manifest:
        return None
    return m.name, m.images or "images"


def web_port(cfg) -> int:
    """Port of the phones' own web page ([upgrade] web_port); 0 turns DeviceInformationX polling off."""
    return cfg.upgrade.web_port


def make_library(catalog, cfg) -> Library:
    """What the core may ask: plans, component counts per load and platform, hardware floors (floors.toml), reset
    keys, term files, over the scanned catalog."""

    def components_of(load_id: str) -> int:
        load = catalog.load(load_id) if load_id else None
        return len(load.components) if load else 0

    def platforms_of(load_id: str) -> tuple[tuple[str, ...], ...]:
        load = catalog.load(load_id) if load_id else None
        return tuple(tuple(str(f).lower() for f in p.get("files", ())) for p in load.platforms) if load else ()

    def floor(model: str, vid: str | None) -> tuple[str, str] | None:
        found = floors.floor_for(model, vid) if vid else floors.highest_floor(model)
        return (found.minimum or "", found.safe) if found else None

    def mpp_floor(model: str, vid: str | None) -> tuple[str, str] | None:
        found = floors.floor_for(model, vid, "mpp") if vid else None
        return (found.minimum or "", found.safe) if found else None

    def has_stones(model: str) -> bool:
        return model_has_rule(all_rules(cfg.upgrade.rules), model)

    def reset_keys(model: str) -> str | None:
        m = by_name(model) if model else None
        return m.reset if m else None

    def term_of(model: str) -> str | None:
        m = by_name(model) if model else None
        return m.term if m else None

    def is_7940(model: str) -> bool:
        m = by_name(model) if model else None
        return bool(m and m.is_7940)

    platform = dict(getattr(cfg.upgrade, "platform", {}) or {})
    licences = Licences(cfg.tftp.root)

    def converts(mac: str, model: str) -> str | None:
        return platform.get(mac.lower()) or (per_model(platform, model) if model else None)

    def convert_refusal(model: str, vid: str | None) -> tuple[str, str] | None:
        found = conversion.refusal(model, vid)
        return (found.kind, found.why) if found else None

    return Library(
        planner=lambda model, current, hint, rejected, floor=None, convert=None: plan_phone(
            catalog, cfg, model, current, hint, rejected, floor, convert),
        conversion=converts, licensed=licences.present, convert_refusal=convert_refusal, mpp_floor=mpp_floor,
        licence_problem=lambda mac: licences.problems().get(mac.lower()),
        components_of=components_of, platforms_of=platforms_of, floor=floor, has_stones=has_stones,
        reset_keys=reset_keys,
        upgradable=not_upgradable, term_of=term_of,
        models=lambda: [m.name for m in MODELS], is_7940=is_7940)


def make_tracker(catalog, cfg) -> Tracker:
    return Tracker(make_library(catalog, cfg), float(cfg.dhcp.lease_seconds))


def remembered(store) -> tuple[list[Phone], list[Lease]]:
    """The phones as the last run left them, and the bound leases DHCP holds, so a restart resumes every phone."""
    phones: list[Phone] = []
    leases: list[Lease] = []
    try:
        rows = store.phones.all()
    except Exception as exc:
        log.warning("tracker: phones table not read: %r", exc)
        rows = []
    for row in rows:
        try:
            phones.append(from_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("tracker: phone %s not restored: %r", row.get("mac"), exc)
    try:
        for lease in store.leases.all():
            if lease["state"] == "bound" and lease["ip"]:
                leases.append(Lease(lease["updated"], lease["mac"], lease["ip"], True,
                                    model_from_vendor_class(lease["vendor_class"]) or None, lease["vendor_class"],
                                    expires=lease["expires"]))
    except Exception as exc:
        log.warning("tracker: leases table not read: %r", exc)
    return phones, leases


def build_hub(cfg, catalog, store) -> Hub:
    """The parent's Hub: the core restored from the store; DeviceInformationX polls mapped to load IDs unless off."""
    hub = Hub(make_tracker(catalog, cfg), store, socket_path(cfg))
    phones, leases = remembered(store)
    hub.run_once(Restored(time.time(), tuple(phones), tuple(leases)))
    port = web_port(cfg)
    if port:
        hub.identify = lambda fields: identify.from_page(fields, catalog)
        hub.web = WebPoller(port=port, deliver=hub.page)
    return hub
