"""/metrics: the station's store in Prometheus's text format, for one bench or a depot of them.

Every figure is read from the store at scrape time (phones, heartbeats, DHCP's guard and pool, the firmware
catalog the API already reads); the API holds only the byte and transfer counters (`Sent`), because the
transfers table is pruned and a sum over it falls, which Prometheus would read as a counter reset.

Names follow Prometheus's conventions: base units in the name (`_seconds`, `_bytes`), `_total` on counters,
gauges for things counted now.  No series names its station: the scraper adds a `station` label (the depot's
targets file, deploy/depot/README.md), so one station's page stays the same wherever it is scraped from.
"""
from __future__ import annotations

import threading
import time
from typing import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric

from .. import events as ev
from ..config import Config
from ..recovery.facts import PhoneState
from ..store import Store
from ..text import shown
from . import firmware, views

GUARD_STATUSES = ("clear", "checking", "refusing", "warning", "off", "unknown")
POOL_HOLDERS = ("phones", "others", "quarantined", "free")
TRANSFER_WINDOW = 2000      # newest transfer rows read per scrape; more new rows than this between two scrapes
#                             (seconds apart) would be a flood, and its excess goes uncounted rather than slow /metrics
STUCK_LOOKUPS = 100         # stuck phones whose timeline is read per scrape; the rest use their row's `updated`
STUCK_LOOKBACK = 200        # events of one phone read to find when it became stuck


