"""The config a phone asks for right after it reboots onto a stone must name the next step.

Race from the fleet benchmark: the phone takes the stone, reboots, and asks for
SEP<MAC>.cnf.xml ~30 ms after its DHCP ACK, before the tracker's periodic round
has read the ACK (or even the components).  Events go through a real SQLite
store exactly as the services append them; no network, no threads, no sleeps.
"""
from __future__ import annotations

import copy
import os
import time
from types import SimpleNamespace

from appliance.firmware.versions import protocol as load_protocol
from appliance.recovery.live import ORIGIN_KEY, Live, make_tracker, pending_from
from appliance.recovery.plan import Chooser
from appliance.store import Store
from appliance.tftp.tracking import Tracking

STONE, TARGET, START = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "SCCP45.8-3-1S"
MAC, IP, MODEL = "001e7a420001", "10.79.0.9", "CP-7965G"
CNF = f"SEP{MAC.upper()}.cnf.xml"
COMPONENTS = {STONE: [f"apps45.8-5-2-{i}.sbn" for i in range(3)], TARGET: [f"apps45.9-4-2-{i}.sbn" for i in range(3)]}
CFG = SimpleNamespace(upgrade=SimpleNamespace(strategy="stepwise", targets={}, rules=[]))


class Catalog:
    def loads_for_model(self, model, protocol=None):
        """Like Catalog.loads_for_model: oldest first, one protocol's when given."""
        return [SimpleNamespace(id=i, complete=True, protocol=load_protocol(i)) for i in (STONE, TARGET)
                if protocol in (None, load_protocol(i))]

    def newest_complete(self, model, protocol=None):
        return (self.loads_for_model(model, protocol) or [None])[-1]


def bus(store: Store, ts: float, source: str, kind: str, **data) -> None:
    store.append_events([(ts, source, kind, MAC, {"mac": MAC, **data})])


def ack(store, ts):
    bus(store, ts, "dhcp", "dhcp.ack", ip=IP, model=MODEL, vendor_class=f"Cisco Systems, Inc. IP Phone {MODEL}")


def done(store, ts, name):
    bus(store, ts, "tftp", "file.request", ip=IP, file=name, proto="tftp")
    bus(store, ts + 0.01, "tftp", "file.done", ip=IP, file=name, bytes=1, total=1, result="complete", proto="tftp")


def first_boot(store, t0):
    """Power-on lease, config naming the stone, the stone's .loads; returns the time of the last event."""
    ack(store, t0)
    done(store, t0 + 1, CNF)
    done(store, t0 + 2, f"{STONE}.loads")
    return t0 + 2


def station(tmp_path):
    store = Store(tmp_path / "station.db")
    published: list[dict] = []
    live = Live(store, make_tracker(Catalog(), CFG), 0, publish=published.extend)
    store.put(ORIGIN_KEY, {"pid": os.getpid(), "cursor": 0})
    return store, live, published


def test_config_asked_after_stone_and_lease_names_target_before_the_periodic_round(tmp_path):
    store, live, _ = station(tmp_path)
    t = first_boot(store, time.time() - 30)
    live.catch_up()                                   # the tracker's last periodic round
    assert live.tracker.phones[MAC].offered == STONE
    for i, comp in enumerate(COMPONENTS[STONE]):
        done(store, t + 1 + i, comp)
    ack(store, t + 10)                                # rebooted onto the stone; SEP follows 30 ms later
    parent = Chooser(store, Catalog(), CFG)
    parent.live = live                                # the file service's parent: the publishing tracker
    worker = Chooser(store, Catalog(), CFG)           # a TFTP worker: a shadow replaying the same bus
    assert worker.from_row(MAC, MODEL) == STONE, "what the phones table alone still says"
    assert worker(MAC, MODEL) == TARGET
    assert parent(MAC, MODEL) == TARGET
    assert worker(MAC, MODEL) == TARGET, "asking again changes nothing"


def test_lease_not_on_the_bus_yet_still_names_target(tmp_path):
    """DHCP flushes its events in batches too: the config request alone says the phone rebooted."""
    store, live, _ = station(tmp_path)
    t = first_boot(store, time.time() - 30)
    live.catch_up()
    for i, comp in enumerate(COMPONENTS[STONE]):
        done(store, t + 1 + i, comp)
    assert Chooser(store, Catalog(), CFG)(MAC, MODEL) == TARGET


def test_components_still_queued_in_this_process_count(tmp_path):
    """Transfers this worker has not flushed yet are read from its own queue (no database write)."""
    store, live, _ = station(tmp_path)
    with store.write() as c:
        c.execute("INSERT INTO leases(mac, ip, state, expires, updated) VALUES (?,?,?,?,?)",
                  (MAC, IP, "bound", time.time() + 3600, time.time()))
    t = first_boot(store, time.time() - 30)
    tracking = Tracking(store, "tftp")                # never started: nothing is flushed
    for comp in COMPONENTS[STONE]:
        tr = tracking.begin("tftp", IP, 40000, comp, comp, 100)
        tracking.end(tr, "complete", 100)
    assert len(tracking.events) == 2 * len(COMPONENTS[STONE])
    assert Chooser(store, Catalog(), CFG)(MAC, MODEL) == STONE, "without the queue the stone looks rejected"
    assert Chooser(store, Catalog(), CFG, pending_from(tracking))(MAC, MODEL) == TARGET
    assert len(tracking.events) == 2 * len(COMPONENTS[STONE]) and store.transfers() == []


