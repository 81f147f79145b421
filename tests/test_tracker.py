from appliance.recovery.tracker import Tracker, STALL_S, TRUST_WAIT_S, DONE_WAIT_S, BACK_GRACE_S

MAC, IP = "00:11:22:33:44:55", "10.0.0.5"
CNF = "SEP001122334455.cnf.xml"


def mk(plan):
    return Tracker(lambda p: plan(p) if callable(plan) else list(plan), lambda p: "move to the stone")


def ack(t, ts):
    return t.feed({"kind": "dhcp.ack", "ts": ts, "mac": MAC, "ip": IP, "model": "7965"})


def f(t, kind, name, ts):
    return t.feed({"kind": kind, "ts": ts, "ip": IP, "file": name})


def test_two_step_upgrade_then_done():
    t = mk(lambda p: [s for s in ["A", "B"] if p.current is None or s > p.current])
    ack(t, 0)
    f(t, "file.done", CNF, 1); f(t, "file.done", "A.loads", 2); f(t, "file.done", "A-app.sbn", 3)
    ack(t, 10)
    p = t.phones[MAC]
    assert p.current == "A" and p.plan == ["B"]
    f(t, "file.done", CNF, 11); f(t, "file.done", "B.loads", 12); f(t, "file.done", "B-app.sbn", 13)
    ack(t, 20)
    f(t, "file.done", CNF, 21)
    t.tick(21 + DONE_WAIT_S + 1)
    assert p.state == "done" and p.current == "B"
    states = [s for _, s, _ in p.timeline]
    assert states[0] == "seen" and states[-1] == "done" and states.count("configured") == 3


def test_rejected_load():
    t = mk(["B"])
    ack(t, 0); f(t, "file.done", CNF, 1); f(t, "file.done", "B.loads", 2); ack(t, 5)
    p = t.phones[MAC]
    assert p.state == "downloading", "a late component event may still arrive"
    t.tick(5 + BACK_GRACE_S + 1)
    assert p.state == "stuck" and "rejected" in p.diagnosis and "stone" in p.diagnosis


def test_trust_list():
    t = mk(["B"])
    ack(t, 0); f(t, "file.not_found", CNF + ".sgn", 1)
    t.tick(1 + TRUST_WAIT_S + 1)
    assert "trust list" in t.phones[MAC].diagnosis


def test_missing_file_and_stall():
    t = mk(["B"])
    ack(t, 0); f(t, "file.not_found", "B.loads", 1)
    assert "B.loads" in t.phones[MAC].diagnosis
    t2 = mk(["B"])
    ack(t2, 0); f(t2, "file.done", CNF, 1); f(t2, "file.done", "B.loads", 2)
    t2.tick(2 + STALL_S + 1)
    assert "stalled" in t2.phones[MAC].diagnosis


def test_unknown_ip_ignored():
    t = mk(["B"])
    assert t.feed({"kind": "file.done", "ip": "9.9.9.9", "file": "x"}) == []


def test_direct_rejection_moves_to_stone():
    t = mk(lambda p: ["S", "B"] if p.rejected else ["B"])
    ack(t, 0); f(t, "file.done", CNF, 1); f(t, "file.done", "B.loads", 2); ack(t, 5)
    f(t, "file.not_found", "CTL" + CNF[:-8] + ".tlv", 6)
    p = t.phones[MAC]
    assert p.state == "rebooting" and p.plan == ["S", "B"] and "rejected" in p.timeline[-1][2]


def test_component_event_arriving_after_the_lease_still_counts():
    """DHCP and the file service write the bus separately: the last component can land after the next ACK."""
    t = mk(lambda p: [s for s in ["A", "B"] if p.current is None or s > p.current])
    ack(t, 0); f(t, "file.done", CNF, 1); f(t, "file.done", "A.loads", 2)
    ack(t, 5)
    f(t, "file.done", "A-app.sbn", 3)
    p = t.phones[MAC]
    assert p.current == "A" and p.plan == ["B"] and p.state == "rebooting" and "rejected" not in str(p.timeline)


def test_components_on_the_bus_before_their_loads_still_count():
    t = mk(lambda p: [s for s in ["A", "B"] if p.current is None or s > p.current])
    ack(t, 0); f(t, "file.done", "A-app.sbn", 3); f(t, "file.done", CNF, 1); f(t, "file.done", "A.loads", 2)
    ack(t, 5)
    p = t.phones[MAC]
    assert p.current == "A" and p.plan == ["B"] and "rejected" not in str(p.timeline)


def stone_then_target(p):
    return [s for s in ["A", "B"] if p.current is None or s > p.current]


