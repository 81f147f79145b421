"""appliance/api/checkup.py: the facts problems.py judges, read from a real catalog and store; the API's watch.

The station-wide behaviour (health, status, healthcheck, log, in namespaces) is tests/test_problems_station.py.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from appliance import config
from appliance.api import checkup, views
from appliance.api.watch import GRACE_S, Watch
from appliance.firmware import synth
from appliance.store import Store

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"


def setup(station_env, *loads: tuple[str, bool]):
    for load, term in loads:
        synth.write_load(station_env["APPLIANCE_TFTP_ROOT"], load, 4096, term=term)
    cfg = config.load(environ=station_env)
    store = Store(cfg.db_path)
    for name in ("api", "dhcp", "dns", "tftp"):
        store.services.beat(name, 1)
    return cfg, store


def codes(cfg, store, **kw):
    return [(p.code, p.severity) for p in checkup.find(cfg, store, **kw)]


def test_an_empty_folder_and_a_missing_one_are_red(station_env):
    cfg, store = setup(station_env)
    assert codes(cfg, store) == [("no-firmware", "red")]
    Path(station_env["APPLIANCE_TFTP_ROOT"]).rmdir()            # removed (or unmounted) while the station runs
    found = checkup.find(cfg, store)
    assert [p.code for p in found] == ["no-firmware"] and "no such folder" in found[0].what


def test_in_a_container_the_advice_names_the_hosts_folder(station_env, monkeypatch):
    """compose.yaml says what the host calls the folder mounted at /firmware; the tech copies into that one."""
    cfg, store = setup(station_env)
    monkeypatch.setenv(checkup.SHOWN_AS, "./firmware beside compose.yaml")
    found = checkup.find(cfg, store)
    assert "into ./firmware beside compose.yaml" in found[0].do and str(cfg.tftp.root) not in found[0].do, found


def test_models_seen_are_judged_by_the_cores_own_plans(station_env):
    cfg, store = setup(station_env, (TARGET, False))
    now = time.time()
    store.phones.upsert("001e7a000001", model="CP-7965G", state="seen", first_seen=now, last_seen=now)
    store.phones.upsert("001e7a000002", model="CP-7941G", state="seen", first_seen=now, last_seen=now)
    store.phones.upsert("001e7a000003", model="CP-7937G", state="seen", first_seen=now, last_seen=now)
    store.phones.upsert("001e7a000004", model="CP-7965G", current_load="SCCP45.8-3-2S", state="stuck",
                        first_seen=now, last_seen=now)
    got = dict(codes(cfg, store))
    assert got["no-target:CP-7941G"] == "red"                 # nothing for it at all
    assert got["not-upgradable:CP-7937G"] == "amber"          # .bin images, no manifest
    assert got["no-stone:CP-7965G"] == "red"                  # 8.3(2) known: it needs the 8.5(2) stone
    assert got["no-start-for-factory-reset:CP-7965G"] == "red"   # no term65 for the load it would start on


def test_the_stone_with_its_term_file_makes_a_7965_green(station_env):
    cfg, store = setup(station_env, (TARGET, False), (STONE, True))
    now = time.time()
    store.phones.upsert("001e7a000004", model="CP-7965G", current_load="SCCP45.8-3-2S", state="stuck",
                        first_seen=now, last_seen=now)
    assert codes(cfg, store) == []


def test_recovered_and_long_gone_phones_do_not_count(station_env):
    cfg, store = setup(station_env, (TARGET, True))
    now = time.time()
    store.phones.upsert("001e7a000002", model="CP-7941G", state="done", first_seen=now, last_seen=now)
    old = now - checkup.SEEN_WITHIN_S - 60
    store.phones.upsert("001e7a000003", model="CP-7941G", state="stuck", first_seen=old, last_seen=old)
    assert codes(cfg, store) == []


def test_health_carries_the_problems_and_ok_follows_red(station_env):
    cfg, store = setup(station_env)
    doc = views.health(cfg, store)
    assert doc["ok"] is False and doc["problems"][0]["code"] == "no-firmware"
    assert set(doc["problems"][0]) == {"code", "severity", "what", "do"}
    synth.write_load(station_env["APPLIANCE_TFTP_ROOT"], TARGET, 4096, term=True)
    store.kv.put("dhcp.status", {"exhausted": False, "others_full": True, "others_share": 5})
    time.sleep(1.1)                                    # the catalog polls the folder at most once a second
    doc = views.health(cfg, store)
    assert doc["ok"] is True and [p["code"] for p in doc["problems"]] == ["others-share-full"]


def test_the_watch_says_new_red_problems_once_after_grace_and_their_fix(station_env, caplog):
    cfg, store = setup(station_env, (TARGET, True))
    t0 = time.time()
    watch = Watch(cfg, store, started=t0)
    caplog.set_level(logging.INFO, logger="station")
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "refusing", "servers": ["10.0.0.254"], "serving": False})
    assert watch.tick(t0 + 1) == ["dhcp-guard-blocked"] and not caplog.records        # in its grace period
    watch.started = t0 - GRACE_S                                                # (the heartbeats are real)
    watch.tick()                                                                        # found on a second look
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("station cannot do its job: Another DHCP server (10.0.0.254)")
    assert caplog.records[0].levelno == logging.WARNING
    watch.tick()
    assert len(caplog.records) == 1                                                     # said once
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "clear", "servers": [], "serving": True})
    assert watch.tick() == []
    assert caplog.records[-1].getMessage().startswith("fixed: Another DHCP server") and len(caplog.records) == 2


def test_the_watch_waits_for_a_second_look(station_env, caplog):
    cfg, store = setup(station_env, (TARGET, True))
    watch = Watch(cfg, store, started=time.time() - 100)
    caplog.set_level(logging.INFO, logger="station")
    store.kv.put("dhcp.status", {"exhausted": True, "size": 1})
    watch.tick()
    assert not caplog.records
    store.kv.put("dhcp.status", {"exhausted": False, "size": 1})       # a blip: gone on the next look
    watch.tick()
    assert not caplog.records


def test_the_watch_does_not_repeat_what_start_up_said_but_says_its_fix(station_env, caplog):
    cfg, store = setup(station_env)
    t0 = time.time()
    watch = Watch(cfg, store, started=t0 - 100)
    caplog.set_level(logging.INFO, logger="station")
    watch.tick()
    watch.tick()
    assert not caplog.records                                    # no-firmware: `appliance run` said it
    synth.write_load(station_env["APPLIANCE_TFTP_ROOT"], TARGET, 4096, term=True)
    time.sleep(1.1)
    watch.tick()
    assert [r.getMessage()[:30] for r in caplog.records] == ["fixed: The firmware folder /tm"]


def test_a_broken_store_is_said_not_raised(station_env, caplog):
    cfg, store = setup(station_env)

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("disk gone")

    caplog.set_level(logging.WARNING, logger="station")
    assert Watch(cfg, Broken()).tick() == []
    assert "problems not checked" in caplog.text and "disk gone" in caplog.text
