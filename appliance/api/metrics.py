"""/metrics: a fresh Prometheus registry per scrape, read from the store (the API holds no counters)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from ..config import Config
from ..store import Store
from . import views


def render(cfg: Config, store: Store) -> bytes:
    reg = CollectorRegistry()
    phones = Gauge("station_phones", "Phones by recovery state", ["state"], registry=reg)
    counts = store.counts()
    for row in counts["phones"]:
        phones.labels(row["state"]).set(row["n"])
    transfers = Gauge("station_transfers", "File transfers by result", ["proto", "result"], registry=reg)
    sent = Gauge("station_transfer_bytes", "Bytes sent by file transfers", ["proto"], registry=reg)
    for row in counts["transfers"]:
        transfers.labels(row["proto"], row["result"]).set(row["n"])
        sent.labels(row["proto"]).inc(row["b"])
    dhcp = Gauge("station_dhcp_messages", "DHCP server counters (from its heartbeat)", ["kind"], registry=reg)
    up = Gauge("station_service_up", "1 if the service heartbeat is fresh", ["service"], registry=reg)
    h = views.health(cfg, store)
    for svc in h["services"]:
        up.labels(svc["name"]).set(1 if svc["status"] == "up" else 0)
        if svc["name"] == "dhcp":
            for kind, value in (svc["info"].get("counters") or {}).items():
                if isinstance(value, (int, float)):
                    dhcp.labels(kind).set(value)
    guard = Gauge("station_dhcp_guard", "1 for the guard's current status", ["status"], registry=reg)
    for status in ("clear", "checking", "refusing", "warning", "off", "unknown"):
        guard.labels(status).set(1 if h["guard"]["status"] == status else 0)
    leases = Gauge("station_leases", "DHCP leases by state", ["state"], registry=reg)
    for row in counts["leases"]:
        leases.labels(row["state"]).set(row["n"])
    return generate_latest(reg)