class Sent:
    """Bytes sent and transfers ended since this API process began counting, by protocol (and result).

    Built from the transfers table's growth between scrapes: the first scrape takes what is there as the
    baseline, each later one adds the bytes of new rows and the growth of rows that were running, and counts
    each row once when it ends.  A counter that restarts with the API is what Prometheus expects of a process;
    a sum over the (pruned) table is not.  Thread-safe: gunicorn's threads may scrape at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self._newest = 0
        self._running: dict[int, int] = {}      # id -> bytes at the last scrape, for rows still running then
        self.bytes: dict[str, float] = {}
        self.ended: dict[tuple[str, str], float] = {}

    def update(self, store: Store, now: float) -> None:
        rows = {r["id"]: r for r in store.transfers.recent(limit=TRANSFER_WINDOW)}
        rows.update((r["id"], r) for r in store.transfers.recent(running_only=True, limit=TRANSFER_WINDOW))
        with self._lock:
            if self.since is None:
                self.since = now
                self._newest = max(rows, default=0)
                self._running = {i: int(r["bytes"] or 0) for i, r in rows.items() if r["result"] == "running"}
                return
            for i in sorted(rows):
                r = rows[i]
                if i <= self._newest and i not in self._running:
                    continue
                proto, done = str(r["proto"]), int(r["bytes"] or 0)
                grew = max(0, done - self._running.get(i, 0))
                self.bytes[proto] = self.bytes.get(proto, 0) + grew
                if r["result"] == "running":
                    self._running[i] = done
                else:
                    self._running.pop(i, None)
                    key = (proto, str(r["result"]))
                    self.ended[key] = self.ended.get(key, 0) + 1
            self._newest = max(self._newest, max(rows, default=0))
            # A running row that left both windows was pruned: nothing more will be seen of it.
            self._running = {i: b for i, b in self._running.items() if i in rows}

    def snapshot(self) -> tuple[float, dict[str, float], dict[tuple[str, str], float]]:
        with self._lock:
            return self.since or time.time(), dict(self.bytes), dict(self.ended)


SENT = Sent()


def stuck_since(store: Store, row: dict) -> float:
    """When the phone's current run of `stuck` began: the oldest `phone.state` event of that run among its
    last STUCK_LOOKBACK events; its row's `updated` when none is there (events pruned, or a row written
    without them)."""
    since = None
    for event in reversed(store.events.timeline(row["mac"], STUCK_LOOKBACK)):
        if event["kind"] != ev.PHONE_STATE:
            continue
        data = event["data"] if isinstance(event["data"], dict) else {}
        if data.get("state") != PhoneState.STUCK.value:
            break
        since = float(event["ts"])
    return since if since is not None else float(row["updated"])


class StationCollector:
    """One scrape's series, read from `store` and `cfg` when collected."""

    def __init__(self, cfg: Config, store: Store, sent: Sent, now: float):
        self.cfg, self.store, self.sent, self.now = cfg, store, sent, now

    def collect(self) -> Iterator[Metric]:
        self.health = views.health(self.cfg, self.store, self.now)
        yield from self._phones()
        yield from self._services()
        yield from self._dhcp()
        yield from self._firmware()
        yield from self._transfers()

    def _phones(self) -> Iterable[Metric]:
        rows = self.store.phones.all()
        counts = {s.value: 0 for s in PhoneState}
        for r in rows:
            state = shown(r.get("state") or PhoneState.SEEN.value)
            counts[state] = counts.get(state, 0) + 1
        by_state = GaugeMetricFamily("station_phones", "Phones the station has seen, by recovery state", labels=["state"])
        for state, n in counts.items():
            by_state.add_metric([state], n)
        yield by_state
        yield GaugeMetricFamily("station_phones_recovered", "Phones running their target load (recovered)",
                                value=sum(1 for r in rows if views.result(dict(r)) == "recovered"))
        stuck = [r for r in rows if r.get("state") == PhoneState.STUCK.value]
        oldest = 0.0
        for i, r in enumerate(stuck):
            since = stuck_since(self.store, dict(r)) if i < STUCK_LOOKUPS else float(r["updated"])
            oldest = max(oldest, self.now - since)
        yield GaugeMetricFamily("station_phone_stuck_longest_seconds",
                                "How long the phone stuck longest has been stuck (0 when none is)", value=oldest)

    def _services(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("station_service_up", "1 if the service's heartbeat is fresh; expected=false for a "
                               "service the config turns off", labels=["service", "expected"])
        age = GaugeMetricFamily("station_service_heartbeat_age_seconds", "Seconds since the service's last heartbeat",
                                labels=["service"])
        for svc in self.health["services"]:
            up.add_metric([svc["name"], "true" if svc["expected"] else "false"], 1 if svc["status"] == "up" else 0)
            if svc["heartbeat_age"] is not None:
                age.add_metric([svc["name"]], svc["heartbeat_age"])
        yield up
        yield age

    def _dhcp(self) -> Iterable[Metric]:
        dhcp = next((s for s in self.health["services"] if s["name"] == "dhcp"), None)
        guard = self.store.kv.get("dhcp.guard") or {}
        pool = self.health["pool"]
        enabled = self.cfg.dhcp.enabled
        serving = bool(enabled and dhcp is not None and dhcp["status"] == "up" and guard.get("serving")
                       and not pool["exhausted"])
        yield GaugeMetricFamily("station_dhcp_enabled", "1 if the config runs the station's DHCP server",
                                value=1 if enabled else 0)
        yield GaugeMetricFamily("station_dhcp_serving", "1 if DHCP would lease a new phone now: its service is up, "
                                "the guard lets it offer and the pool has room", value=1 if serving else 0)
        status = self.health["guard"]["status"]
        g = GaugeMetricFamily("station_dhcp_guard", "1 for the guard's current status", labels=["status"])
        for name in GUARD_STATUSES if status in GUARD_STATUSES else (*GUARD_STATUSES, shown(status)):
            g.add_metric([name], 1 if name == status else 0)
        yield g
        addresses = GaugeMetricFamily("station_dhcp_pool_addresses", "Pool addresses by holder, as DHCP last "
                                      "published them", labels=["holder"])
        for holder in POOL_HOLDERS:
            if isinstance(pool.get(holder), (int, float)) and not isinstance(pool.get(holder), bool):
                addresses.add_metric([holder], pool[holder])
        yield addresses
        leases = GaugeMetricFamily("station_leases", "DHCP leases by state", labels=["state"])
        for row in self.store.leases.count_by_state():
            leases.add_metric([shown(row["state"])], row["n"])
        yield leases
        counters = (dhcp or {}).get("info", {}).get("counters") or {}
        started = (dhcp or {}).get("started")
        messages = CounterMetricFamily("station_dhcp_messages", "DHCP server counters since it started (messages "
                                       "received, answered, refused), from its heartbeat", labels=["kind"])
        for kind, value in counters.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                messages.add_metric([shown(str(kind))], value,
                                    created=float(started) if isinstance(started, (int, float)) else None)
        yield messages

    def _firmware(self) -> Iterable[Metric]:
        doc = firmware.summary(self.cfg)
        yield GaugeMetricFamily("station_firmware_catalog_available", "1 if the firmware library could be read",
                                value=1 if doc["available"] else 0)
        loads = GaugeMetricFamily("station_firmware_loads", "Firmware loads in the library: complete (every file "
                                  "there) or incomplete", labels=["status"])
        complete = sum(1 for d in doc["loads"] if d["complete"])
        loads.add_metric(["complete"], complete)
        loads.add_metric(["incomplete"], len(doc["loads"]) - complete)
        yield loads

    def _transfers(self) -> Iterable[Metric]:
        running = GaugeMetricFamily("station_transfers_running", "File transfers in progress", labels=["proto"])
        now_running: dict[str, int] = {"tftp": 0, "http": 0}
        for row in self.store.transfers.count_by_result():
            if row["result"] == "running":
                proto = shown(row["proto"])
                now_running[proto] = now_running.get(proto, 0) + row["n"]
        for proto, n in now_running.items():
            running.add_metric([proto], n)
        yield running
        since, sent, ended = self.sent.snapshot()
        sent_bytes = CounterMetricFamily("station_transfer_sent_bytes", "Bytes sent by TFTP and HTTP file transfers "
                                         "since the API began counting", labels=["proto"])
        for proto in sorted({"tftp", "http", *sent}):
            sent_bytes.add_metric([shown(proto)], sent.get(proto, 0), created=since)
        yield sent_bytes
        finished = CounterMetricFamily("station_transfers", "File transfers ended since the API began counting, "
                                       "by result", labels=["proto", "result"])
        for (proto, result), n in sorted(ended.items()):
            finished.add_metric([shown(proto), shown(result)], n, created=since)
        yield finished


def render(cfg: Config, store: Store, now: float | None = None, sent: Sent | None = None) -> bytes:
    """The /metrics page (Prometheus text format 0.0.4) for `store`, as of `now` (default: the clock).

    `sent` is the process's byte and transfer counter (default: the module's one); the store is only read.
    A store that cannot be read raises as any other view does (the API answers 500, the scrape fails, and
    the depot's StationUnreachable alert says so).
    """
    now = time.time() if now is None else now
    counter = SENT if sent is None else sent
    counter.update(store, now)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StationCollector(cfg, store, counter, now))  # type: ignore[arg-type]
    return generate_latest(reg)