def test_tracker_records_the_step_the_phone_was_told(tmp_path):
    """After the real events arrive, the publishing tracker says configured for the target, then done."""
    store, live, published = station(tmp_path)
    t = first_boot(store, time.time() - 60)
    live.catch_up()
    for i, comp in enumerate(COMPONENTS[STONE]):
        done(store, t + 1 + i, comp)
    ack(store, t + 10)
    answer = Chooser(store, Catalog(), CFG)(MAC, MODEL)
    done(store, t + 10.03, CNF)
    live.catch_up()
    p = live.tracker.phones[MAC]
    assert answer == TARGET == p.offered and p.current == STONE and p.state == "configured"
    states = [o["state"] for o in published if o["kind"] == "phone.state"]
    assert states.count("rebooting") == 1, states
    assert any(o["kind"] == "phone.load" and o["load"] == STONE and o["how"] == "step" for o in published)


def test_offer_changes_no_state():
    tr = make_tracker(Catalog(), CFG)
    tr.feed({"kind": "dhcp.ack", "ts": 1.0, "mac": MAC, "ip": IP, "model": MODEL})
    for ts, name in ((2.0, CNF), (3.0, f"{STONE}.loads"), (4.0, COMPONENTS[STONE][0])):
        tr.feed({"kind": "file.done", "ts": ts, "ip": IP, "file": name})
    before = copy.deepcopy(tr.phones[MAC])
    assert tr.offer(MAC, 9.0) == (True, TARGET)
    assert tr.phones[MAC] == before
    assert tr.offer("001e7a42ffff", 9.0) == (False, None)


def test_phone_told_the_load_it_runs_is_not_moved():
    """A rejection (the .loads and no component) keeps the stone; a phone on the target stays there."""
    tr = make_tracker(Catalog(), CFG)
    tr.feed({"kind": "dhcp.ack", "ts": 1.0, "mac": MAC, "ip": IP, "model": MODEL})
    tr.learn(MAC, TARGET, "web", 1.5)
    assert tr.offer(MAC, 2.0) == (True, TARGET)
    tr2 = make_tracker(Catalog(), CFG)
    tr2.feed({"kind": "dhcp.ack", "ts": 1.0, "mac": MAC, "ip": IP, "model": MODEL})
    tr2.feed({"kind": "file.done", "ts": 2.0, "ip": IP, "file": CNF})
    tr2.feed({"kind": "file.done", "ts": 3.0, "ip": IP, "file": f"{STONE}.loads"})
    assert tr2.offer(MAC, 4.0) == (True, STONE)


def test_restart_mid_plan_resumes_from_the_recorded_load(tmp_path):
    """The station restarts (power cut) after the phone took the stone: its next config names the target.

    Every process seeds phones from the same snapshot of the phones table, taken when the tracker starts."""
    import logging
    import threading

    from appliance.recovery import runner
    store = Store(tmp_path / "station.db")
    store.upsert_phone(MAC, model=MODEL, current_load=STONE, plan=[STONE, TARGET], step=0, state="rebooting")
    ctx = SimpleNamespace(store=store, config=CFG, stopping=threading.Event(), log=logging.getLogger("t"))
    ctx.stopping.set()                                # no rounds: only the snapshot and the on-demand catch-up
    th = runner.start(ctx, Catalog())
    th.join(5)
    ack(store, time.time())
    assert Chooser(store, Catalog(), CFG)(MAC, MODEL) == TARGET
    fresh = make_tracker(Catalog(), CFG)              # what a tracker without the snapshot would say
    fresh.feed({"kind": "dhcp.ack", "ts": 1.0, "mac": MAC, "ip": IP, "model": MODEL})
    assert fresh.offer(MAC, 2.0) == (True, STONE)


