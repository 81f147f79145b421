"""Plan + tracker together on event streams shaped like the services' (no network)."""
from types import SimpleNamespace

from appliance.firmware.versions import protocol as load_protocol
from appliance.recovery.plan import plan_for
from appliance.recovery.tracker import DONE_WAIT_S, Tracker

CFG = SimpleNamespace(upgrade=SimpleNamespace(strategy="stepwise", targets={}, rules=[]))


class Cat:
    def __init__(self, ids):
        self.ids = ids

    def loads_for_model(self, model, protocol=None):
        """Like Catalog.loads_for_model: oldest first, one protocol's when given."""
        return [SimpleNamespace(id=i, complete=True, protocol=load_protocol(i)) for i in self.ids
                if protocol in (None, load_protocol(i))]

    def newest_complete(self, model, protocol=None):
        return (self.loads_for_model(model, protocol) or [None])[-1]


def drive(cat, model, start_load, cnf, comps, boots=4):
    """A phone that accepts a load only if its rules allow it; returns the tracker's phone."""
    from appliance.recovery.rules import builtin_rules, version_key
    t = Tracker(lambda p: plan_for(cat, CFG, p.model, p.current).steps,
                lambda p: plan_for(cat, CFG, p.model, None).missing or "")
    mac, ip, ts, on = "00:aa:bb:cc:dd:ee", "10.1.1.9", 0.0, start_load
    t.feed({"kind": "dhcp.ack", "ts": ts, "mac": mac, "ip": ip, "model": model})
    p = t.phones[mac]
    p.current = start_load
    p.plan = plan_for(cat, CFG, model, start_load).steps
    for _ in range(boots):
        ts += 1
        t.feed({"kind": "file.done", "ts": ts, "ip": ip, "file": cnf})
        offered = p.offered
        if offered == on:
            break
        t.feed({"kind": "file.done", "ts": ts, "ip": ip, "file": offered + ".loads"})
        ok = not any(r.applies(model, version_key(on), version_key(offered), load_protocol(offered)) for r in builtin_rules())
        if ok:
            for c in comps:
                t.feed({"kind": "file.done", "ts": ts, "ip": ip, "file": c})
            on = offered
        ts += 5
        t.feed({"kind": "dhcp.ack", "ts": ts, "mac": mac, "ip": ip, "model": model})
        if p.state == "stuck":
            return p
    t.tick(ts + DONE_WAIT_S + 1)
    return p


def test_7965_through_stone():
    p = drive(Cat(["SCCP45.8-5-2S", "SCCP45.9-4-2S"]), "7965", "SCCP45.8-3-2S", "SEP00AABBCCDDEE.cnf.xml", ["a.sbn"])
    assert p.state == "done" and p.current == "SCCP45.9-4-2S"
    assert any("now on SCCP45.8-5-2S" in d for _, _, d in p.timeline)


def test_7940_through_811():
    p = drive(Cat(["P00308010100", "P00308010200"]), "7940", "P00307020300", "OS79XX.TXT", ["P00308010200.sbn"])
    assert p.state == "done" and p.current == "P00308010200"
    assert any("now on P00308010100" in d for _, _, d in p.timeline)


def test_on_target_no_download():
    p = drive(Cat(["SCCP45.8-5-2S", "SCCP45.9-4-2S"]), "7965", "SCCP45.9-4-2S", "SEP00AABBCCDDEE.cnf.xml", ["a.sbn"])
    assert p.state == "done" and not any(s == "downloading" for _, s, _ in p.timeline)


def test_missing_stone_stuck_with_name():
    # stepwise has no stone to offer, so the target is offered and rejected
    p = drive(Cat(["SCCP45.9-4-2S"]), "7965", "SCCP45.8-3-2S", "SEP00AABBCCDDEE.cnf.xml", ["a.sbn"])
    assert p.state == "stuck" and "rejected" in p.diagnosis and "8.3(3)–8.5(2)" in p.diagnosis


BOTH = Cat(["SCCP45.8-5-2S", "SIP45.8-5-2S", "SCCP45.9-4-2S", "SIP45.9-4-2S"])


def test_each_7965_keeps_its_protocol_through_the_stone():
    for proto in ("SCCP", "SIP"):
        p = drive(BOTH, "7965", f"{proto}45.8-3-2S", "SEP00AABBCCDDEE.cnf.xml", ["a.sbn"])
        assert p.state == "done" and p.current == f"{proto}45.9-4-2S"
        assert any(f"now on {proto}45.8-5-2S" in d for _, _, d in p.timeline)


def test_replan_after_rejection_stays_on_the_phones_protocol():
    """The re-plan treats the load as unknown but still knows the phone runs SIP: its stone and hint are SIP."""
    from appliance.recovery.live import make_tracker
    from appliance.recovery.tracker import Phone
    t = make_tracker(BOTH, CFG)
    p = Phone("00aabbccddee", model="CP-7965G", current="SIP45.8-5-2S")
    assert t.replan(p) == ["SIP45.9-4-2S"]
    p.rejected.add("SIP45.9-4-2S")
    assert t.replan(p) == ["SIP45.8-5-2S", "SIP45.9-4-2S"]
    assert t.reject_hint(p) == "move to the stone SIP45.8-5-2S"