def test_phone_already_on_the_stone_waits_for_a_restart_then_goes_on():
    """Told the stone it already runs, a phone fetches nothing and stays: the tech is told to restart it."""
    t = mk(stone_then_target)
    ack(t, 0); f(t, "file.done", CNF, 1)
    p = t.phones[MAC]
    t.tick(1 + DONE_WAIT_S - 1)
    assert p.state == "configured"
    outs = t.tick(1 + DONE_WAIT_S + 1)
    assert p.state == "waiting" and p.current == "A" and p.plan == ["B"], p
    assert "already on A" in p.diagnosis and "restart it" in p.diagnosis and "go on to B" in p.diagnosis
    assert {"kind": "phone.load", "load": "A", "how": "settled"}.items() <= outs[0].items()
    ack(t, 60); f(t, "file.done", CNF, 61)
    assert p.state == "configured" and p.offered == "B" and p.diagnosis == ""
    f(t, "file.done", "B.loads", 62); f(t, "file.done", "B-app.sbn", 63)
    ack(t, 70); f(t, "file.done", CNF, 71)
    t.tick(71 + DONE_WAIT_S + 1)
    assert p.state == "done" and p.current == "B"


def test_load_learned_after_the_config_was_served_also_waits():
    """The phone's web page answered after it took the stone's config: the plan moves on, the phone does not."""
    t = mk(stone_then_target)
    ack(t, 0); f(t, "file.done", CNF, 1)
    t.learn(MAC, "A", "web", 2)
    p = t.phones[MAC]
    assert p.plan == ["B"] and p.state == "configured"
    t.tick(1 + DONE_WAIT_S + 2)
    assert p.state == "waiting" and "go on to B" in p.diagnosis


def test_phone_found_on_the_target_without_a_step_is_done():
    t = mk(lambda p: [] if p.current == "B" else ["B"])
    ack(t, 0); f(t, "file.done", CNF, 1)
    t.tick(1 + DONE_WAIT_S + 1)
    assert t.phones[MAC].state == "done" and t.phones[MAC].current == "B"


def test_lease_reaching_the_bus_after_the_boot_it_started_is_old_news():
    """Bus order from a failed 50-phone run: a reboot's config and the next load's files were written
    (file service) before the lease that began that boot (DHCP flushes separately).  Read late, that
    lease once counted as yet another reboot with no component, so the target was marked rejected and
    the phone, already on the target, was sent back to the stone."""
    t = mk(stone_then_target)
    ack(t, 0); f(t, "file.done", CNF, 1); f(t, "file.done", "A.loads", 2); f(t, "file.done", "A-app.sbn", 3)
    f(t, "file.done", CNF, 10.05)                  # boot 2, its lease (ts 10.0) not on the bus yet
    f(t, "file.done", "B.loads", 10.1); f(t, "file.done", "B-app.sbn", 10.8)
    ack(t, 10.0)                                    # ...now it is
    phone = t.phones[MAC]
    assert phone.current == "A" and phone.loads_taken and phone.back_at is None, phone
    t.tick(10.8 + BACK_GRACE_S + 1)
    assert not phone.rejected and phone.state == "downloading", phone
    ack(t, 16); f(t, "file.done", CNF, 16.03)       # boot 3 onto the target
    assert phone.current == "B" and phone.offered == "B" and not phone.rejected, phone
    assert t.offer(MAC, 16.05) == (True, "B")
    t.tick(16.03 + DONE_WAIT_S + 1)
    assert phone.state == "done", phone


def test_model_without_manifest_is_diagnosed_not_planned():
    """§0.0 item 10: a 7937 (.bin firmware, no .loads manifest) is named as such; no plan is ever asked for,
    also when its model arrives after the phone was first seen, and after a retry."""
    asked = []
    t = Tracker(lambda p: asked.append(p.model) or ["X"])
    t.feed({"kind": "dhcp.ack", "ts": 0, "mac": MAC, "ip": IP, "model": "CP-7937G"})
    p = t.phones[MAC]
    assert p.state == "stuck" and p.diagnosis.startswith("not upgradable by manifest (CP-7937G") and ".bin" in p.diagnosis
    f(t, "file.done", CNF, 1)
    t.feed({"kind": "phone.retry", "ts": 2, "mac": MAC})
    assert p.state == "stuck" and "not upgradable by manifest" in p.diagnosis and p.plan == []
    other = "00:11:22:33:44:66"
    t.feed({"kind": "dhcp.discover", "ts": 3, "mac": other})
    t.feed({"kind": "dhcp.ack", "ts": 4, "mac": other, "ip": "10.0.0.6", "model": "CP-7912G"})
    assert t.phones[other].state == "stuck" and ".sbin/.zup" in t.phones[other].diagnosis
    assert asked == [""]       # only the 7912 while its model was still unknown
