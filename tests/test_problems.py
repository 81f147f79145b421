"""appliance/problems.py: each row red (or amber) from the facts alone, and quiet once fixed.  No disk, no sockets.

What the station does with these (health JSON, `appliance status`, the healthcheck, the start-up log) is
tests/test_problems_station.py.
"""
from __future__ import annotations

import dataclasses

import pytest

from appliance import problems as pm
from appliance.problems import AMBER, RED, Facts, Library, Link, Seen, Station

ST = Station(config="/etc/appliance.toml", interface="eth1", firmware_root="/srv/firmware", guard_interval=60)
FULL = Library(complete=("SCCP45.9-4-2SR4-3S", "SCCP45.8-5-2S"))
UP = {"name": "dhcp", "expected": True, "status": "up", "last_error": None}
SERVICES = tuple(dict(UP, name=n) for n in ("api", "dhcp", "dns", "tftp"))
CLEAR = {"mode": "refuse", "status": "clear", "servers": [], "serving": True, "not_probed": None}
POOL = {"exhausted": False, "others_full": False, "size": 100, "phones": 3, "others": 1, "quarantined": 0,
        "free": 96, "others_share": 25}
GOOD_7965 = Seen("CP-7965G", 2, "sccp", target="SCCP45.9-4-2SR4-3S", term="term65.default.loads",
                 reset_load="SCCP45.8-5-2S", reset_term_found=True)


def healthy(**change) -> Facts:
    base = Facts(ST, library=FULL, seen=(GOOD_7965,), link=Link("up"), services=SERVICES, guard=CLEAR, pool=POOL)
    return dataclasses.replace(base, **change)


def codes(found):
    return [(p.code, p.severity) for p in found]


def test_a_station_that_can_do_its_job_has_no_problem():
    assert pm.find(healthy()) == []


def test_nothing_judged_is_nothing_found():
    assert pm.find(Facts(ST)) == []


def test_empty_library_is_red_and_says_what_to_copy_where():
    found = pm.find(healthy(library=Library()))
    assert codes(found) == [("no-firmware", RED)]
    p = found[0]
    assert "/srv/firmware" in p.what and "/srv/firmware" in p.do and "cmterm-" in p.do and "8.5(2)" in p.do
    assert pm.red(found) == found


def test_an_unreadable_or_incomplete_library_is_red_and_names_why():
    gone = pm.find(healthy(library=Library(unreadable="no such folder")))
    assert codes(gone) == [("no-firmware", RED)] and "no such folder" in gone[0].what
    assert "[tftp] root in /etc/appliance.toml" in gone[0].do
    half = pm.find(healthy(library=Library(incomplete=(("SCCP45.9-4-2SR4-3S", ("dsp45.bin",)),))))
    assert codes(half) == [("no-firmware", RED)] and "dsp45.bin" in half[0].what


def test_an_incomplete_load_beside_complete_ones_is_amber():
    lib = dataclasses.replace(FULL, incomplete=(("SIP45.9-4-2SR4-3S", ("jar45sip.sbn",)),))
    assert codes(pm.find(healthy(library=lib))) == [("firmware-incomplete", AMBER)]


def test_no_target_for_a_model_seen_is_red_and_names_the_model():
    found = pm.find(healthy(seen=(GOOD_7965, Seen("CP-7941G", 1, None))))
    assert codes(found) == [("no-target:CP-7941G", RED)]
    assert "CP-7941G" in found[0].what and "7941" in found[0].do and "/srv/firmware" in found[0].do


def test_an_empty_library_says_it_once_not_per_model():
    found = pm.find(healthy(library=Library(), seen=(Seen("CP-7941G"), Seen("CP-7965G"))))
    assert codes(found) == [("no-firmware", RED)]


def test_a_missing_stone_is_red_when_a_known_load_needs_it_amber_when_the_load_is_unknown():
    stone = "a SCCP load from 8.3(3) to 8.5(2) (not 8.5(2)SR1) for the CP-7965G"
    certain = dataclasses.replace(GOOD_7965, stone_missing=stone, stone_certain=True)
    found = pm.find(healthy(seen=(certain,)))
    assert codes(found) == [("no-stone:CP-7965G", RED)] and "8.5(2)" in found[0].do
    maybe = dataclasses.replace(certain, stone_certain=False)
    assert codes(pm.find(healthy(seen=(maybe,)))) == [("no-stone:CP-7965G", AMBER)]


def test_a_model_whose_factory_reset_phones_cannot_start_is_red():
    no_term = dataclasses.replace(GOOD_7965, reset_term_found=False)
    found = pm.find(healthy(seen=(no_term,)))
    assert codes(found) == [("no-start-for-factory-reset:CP-7965G", RED)]
    assert "term65.default.loads" in found[0].what and "SCCP45.8-5-2S" in found[0].do
    no_default = dataclasses.replace(GOOD_7965, reset_load=None, reset_term_found=False)
    assert codes(pm.find(healthy(seen=(no_default,)))) == [("no-start-for-factory-reset:CP-7965G", RED)]
    no_term_model = Seen("CP-7940G", 1, "sccp", target="P0030801SR02", term=None, reset_load="P0030801SR02")
    assert pm.find(healthy(seen=(no_term_model,))) == []           # a 7940 asks no term file


def test_a_model_the_station_cannot_upgrade_is_amber():
    found = pm.find(healthy(seen=(Seen("CP-7937G", 1, upgradable=False, images=".bin"),)))
    assert codes(found) == [("not-upgradable:CP-7937G", AMBER)] and ".bin" in found[0].what