def test_file_service_killed_while_the_phone_downloads_the_stone(tmp_path):
    """kill -9 of the file service mid-download: its successor restores each phone's memory from the
    phones table, follows the rest of the download, and names the target when the phone reboots.

    Without the memory it would not know the phone's address (file events ignored) nor that a load
    was being taken, and would offer the stone again to a phone already running it."""
    import logging
    import threading

    from appliance.recovery import runner
    store = Store(tmp_path / "station.db")
    cfg = SimpleNamespace(upgrade=SimpleNamespace(**vars(CFG.upgrade), web_port=0))

    def run_once():
        """A file service's start: its publishing tracker, asked through the renderer's chooser."""
        ctx = SimpleNamespace(store=store, config=cfg, stopping=threading.Event(), log=logging.getLogger("t"))
        ctx.stopping.set()                               # no rounds: the chooser's catch-up does the work
        choose = Chooser(store, Catalog(), cfg)
        runner.start(ctx, Catalog(), SimpleNamespace(choose=choose)).join(5)
        return choose

    t = first_boot(store, time.time() - 12)             # recent enough that no stall or done timer fires
    done(store, t + 1, COMPONENTS[STONE][0])
    run_once()(MAC, MODEL)                               # the first file service follows up to here, then dies
    row = store.phone(MAC)
    assert row["state"] == "downloading" and row["hints"]["memory"]["loads_taken"] is True
    for i, name in enumerate(COMPONENTS[STONE][1:]):     # the phone finishes against the restarted service
        done(store, t + 2 + i, name)
    ack(store, t + 10)                                   # reboots onto the stone
    assert run_once()(MAC, MODEL) == TARGET
    phone = store.phone(MAC)
    assert phone["current_load"] == STONE and phone["plan"] == [TARGET], [(s, d) for _, s, d in phone["hints"]["timeline"]]
    assert [s for _, s, _ in phone["hints"]["timeline"]].count("downloading") >= 2   # timeline carried over


def test_restored_memory_survives_odd_json():
    """A hand-edited or older hints column costs the memory, never the tracker."""
    from appliance.recovery.tracker import Phone
    p = Phone.from_row({"mac": MAC, "plan": [STONE, TARGET], "hints": {"memory": {
        "loads_taken": "yes", "components": 2, "rejected": [STONE, 7], "file_ts": [1.0, "x"], "offered": 3},
        "timeline": [[1.0, "seen", "model ?"], "junk"]}})
    assert (p.loads_taken, p.components, p.rejected, p.file_ts, p.offered) == (False, 2, {STONE}, [1.0], None)
    assert p.timeline == [(1.0, "seen", "model ?")]


def test_restart_reads_back_to_the_oldest_phone_still_under_way_but_not_forever():
    from appliance.recovery.runner import REPLAY_MAX, resume_from
    from appliance.recovery.tracker import Phone
    on_way = Phone("a", state="downloading", applied=900)
    finished = Phone("b", state="done", applied=10)
    assert resume_from(1000, [on_way, finished, Phone("c")]) == 900     # done phones and old rows do not hold it back
    assert resume_from(1000, []) == 1000
    assert resume_from(REPLAY_MAX + 5000, [Phone("d", state="rebooting", applied=1)]) == 5000


def test_components_being_flushed_still_count(tmp_path):
    """The window the fleet benchmark hit once in 3 runs: a flush has taken the queue and is still
    writing it when the rebooted phone asks for its config; those events are on neither side yet."""
    import threading
    store, live, _ = station(tmp_path)
    with store.write() as c:
        c.execute("INSERT INTO leases(mac, ip, state, expires, updated) VALUES (?,?,?,?,?)",
                  (MAC, IP, "bound", time.time() + 3600, time.time()))
    t = first_boot(store, time.time() - 30)
    tracking = Tracking(store, "tftp")
    for comp in COMPONENTS[STONE]:
        tr = tracking.begin("tftp", IP, 40000, comp, comp, 100)
        tracking.end(tr, "complete", 100)
    writing, release = threading.Event(), threading.Event()
    append = store.append_events

    def slow_append(events):
        writing.set()
        release.wait(10)
        return append(events)

    store.append_events = slow_append
    flusher = threading.Thread(target=tracking.flush)
    flusher.start()
    try:
        assert writing.wait(10)
        assert not tracking.events and Chooser(store, Catalog(), CFG, pending_from(tracking))(MAC, MODEL) == TARGET
    finally:
        release.set()
        flusher.join(10)
    assert not tracking.inflight and Chooser(store, Catalog(), CFG, pending_from(tracking))(MAC, MODEL) == TARGET


def test_files_read_before_their_lease_reaches_the_bus_still_count(tmp_path):
    """The fleet race of stop 13: DHCP writes its events every 0.2 s, a phone asks for its config
    milliseconds after the ACK, so a tracker can read the phone's .loads and components before
    the lease that says whose address it is.  It keeps them and applies them when the ACK comes."""
    store, live, _ = station(tmp_path)
    t0 = time.time() - 20
    done(store, t0 + 0.05, CNF)                          # first boot: files from the worker first...
    done(store, t0 + 0.1, f"{STONE}.loads")
    for i, comp in enumerate(COMPONENTS[STONE]):
        done(store, t0 + 0.2 + i, comp)
    live.catch_up()                                      # ...read by a tracker while DHCP has not flushed
    ack(store, t0)                                       # the ACK, earlier in time, later on the bus
    ack(store, t0 + 8)                                   # the phone rebooted onto the stone
    assert live.offer(MAC) == (True, TARGET)
    lone = make_tracker(Catalog(), CFG)
    for n in range(600):                                 # a TFTP client that never leased: kept briefly, bounded
        lone.feed({"kind": "file.done", "ts": 1.0 + n, "ip": f"10.9.{n // 250}.{n % 250}", "file": "x.sbn"})
    assert 0 < len(lone.early) <= 31 and all(len(v) == 1 for v in lone.early.values())