@pytest.mark.parametrize("state, words", [("no-carrier", "no link"), ("admin-down", "switched off"),
                                          ("missing", "no network interface named eth1")])
def test_link_down_is_red(state, words):
    found = pm.find(healthy(link=Link(state, present=("lo", "eth0"))))
    assert codes(found) == [("link-down", RED)] and words in found[0].what
    if state == "missing":
        assert "lo, eth0" in found[0].do and "[network] interface" in found[0].do


def test_an_unreadable_link_state_is_not_a_problem():
    assert pm.find(healthy(link=Link("unknown", detail="ioctl failed"))) == []


def test_another_dhcp_server_is_red_when_refusing_amber_when_warning():
    refusing = dict(CLEAR, status="refusing", servers=["10.0.0.254"], serving=False)
    found = pm.find(healthy(guard=refusing))
    assert codes(found) == [("dhcp-guard-blocked", RED)]
    assert "10.0.0.254" in found[0].what and "10.0.0.254" in found[0].do and "every 60 s" in found[0].do
    warning = dict(CLEAR, mode="warn", status="warning", servers=["10.0.0.254"], serving=True)
    assert codes(pm.find(healthy(guard=warning))) == [("dhcp-other-server", AMBER)]


def test_a_guard_that_could_not_probe_is_red_unless_the_link_says_it_already():
    unprobed = dict(CLEAR, status="unknown", serving=False, not_probed="Network is unreachable")
    found = pm.find(healthy(guard=unprobed))
    assert codes(found) == [("dhcp-guard-unprobed", RED)] and "Network is unreachable" in found[0].what
    assert codes(pm.find(healthy(guard=unprobed, link=Link("no-carrier")))) == [("link-down", RED)]
    blind = dict(unprobed, serving=True, not_probed="cannot listen")
    assert codes(pm.find(healthy(guard=blind))) == [("dhcp-guard-unprobed", AMBER)]
    not_yet = dict(CLEAR, status="unknown", not_probed=None)          # nothing published yet: no verdict
    assert pm.find(healthy(guard=not_yet)) == []


def test_pool_exhausted_is_red_others_full_amber():
    found = pm.find(healthy(pool=dict(POOL, exhausted=True, free=0, phones=90, others=10)))
    assert codes(found) == [("pool-exhausted", RED)] and "90 leased to phones" in found[0].what
    assert "[dhcp] pool_start" in found[0].do and "appliance forget MAC" in found[0].do
    assert codes(pm.find(healthy(pool=dict(POOL, others_full=True)))) == [("others-share-full", AMBER)]


def test_dhcp_rows_are_not_judged_when_dhcp_is_off_or_down():
    blocked = dict(CLEAR, status="refusing", servers=["10.0.0.254"])
    off = Station(**{**dataclasses.asdict(ST), "dhcp_enabled": False})
    assert pm.find(healthy(station=off, guard=blocked, pool=dict(POOL, exhausted=True))) == []
    down = tuple(dict(s, status="down") if s["name"] == "dhcp" else s for s in SERVICES)
    assert codes(pm.find(healthy(services=down, guard=blocked))) == [("service-down:dhcp", RED)]


def test_a_service_down_or_stale_is_red_with_its_cleaned_last_error():
    svc = tuple(dict(s, status="stale", last_error="bind: \x1b[2Jaddress in use") if s["name"] == "tftp" else s
                for s in SERVICES)
    found = pm.find(healthy(services=svc))
    assert codes(found) == [("service-down:tftp", RED)]
    assert "no firmware" in found[0].what and "\x1b" not in found[0].what and "address in use" in found[0].what
    unexpected = tuple(dict(s, expected=False, status="down") if s["name"] == "dns" else s for s in SERVICES)
    assert pm.find(healthy(services=unexpected)) == []


def test_red_first_each_code_once_and_every_field_plain():
    found = pm.find(healthy(library=Library(incomplete=(("X", ("y",)),)), link=Link("no-carrier"),
                            pool=dict(POOL, others_full=True), seen=(Seen("CP-7937G", upgradable=False),)))
    severities = [p.severity for p in found]
    assert severities == sorted(severities, key=pm.SEVERITIES.index) and AMBER in severities
    assert len({p.code for p in found}) == len(found)
    for p in found:
        doc = p.as_dict()
        assert set(doc) == {"code", "severity", "what", "do"} and all(doc.values())
        assert "§" not in p.what + p.do and "None" not in p.what + p.do
        assert p.line().startswith(p.what) and p.do in p.line()


def test_hostile_names_from_phones_are_cleaned():
    evil = "CP-79\x1b]0;pwn\x07\u202e65G"
    found = pm.find(healthy(seen=(Seen(evil, 1, None),), guard=dict(CLEAR, status="refusing",
                                                                   servers=["10.0.0.254\x1b[2J"])))
    for p in found:
        assert not any(c in p.code + p.what + p.do for c in "\x1b\x07\u202e")


def test_a_station_not_started_is_one_problem_not_one_per_service():
    down = tuple(dict(s, status="down") for s in SERVICES)
    found = pm.find(healthy(services=down))
    assert codes(found) == [("station-not-running", RED)] and "make run" in found[0].do
    one_failed = tuple(dict(s, last_error="cannot bind udp/69") if s["name"] == "tftp" else s for s in down)
    assert ("service-down:tftp", RED) in codes(pm.find(healthy(services=one_failed)))
