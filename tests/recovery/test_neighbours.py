"""Passive load identification: lldpd's CDP/LLDP neighbours -> the tracker (issue 19 item 1; reference §0.0 item 4).

The listings below are what Debian 12's lldpd 1.0.16 prints (`lldpcli -f json show neighbors details`) for the
frames tests/lldp_frames.py builds, copied from runs on this machine: one neighbour is an object, several a list
of {ifname: neighbour}; a CDP chassis is keyed by its device ID and its descr is "<platform> running on\\n<version>";
an LLDP chassis is keyed by its system name when it has one; the LLDP-MED inventory only appears with `details`.
The end-to-end test runs the whole station (`appliance run`: supervisord, lldpd through its launcher) in a
namespace and a phone namespace sending real frames.
"""
from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.api import views
from appliance.firmware import synth
from appliance.recovery import lldp, neighbours
from appliance.recovery.facts import FileAsked, FileSent, Lease
from appliance.recovery.station import build_hub
from appliance.store import Store
from tests.conftest import wait_for
from tests.recovery.test_phone_behaviours import library

REPO = Path(__file__).resolve().parents[2]
STONE45, TARGET45 = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S"
STONE41, TARGET41 = "SCCP41.8-5-2S", "SCCP41.9-4-2SR3-3S"
LOADS = [STONE45, TARGET45, STONE41, TARGET41]
MAC, IP = "001f9eab59f1", "10.9.0.51"


def cdp_entry(device: str, descr: str | None, ifname: str = "lan0", rid: int = 1, port: str = "Port 1") -> dict:
    chassis: dict = {"id": {"type": "local", "value": device}}
    if descr is not None:
        chassis["descr"] = descr
    chassis["capability"] = {"type": "Station", "enabled": True}
    return {ifname: {"via": "CDPv2", "rid": str(rid), "age": "0 day, 00:00:01", "chassis": {device: chassis},
                     "port": {"id": {"type": "ifname", "value": port}, "descr": port, "ttl": "180"}}}


def lldp_entry(mac: str, software: str | None, model: str = "CP-7965G", chassis_ip: str | None = "10.79.1.9",
               name: str | None = "auto", ifname: str = "lan0", rid: int = 2) -> dict:
    ident = {"type": "ip", "value": chassis_ip} if chassis_ip else {"type": "mac", "value": ":".join(
        mac[i:i + 2] for i in range(0, 12, 2))}
    body = {"id": ident, "capability": [{"type": "Bridge", "enabled": True}, {"type": "Tel", "enabled": True}]}
    name = f"SEP{mac.upper()}" if name == "auto" else name
    inventory = {"manufacturer": "Cisco Systems, Inc.", "model": model}
    if software is not None:
        inventory["software"] = software
    return {ifname: {"via": "LLDP", "rid": str(rid), "age": "0 day, 00:00:01",
                     "chassis": {name: body} if name else body,
                     "port": {"id": {"type": "local", "value": f"{mac.upper()}:P1"}, "ttl": "180"},
                     "lldp-med": {"device-type": "Communication Device Endpoint (Class III)",
                                  "capability": [{"type": "Capabilities", "available": True},
                                                 {"type": "Inventory", "available": True}],
                                  "inventory": inventory}}}


def listing(*entries: dict) -> str:
    """The JSON lldpcli prints: nothing -> {"lldp": {}}; one -> an object; several -> a list."""
    if not entries:
        return '{\n  "lldp": {\n    \n  }\n}\n\n'
    interface = entries[0] if len(entries) == 1 else list(entries)
    return json.dumps({"lldp": {"interface": interface}}, indent=2) + "\n\n"


# What lldpd 1.0.16 printed for one 7941 (CDP), verbatim.
ONE_7941 = """{
  "lldp": {
    "interface": {
      "lan0": {
        "via": "CDPv2",
        "rid": "1",
        "age": "0 day, 00:00:00",
        "chassis": {
          "SEP001F9EAB59F1": {
            "id": {
              "type": "local",
              "value": "SEP001F9EAB59F1"
            },
            "descr": "Cisco IP Phone 7941 running on\\nSCCP41.8-2-1S",
            "capability": {
              "type": "Station",
              "enabled": true
            }
          }
        },
        "port": {
          "id": {
            "type": "ifname",
            "value": "Port 1"
          },
          "descr": "Port 1",
          "ttl": "180"
        }
      }
    }
  }
}

"""


@pytest.fixture
def lib(tmp_path):
    return library(tmp_path, LOADS, APPLIANCE_UPGRADE_WEB_PORT="0")


# ---- the parser ------------------------------------------------------------------------------------------
def test_one_cdp_phone_verbatim(lib):
    cat, _ = lib
    r = neighbours.read(ONE_7941, cat)
    assert not r.problems and len(r.neighbours) == 1
    n = r.claims[MAC]
    assert (n.mac, n.via, n.how, n.platform, n.model, n.version, n.load) == \
        (MAC, "CDPv2", "cdp", "Cisco IP Phone 7941", "CP-7941G", "SCCP41.8-2-1S", "SCCP41.8-2-1S")


def test_cdp_and_lldp_med_phones_in_a_list(lib):
    cat, _ = lib
    text = listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
                   lldp_entry("001f9eab59f3", STONE45),                                 # chassis ID is its address
                   lldp_entry("001f9eab59f7", TARGET45, chassis_ip=None),               # chassis ID is its MAC
                   lldp_entry("001f9eab59f8", STONE45, name=None),                      # only the port ID names it
                   lldp_entry("001f9eab59f9", None))                                    # no software revision
    r = neighbours.read(text.encode(), cat)
    assert {m: (c.load, c.how) for m, c in r.claims.items()} == {
        MAC: (STONE45, "cdp"), "001f9eab59f3": (STONE45, "lldp"), "001f9eab59f7": (TARGET45, "lldp"),
        "001f9eab59f8": (STONE45, "lldp")}
    assert r.claims["001f9eab59f3"].model == "CP-7965G"
    no_sw = next(n for n in r.neighbours if n.mac == "001f9eab59f9")
    assert no_sw.load is None and "no version" in no_sw.why


def test_empty_listing_and_foreign_neighbours(lib):
    cat, _ = lib
    assert neighbours.read(listing(), cat).neighbours == [] and not neighbours.read(listing(), cat).problems
    switch = cdp_entry("Switch01.example.com", "cisco WS-C2960-24PC-L running on\nCisco IOS Software, C2960")
    sonmp = {"lan0": {"via": "SONMP", "chassis": {"id": {"type": "ip", "value": "10.0.0.1"}}}}
    r = neighbours.read(listing(switch, sonmp, cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}")), cat)
    assert list(r.claims) == [MAC] and r.skipped == 2
    assert any("not SEP<MAC>" in p for p in r.problems) and any("SONMP" in p for p in r.problems)


@pytest.mark.parametrize("device", ["SEP001F9EAB59F", "SEP001F9EAB59FG", "SEP001F9EAB59F1X", "SEPFFFFFFFFFFFF",
                                    "SEP000000000000", "SEP011F9EAB59F1", "sep001f9eab59f1\n", "SEP" + "A" * 600,
                                    "", "<script>SEP001F9EAB59F1"])
def test_forged_or_malformed_device_ids_name_no_phone(lib, device):
    cat, _ = lib
    r = neighbours.read(listing(cdp_entry(device, f"Cisco IP Phone 7965 running on\n{STONE45}")), cat)
    assert r.claims == {} and r.skipped == 1
    assert all(len(p) < 300 and p.isprintable() for p in r.problems)


@pytest.mark.parametrize("descr,why", [
    ("Cisco IP Phone 7965 running on\n" + "x" * 1000, "no version"),           # lldpd keeps a whole TLV: too long
    ("Cisco IP Phone 7965 running on\nSCCP45.8-5-2S; reboot", "characters"),
    ("Cisco IP Phone 7965 running on\nSCCP45.8-5-2S\u00e9", "characters"),
    ("Cisco IP Phone 7941 running on\nSCCP45.8-5-2S", "not on this CP-7941G"),    # another model's load
    ("Cisco IP Phone 7965 running on\njar45sccp.9-9-9.sbn", "file name"),
    ("Cisco IP Phone 7965 running on\nterm65.default", "not a load ID"),
    ("Cisco IP Phone 7965 running on\n8.5(2)", "characters"),
    ("Cisco", "not a load ID"),                                                  # "Cisco\0 IP Phone": lldpd stops at NUL
    (" running on\nSCCP45.8-5-2S", None),                                        # empty platform TLV: the version holds
    ("SCCP45.8-5-2S", None),                                                     # version only, no platform TLV
])
def test_versions_that_are_not_loads_are_never_claims(lib, descr, why):
    cat, _ = lib
    r = neighbours.read(listing(cdp_entry("SEP001F9EAB59F1", descr)), cat)
    (n,) = r.neighbours
    if why is None:
        assert n.load == STONE45 and MAC in r.claims
    else:
        assert n.load is None and MAC not in r.claims and why in n.why, n
        assert len(n.version) <= 99 and n.version.isprintable()


@pytest.mark.parametrize("text", [
    "", "not json", '{"lldp": ', b"\xff\xfe\x00", "[]", "null", '{"lldp": []}', '{"lldp": "x"}',
    '{"lldp": {"interface": "lan0"}}', '{"lldp": {"interface": [1, "x", null, []]}}',
    '{"lldp": {"interface": {"lan0": 5}}}', '{"lldp": {"interface": {"lan0": {"via": 7}}}}',
    '{"lldp": {"interface": {"lan0": {"via": "CDPv2", "chassis": []}}}}',
    '{"lldp": {"interface": {"lan0": {"via": "CDPv2", "chassis": {"SEP001F9EAB59F1": {"id": "x"}}}}}}',
    '{"lldp": {"interface": {"lan0": {"via": "CDPv2", "chassis": {"SEP001F9EAB59F1": {"id": {"value": 5}, '
    '"descr": ["x"]}}}}}}',
    '{"lldp": {"interface": {"lan0": {"via": "LLDP", "chassis": {"id": {"type": "mac", "value": "zz"}}, '
    '"lldp-med": {"inventory": {"software": 5}}}}}}',
    "[" * 100_000 + "]" * 100_000,                                   # nesting deep enough to exhaust recursion
    '{"lldp": {"interface": {"lan0": {"via": "CDPv2", "chassis": {"SEP001F9EAB59F1": {"id": {"type": "local", '
    '"value": "SEP001F9EAB59F1"}, "descr": "Cisco IP Phone 7965 running on\\nSCCP45.8-5-2S"}}}}}, "x": 1e999}',
])
def test_malformed_listings_never_raise(lib, text):
    cat, _ = lib
    r = neighbours.read(text, cat)
    assert isinstance(r.claims, dict) and len(r.problems) <= neighbours.MAX_PROBLEMS


def test_oversized_listing_is_not_read(lib):
    cat, _ = lib
    big = listing(cdp_entry("SEP001F9EAB59F1", "Cisco IP Phone 7965 running on\n" + STONE45)) + " " * neighbours.MAX_OUTPUT
    r = neighbours.read(big, cat)
    assert r.claims == {} and "limit" in r.problems[0]


def test_a_flood_is_capped_and_quick(lib):
    cat, _ = lib
    entries = [cdp_entry(f"SEP0200{i:08X}", f"Cisco IP Phone 7965 running on\n{STONE45}", rid=i)
               for i in range(neighbours.MAX_ENTRIES + 500)]
    text = json.dumps({"lldp": {"interface": entries}}, separators=(",", ":"))
    assert len(text) <= neighbours.MAX_OUTPUT
    started = time.monotonic()
    r = neighbours.read(text, cat)
    assert len(r.neighbours) <= neighbours.MAX_ENTRIES and any("more than" in p for p in r.problems)
    assert time.monotonic() - started < 5


# What lldpd 1.0.16 printed, verbatim, for four CDP frames (tests.lldp_frames): 001F9EAB59F1 and ..F4 on the stone;
# ..F2 with a version of CR, LF, TAB, BS, ESC[31m, 0x1F (printed raw), '"', '\\', U+009B and U+202E; ..F3 with the
# device ID 'SEP\n"\\<ESC>', which lldpcli prints unescaped as its chassis key, breaking the whole listing.
LLDPD_BROKEN_KEY = (
    b'{\n'
    b'  "lldp": {\n'
    b'    "interface": [\n'
    b'      {\n'
    b'        "lan0": {\n'
    b'          "via": "CDPv2",\n'
    b'          "rid": "1",\n'
    b'          "age": "0 day, 00:00:02",\n'
    b'          "chassis": {\n'
    b'            "SEP001F9EAB59F1": {\n'
    b'              "id": {\n'
    b'                "type": "local",\n'
    b'                "value": "SEP001F9EAB59F1"\n'
    b'              },\n'
    b'              "descr": "Cisco IP Phone 7965 running on\\nSCCP45.8-5-2S",\n'
    b'              "capability": {\n'
    b'                "type": "Station",\n'
    b'                "enabled": true\n'
    b'              }\n'
    b'            }\n'
    b'          },\n'
    b'          "port": {\n'
    b'            "id": {\n'
    b'              "type": "ifname",\n'
    b'              "value": "Port 1"\n'
    b'            },\n'
    b'            "descr": "Port 1",\n'
    b'            "ttl": "180"\n'
    b'          }\n'
    b'        }\n'
    b'      },\n'
    b'      {\n'
    b'        "lan0": {\n'
    b'          "via": "CDPv2",\n'
    b'          "rid": "2",\n'
    b'          "age": "0 day, 00:00:02",\n'
    b'          "chassis": {\n'
    b'            "SEP001F9EAB59F2": {\n'
    b'              "id": {\n'
    b'                "type": "local",\n'
    b'                "value": "SEP001F9EAB59F2"\n'
    b'              },\n'
    b'              "descr": "Cisco IP Phone 7965 running on\\nSCCP45\\n\\r\\t\\b\\u001B[31m\x1f\\"\\\\\xc2\x9b\xe2\x80\xae",\n'
    b'              "capability": {\n'
    b'                "type": "Station",\n'
    b'                "enabled": true\n'
    b'              }\n'
    b'            }\n'
    b'          },\n'
    b'          "port": {\n'
    b'            "id": {\n'
    b'              "type": "ifname",\n'
    b'              "value": "Port 1"\n'
    b'            },\n'
    b'            "descr": "Port 1",\n'
    b'            "ttl": "180"\n'
    b'          }\n'
    b'        }\n'
    b'      },\n'
    b'      {\n'
    b'        "lan0": {\n'
    b'          "via": "CDPv2",\n'
    b'          "rid": "3",\n'
    b'          "age": "0 day, 00:00:02",\n'
    b'          "chassis": {\n'
    b'            "SEP\n'
    b'"\\\x1b": {\n'
    b'              "id": {\n'
    b'                "type": "local",\n'
    b'                "value": "SEP\\n\\"\\\\\\u001B"\n'
    b'              },\n'
    b'              "descr": "Cisco IP Phone 7965 running on\\nSCCP45.8-5-2S",\n'
    b'              "capability": {\n'
    b'                "type": "Station",\n'
    b'                "enabled": true\n'
    b'              }\n'
    b'            }\n'
    b'          },\n'
    b'          "port": {\n'
    b'            "id": {\n'
    b'              "type": "ifname",\n'
    b'              "value": "Port 1"\n'
    b'            },\n'
    b'            "descr": "Port 1",\n'
    b'            "ttl": "180"\n'
    b'          }\n'
    b'        }\n'
    b'      },\n'
    b'      {\n'
    b'        "lan0": {\n'
    b'          "via": "CDPv2",\n'
    b'          "rid": "4",\n'
    b'          "age": "0 day, 00:00:02",\n'
    b'          "chassis": {\n'
    b'            "SEP001F9EAB59F4": {\n'
    b'              "id": {\n'
    b'                "type": "local",\n'
    b'                "value": "SEP001F9EAB59F4"\n'
    b'              },\n'
    b'              "descr": "Cisco IP Phone 7965 running on\\nSCCP45.8-5-2S",\n'
    b'              "capability": {\n'
    b'                "type": "Station",\n'
    b'                "enabled": true\n'
    b'              }\n'
    b'            }\n'
    b'          },\n'
    b'          "port": {\n'
    b'            "id": {\n'
    b'              "type": "ifname",\n'
    b'              "value": "Port 1"\n'
    b'            },\n'
    b'            "descr": "Port 1",\n'
    b'            "ttl": "180"\n'
    b'          }\n'
    b'        }\n'
    b'      }\n'
    b'    ]\n'
    b'  }\n'
    b'}\n'
    b'\n'
)


def test_one_broken_neighbour_never_hides_the_others(lib):
    """lldpcli leaves keys unescaped: one frame's device ID broke the whole listing; now only that neighbour is lost."""
    cat, _ = lib
    with pytest.raises(ValueError):
        json.loads(LLDPD_BROKEN_KEY, strict=False)             # the listing as a whole is not JSON
    r = neighbours.read(LLDPD_BROKEN_KEY, cat)
    assert {m: c.load for m, c in r.claims.items()} == {"001f9eab59f1": STONE45, "001f9eab59f4": STONE45}
    assert r.malformed == 1 and any("broken JSON" in p for p in r.problems)
    # the neighbour with control characters in its version (0x1F raw: not strict JSON) is read, and claims nothing
    odd = next(n for n in r.neighbours if n.mac == "001f9eab59f2")
    assert odd.load is None and odd.version.isprintable() and len(r.neighbours) == 3


@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_broken_neighbour_anywhere_in_the_list_costs_only_itself(lib, position):
    cat, _ = lib
    good = [cdp_entry(f"SEP001F9EAB59F{i}", f"Cisco IP Phone 7965 running on\n{STONE45}", rid=i) for i in (1, 2)]
    text = listing(*good[:position], cdp_entry("SEPBROKEN", "x", rid=9), *good[position:])
    text = text.replace('"SEPBROKEN"', '"SEP\n\"\\\x1b"')          # unescaped, as lldpcli prints a key
    r = neighbours.read(text.encode(), cat)
    assert set(r.claims) == {"001f9eab59f1", "001f9eab59f2"} and r.malformed == 1


def test_control_characters_inside_strings_are_tolerated(lib):
    cat, _ = lib
    text = listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
                   cdp_entry("SEP001F9EAB59F2", "Cisco IP Phone 7965 running on\nSCCP45\x1f\x9b\u202e", rid=2))
    raw = text.replace("\\u001f", "\x1f")                          # lldpcli prints 0x1F raw
    assert "\x1f" in raw
    r = neighbours.read(raw, cat)
    assert list(r.claims) == ["001f9eab59f1"] and r.malformed == 0 and len(r.neighbours) == 2


def test_unterminated_and_unreadable_pieces_are_counted_not_raised(lib):
    cat, _ = lib
    good = listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
                   cdp_entry("SEP001F9EAB59F2", f"Cisco IP Phone 7965 running on\n{STONE45}", rid=2))
    broken = good.replace('      {\n        "lan0"', '      {\n      {\n        "lan0"', 1).replace('"rid": "2"', '"rid" "2"')
    r = neighbours.read(broken + "garbage", cat)
    assert r.malformed == 2 and list(r.claims) == ["001f9eab59f1"] and len(r.problems) <= neighbours.MAX_PROBLEMS
    assert len(neighbours.read(b"\xff" + good.encode()[1:], cat).claims) == 2     # a broken frame around them


def test_two_neighbours_disagreeing_on_one_mac_cancel(lib):
    cat, _ = lib
    r = neighbours.read(listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
                                cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{TARGET45}",
                                          port="Port 2", rid=2),
                                lldp_entry(MAC, STONE45, rid=3)), cat)
    assert MAC not in r.claims and STONE45 in r.conflicts[MAC] and TARGET45 in r.conflicts[MAC]
    agree = neighbours.read(listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
                                    lldp_entry(MAC, STONE45.lower())), cat)
    assert agree.claims[MAC].load == STONE45 and not agree.conflicts


def test_verdict_a_claim_never_outranks_the_phones_own_record():
    assert neighbours.verdict(STONE45, None, None) is None
    assert neighbours.verdict(STONE45, "SCCP45.8-3-2S", "cdp") is None           # a newer claim replaces a claim
    assert neighbours.verdict(STONE45, "SCCP45.8-3-2S", "lldp") is None
    assert neighbours.verdict(STONE45, STONE45.lower(), "step") == "already known"
    for how in ("step", "settled", "web", "option60", None):
        why = neighbours.verdict("SCCP45.8-3-2S", TARGET45, how)
        assert why and TARGET45 in why and "never overrides" in why


# ---- the poller and the hub ------------------------------------------------------------------------------
class Listing:
    """The poller's `run`: what lldpcli would print now."""

    def __init__(self, text: str | None = None, why: str = ""):
        self.text, self.why = text, why

    def __call__(self):
        return self.text, self.why


@pytest.fixture
def hub(lib):
    cat, cfg = lib
    store = Store(cfg.db_path)
    h = build_hub(cfg, cat, store)
    yield h, cat, cfg, store
    h.stop()


def _installs(h, load: str, ip: str = IP) -> None:
    for name in [f"{load}.loads", *synth.component_names(load)]:
        h.run_once(FileSent(time.time(), ip, name))


def ask(h, ip: str = IP, mac: str = MAC) -> str | None:
    """The phone asks its config: served from the hub's answer table (as a worker serves it), then told."""
    h.pump()
    row = h.table.of_mac(mac)
    served = row.config if row is not None else None
    h.run_once(FileAsked(time.time(), ip, f"SEP{mac.upper()}.cnf.xml", served=served))
    return served


def poll(poller, h) -> None:
    poller.poll()
    h.pump()


def test_claim_waits_for_the_lease_then_the_first_config_names_the_target(hub):
    h, cat, cfg, _ = hub
    run = Listing(listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}")))
    poller = lldp.Poller(cfg, cat, h, run=run)
    h.neighbours = poller
    poll(poller, h)
    assert MAC not in h.tracker.phones, "a claim never creates a phone"
    assert poller.info()["claims"] == 1 and poller.info()["delivered"] == 1 and poller.info()["ok"]
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    p = h.tracker.phones[MAC]
    assert (p.current, p.how, p.before) == (STONE45, "cdp", STONE45)
    assert ask(h) == TARGET45
    poll(poller, h)
    assert poller.info()["delivered"] == 1, "the same claim is handed over once"

    # The phone installs the target: its downloads are the proof now.  A claim of an older load (stale or
    # forged) is refused, and the config still names the target.
    _installs(h, TARGET45)
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    assert ask(h) == TARGET45
    assert (p.current, p.how) == (TARGET45, "step")
    run.text = listing(cdp_entry("SEP001F9EAB59F1", "Cisco IP Phone 7965 running on\nSCCP45.8-3-2S"))
    poll(poller, h)
    assert (p.current, p.how) == (TARGET45, "step"), "the phone's install outranks the claim"
    assert ask(h) == TARGET45


def test_claim_for_a_known_phone_goes_at_once_and_a_later_claim_replaces_it(hub):
    h, cat, cfg, _ = hub
    poller = lldp.Poller(cfg, cat, h, run=Listing(listing(lldp_entry(MAC, "SCCP45.8-3-2S"))))
    h.neighbours = poller
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    poll(poller, h)
    p = h.tracker.phones[MAC]
    assert (p.current, p.how) == ("SCCP45.8-3-2S", "lldp")
    poller.run = Listing(listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}")))
    poll(poller, h)
    assert (p.current, p.how) == (STONE45, "cdp")
    assert ask(h) == TARGET45


def test_a_forged_claim_loses_to_the_phones_refusal(hub):
    """CDP says the stone, the phone really runs 8.3(2): it refuses the target (Auth Fail), then gets the stone."""
    h, cat, cfg, _ = hub
    poller = lldp.Poller(cfg, cat, h, run=Listing(listing(
        cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"))))
    h.neighbours = poller
    poll(poller, h)
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    assert ask(h) == TARGET45
    h.run_once(FileSent(time.time(), IP, f"{TARGET45}.loads"))            # Auth Fail: no file of it
    assert ask(h) == STONE45
    poller.poll()                                                       # the same claim is not handed over again
    assert ask(h) == STONE45


def test_conflicting_claims_are_not_used_and_lldpd_failures_are_reported(hub, caplog):
    h, cat, cfg, _ = hub
    poller = lldp.Poller(cfg, cat, h, run=Listing(listing(
        cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{STONE45}"),
        cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{TARGET45}", port="Port 2", rid=2))))
    h.neighbours = poller
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    with caplog.at_level(logging.INFO, logger="neighbours"):
        poll(poller, h)
    assert h.tracker.phones[MAC].current is None and poller.info()["conflicts"] == 1
    assert "disagree" in caplog.text
    assert ask(h) == STONE45      # unknown load: stepwise, the stone

    poller.run = Listing(None, "lldpd not answering on /x/lldpd.socket: unable to connect")
    poller._started -= lldp.STARTUP_GRACE_S + 1
    with caplog.at_level(logging.WARNING, logger="neighbours"):
        poll(poller, h)
        poll(poller, h)
    info = poller.info()
    assert not info["ok"] and "not answering" in info["status"] and info["failures"] == 2
    assert caplog.text.count("CDP/LLDP load identification unavailable") == 1, "said once, not every poll"


def test_poller_posts_the_good_neighbours_of_a_broken_listing_and_says_so_once(hub, caplog):
    h, cat, cfg, _ = hub
    poller = lldp.Poller(cfg, cat, h, run=Listing(LLDPD_BROKEN_KEY))
    posted = []
    h.post = posted.append
    with caplog.at_level(logging.WARNING, logger="neighbours"):
        for _ in range(3):
            poller.poll()
    assert sorted(f.mac for f in posted) == ["001f9eab59f1", "001f9eab59f4"]
    assert poller.info()["malformed"] == 1 and poller.info()["claims"] == 2
    said = [r for r in caplog.records if "broken JSON" in r.getMessage()]
    assert len(said) == 1 and "the other 3 are read" in said[0].getMessage()


def test_a_claim_that_keeps_changing_is_not_believed(hub):
    """Two senders taking turns with one device ID (lldpd keeps the last frame's words): bounded, then ignored."""
    h, cat, cfg, _ = hub
    stories = [listing(cdp_entry("SEP001F9EAB59F1", f"Cisco IP Phone 7965 running on\n{load}"))
               for load in ("SCCP45.8-3-2S", STONE45)]
    poller = lldp.Poller(cfg, cat, h, run=Listing(stories[0]))
    h.neighbours = poller
    h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))
    for i in range(12):
        poller.run = Listing(stories[i % 2])
        poll(poller, h)
    assert poller.info()["delivered"] == lldp.UNSTEADY_CHANGES - 1 and poller.info()["unsteady"] == 1
    poller.run = Listing(listing())                      # gone from lldpd: forgotten, a later claim is news
    poll(poller, h)
    assert poller.info()["unsteady"] == 0


def test_poller_thread_starts_stops_and_wakes_on_a_lease(hub):
    h, cat, cfg, _ = hub
    calls = []
    poller = lldp.Poller(cfg, cat, h, run=lambda: (calls.append(time.monotonic()), (listing(), ""))[1])
    h.neighbours = poller
    poller.start()
    try:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        first = len(calls)
        h.run_once(Lease(time.time(), MAC, IP, True, "CP-7965G"))           # no claim: look again now
        deadline = time.monotonic() + lldp.POLL_S - 0.5
        while len(calls) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) > first
    finally:
        poller.stop()
    assert poller._thread is not None and not poller._thread.is_alive()


# ---- lldpd's launcher, the config key, supervisor --------------------------------------------------------
def test_command_is_receive_only_cdp_on_one_interface_nothing_hidden(lib):
    _, cfg = lib
    argv = lldp.command(cfg, "/usr/sbin/lldpd")
    assert argv[0] == "/usr/sbin/lldpd" and "-r" in argv and "-c" in argv and "-d" in argv
    assert argv[argv.index("-H") + 1] == "0" and argv[argv.index("-I") + 1] == cfg.network.interface
    assert argv[argv.index("-u") + 1] == str(lldp.socket_path(cfg)) and argv[argv.index("-O") + 1].endswith("lldpd.conf")
    assert not any(a.startswith("-cc") or a in ("-M", "-x", "-ll") for a in argv), "nothing that makes it transmit"
    assert f"max-neighbors {lldp.MAX_NEIGHBOURS}" in lldp.conf_text() and lldp.MAX_NEIGHBOURS >= 96
    assert "rx-only" in lldp.conf_text()


def test_why_not_names_what_is_missing(lib, monkeypatch):
    _, cfg = lib
    why = lldp.why_not(cfg, status_text="Name:\tx\nCapEff:\t0000000000000000\n")
    if lldp.find("lldpd"):
        assert "CAP_NET_RAW" in why and "CAP_SYS_CHROOT" in why and "CAP_SETUID" in why
        assert lldp.why_not(cfg, status_text="CapEff:\t000001ffffffffff\n") is None
    monkeypatch.setattr(lldp, "find", lambda name: None if name == "lldpd" else "/usr/sbin/" + name)
    assert "lldpd is not installed" in lldp.why_not(cfg)
    monkeypatch.setattr(lldp, "find", lambda name: None if name == "lldpcli" else "/usr/sbin/" + name)
    assert "lldpcli is not installed" in lldp.why_not(cfg)


@pytest.fixture
def launcher_env(lib, monkeypatch, tmp_path):
    _, cfg = lib
    for key, value in {"APPLIANCE_CONFIG": str(REPO / "config" / "appliance.toml"), "APPLIANCE_NETWORK_INTERFACE": "lo",
                       "APPLIANCE_TFTP_ROOT": str(tmp_path / "fw"), "APPLIANCE_STATE_DIR": cfg.state.dir}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(lldp, "RUN_DIR", tmp_path / "run")
    execs: list = []
    monkeypatch.setattr(lldp.os, "execv", lambda exe, argv: execs.append((exe, argv)))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level      # lldp.main sets up the station's logging
    yield cfg, execs
    root.handlers[:] = handlers
    root.setLevel(level)


def test_launcher_off_missing_and_on(launcher_env, monkeypatch, capsys):
    cfg, execs = launcher_env
    monkeypatch.setenv("APPLIANCE_UPGRADE_NEIGHBOURS", "false")
    assert lldp.main() == 0 and not execs
    assert "[upgrade] neighbours = false" in capsys.readouterr().out
    monkeypatch.setenv("APPLIANCE_UPGRADE_NEIGHBOURS", "true")
    monkeypatch.setattr(lldp, "find", lambda name: None)
    assert lldp.main() == 0 and not execs
    out = capsys.readouterr().out
    assert "lldpd not started: lldpd is not installed (Debian package lldpd)" in out and "runs on without" in out
    monkeypatch.setattr(lldp, "find", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(lldp, "why_not", lambda cfg: None)
    slept: list = []
    monkeypatch.setattr(lldp.time, "sleep", slept.append)
    assert lldp.main() == 1 and execs and execs[0][0] == "/usr/sbin/lldpd" and "-r" in execs[0][1]
    conf = lldp.run_dir(cfg) / lldp.CONF_NAME
    assert "max-neighbors" in conf.read_text() and conf.stat().st_mode & 0o777 == 0o644
    assert lldp.run_dir(cfg).stat().st_mode & 0o777 == 0o755, "setuid lldpcli (_lldpd) must reach the socket"
    assert lldp.main() == 1 and slept and 0 < slept[0] <= lldp.LAUNCH_BACKOFF_S, "a restart right after one waits"


def test_bad_config_value_exits_2_naming_the_key(tmp_path, lib):
    _, cfg = lib
    env = dict(os.environ, APPLIANCE_CONFIG=str(REPO / "config" / "appliance.toml"), APPLIANCE_NETWORK_INTERFACE="lo",
               APPLIANCE_TFTP_ROOT=str(tmp_path / "fw"), APPLIANCE_STATE_DIR=str(tmp_path / "state"),
               APPLIANCE_UPGRADE_NEIGHBOURS="maybe")
    r = subprocess.run([sys.executable, "-m", "appliance", "check-config"], env=env, capture_output=True, text=True,
                       timeout=60, cwd=str(REPO))
    assert r.returncode == 2 and "[upgrade] neighbours" in r.stderr, r.stderr
    toml = tmp_path / "bad.toml"
    toml.write_text('[upgrade]\nneighbours = "yes"\n')
    env.pop("APPLIANCE_UPGRADE_NEIGHBOURS")
    env["APPLIANCE_CONFIG"] = str(toml)
    r = subprocess.run([sys.executable, "-m", "appliance", "check-config"], env=env, capture_output=True, text=True,
                       timeout=60, cwd=str(REPO))
    assert r.returncode == 2 and "[upgrade] neighbours" in r.stderr and "true or false" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "appliance.recovery.lldp"], env=env, capture_output=True, text=True,
                       timeout=60, cwd=str(REPO))
    assert r.returncode == 2 and "[upgrade] neighbours" in r.stderr


def test_supervisor_runs_the_launcher_and_every_variable_it_uses_is_set(lib):
    from appliance import supervise
    _, cfg = lib
    conf = configparser.RawConfigParser()
    conf.read(REPO / "config" / "supervisord.conf")
    prog = conf["program:lldpd"]
    assert "-m appliance.recovery.lldp" in prog["command"] and prog["startsecs"] == "0"
    assert prog["autostart"] == "%(ENV_APPLIANCE_AUTOSTART_LLDPD)s" and prog["autorestart"] == "unexpected"
    env = supervise.supervisor_env(cfg)
    assert env["APPLIANCE_AUTOSTART_LLDPD"] == "true"
    used = set(re.findall(r"%\(ENV_(\w+)\)s", (REPO / "config" / "supervisord.conf").read_text()))
    assert used <= set(env), used - set(env)
    # The image builds its own lldpd (in the Dockerfile's native stage: Debian's package links net-snmp, past the image's
    # size budget); tests/test_image.py proves that one hears a phone's CDP.
    make = (REPO / "Makefile").read_text()
    assert re.search(r"TEST_DEBS :=[^\n]*(\\\n[^\n]*)*\blldpd\b", make) and re.search(r"TEST_TOOLS :=[^\n]*\blldpd\b", make)


# ---- what the API, status and dashboard show -------------------------------------------------------------
def test_load_source_in_the_phone_view_matches_the_openapi_schema():
    row = {"mac": MAC, "first_seen": 1.0, "last_seen": 2.0, "current_load": STONE45, "plan": [TARGET45],
           "hints": {"memory": {"how": "cdp"}}}
    doc = views.phone(row)
    assert doc["load_source"] == "cdp"
    assert views.phone({**row, "hints": json.dumps({"memory": {"how": "step"}})})["load_source"] == "step"
    assert views.phone({**row, "current_load": None})["load_source"] is None
    assert views.phone({**row, "hints": {"memory": {"how": "<b>x</b>"}}})["load_source"] == "other"
    schema = json.loads((REPO / "appliance" / "api" / "openapi.json").read_text())["components"]["schemas"]["Phone"]
    assert set(doc) == set(schema["required"]) == set(schema["properties"])
    assert set(views.LOAD_SOURCES) | {"other"} <= set(schema["properties"]["load_source"]["enum"])


def test_status_shows_the_load_and_its_source(tmp_path):
    from appliance import config
    env = {"APPLIANCE_CONFIG": str(REPO / "config" / "appliance.toml"), "APPLIANCE_NETWORK_INTERFACE": "lo",
           "APPLIANCE_TFTP_ROOT": str(tmp_path), "APPLIANCE_STATE_DIR": str(tmp_path / "state")}
    store = Store(config.load(environ=env).db_path)
    store.phones.upsert(MAC, model="CP-7965G", ip=IP, state="configured", current_load=STONE45, plan=[TARGET45],
                       hints={"memory": {"how": "cdp"}})
    store.services.beat("tftp", os.getpid(), {"neighbours": {"status": "reading CDP/LLDP neighbours on lo: 1 neighbours",
                                                        "ok": True}})
    r = subprocess.run([sys.executable, "-m", "appliance", "status"], env=dict(os.environ, **env), capture_output=True,
                       text=True, timeout=60, cwd=str(REPO))
    assert f"runs {STONE45} (cdp)" in r.stdout and "neighbours: reading CDP/LLDP neighbours on lo" in r.stdout, r.stdout


try:
    from tests.test_api_server import api  # noqa: F401  (module-scoped running API)
    from tests.test_dashboard import CHROMIUM, page  # noqa: F401
except ImportError:       # playwright missing: the dashboard test skips
    CHROMIUM = None


@pytest.mark.skipif(CHROMIUM is None, reason="chromium or playwright not installed (make test installs them)")
def test_dashboard_row_says_where_the_load_came_from(api, page):  # noqa: F811
    base, store = api
    store.phones.upsert("001f9eab5a01", model="CP-7965G", ip="10.0.0.31", state="configured", current_load=STONE45,
                       plan=[TARGET45], target_load=TARGET45, hints={"memory": {"how": "cdp"}})
    page.goto(base + "/")
    row = page.locator('tr[data-mac="001f9eab5a01"]')
    row.wait_for(timeout=10000)
    assert f"runs {STONE45} (CDP announcement)" in row.inner_text()
    assert row.locator('[data-source="cdp"]').count() == 1


# ---- end to end: the whole station in a namespace, a phone namespace sending real frames ---------------------
E2E_STATION = "10.81.0.1"
A, B, C, D, FORGED = "001f9eab59f1", "001f9eab59f2", "001f9eab59f3", "001f9eab59f4", "001f9eab59e4"


def _lldpd_cannot_run(tmp_path) -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "no network namespaces here"

    class Cfg:                           # why_not reads only these
        class network:
            interface = "lo"

        class state:
            dir = str(tmp_path)
    why = lldp.why_not(Cfg)
    return f"lldpd cannot run here: {why} (`make test` installs the lldpd package)" if why else None


def _station_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _neighbour_info(state: Path, part: str = "neighbours") -> dict:
    try:
        rows = Store(state / "station.db").services.all()
    except Exception:
        return {}
    tftp = next((r for r in rows if r["name"] == "tftp"), None)
    return ((tftp or {}).get("info") or {}).get(part) or {}


def _phone_view(state: Path, mac: str) -> dict | None:
    return next((p for p in views.phones(Store(state / "station.db")) if p["mac"] == mac), None)


@pytest.fixture
def station(tmp_path):
    why = _lldpd_cannot_run(tmp_path)
    if why:
        pytest.skip(why)
    sys.path.insert(0, str(REPO))
    from bench.dhcp_lab import PYTHON, Lab, sh, station_env, wait_serving
    with Lab("nb", subnet="10.81.0") as lab:
        lab.add("srv", E2E_STATION)
        lab.add("ph")
        # A phone's switch port passes LLDP (01:80:c2:00:00:0e) to the station; a Linux bridge drops that group
        # address unless told (bit 14 of group_fwd_mask).  CDP's 01:00:0c:cc:cc:cc is flooded like any multicast.
        sh("ip", "netns", "exec", lab.switch, "ip", "link", "set", "br0", "type", "bridge", "group_fwd_mask", "0x4000")
        state = tmp_path / "st"
        fw = state / "firmware"
        for load in LOADS:
            synth.write_load(fw, load, size_bytes=20000, components=2)
        env = station_env(state, DHCP_POOL_START="10.81.1.1", DHCP_POOL_END="10.81.1.250")
        station_mac = json.loads(lab.run("srv", "ip", "-j", "link", "show", "lan0").stdout)[0]["address"]
        sniffed = open(tmp_path / "sniffed.txt", "w")
        sniffer = lab.popen("ph", PYTHON, "-m", "tests.lldp_frames", "sniff", "lan0", stdout=sniffed, cwd=str(REPO))
        wait_for(lambda: (tmp_path / "sniffed.txt").read_text().startswith("listening"), 10, "the sniffer")
        log = open(tmp_path / "station.log", "a")      # O_APPEND: every program reopens /dev/stdout
        proc = lab.popen("srv", PYTHON, "-m", "appliance", "run", env=env, stdout=log, cwd=str(REPO))
        try:
            wait_serving(state, proc, timeout=60)
            wait_for(lambda: _neighbour_info(state).get("ok"), 40, "the file service reading lldpd's neighbours")

            def phone(*args: str, timeout: float = 60) -> dict:
                r = lab.run("ph", PYTHON, "-m", "tests.lldp_frames", *args, timeout=timeout)
                assert r.returncode == 0, r.stdout + r.stderr
                return json.loads(r.stdout.strip().splitlines()[-1])

            yield lab, state, env, phone, station_mac.replace(":", ""), tmp_path
        finally:
            lab.kill(proc, wait=30)               # supervisord stops every program, lldpd too
            for pid in _station_pids(lab.members["srv"]):
                try:
                    os.kill(pid, 9)               # anything the station left behind in its namespace
                except ProcessLookupError:
                    pass
            lab.kill(sniffer)
            sniffed.close()
            log.close()
            shutil.rmtree(lldp.run_dir_for(state), ignore_errors=True)


def _cdp(mac: str, version: str, platform: str = "Cisco IP Phone 7965", **kw) -> dict:
    return {"kind": "cdp", "src": mac, "device": f"SEP{mac.upper()}", "version": version, "platform": platform, **kw}


@pytest.mark.netns
@pytest.mark.slow
def test_cdp_and_lldp_med_announcements_name_each_phones_load_before_it_fetches_anything(station):
    lab, state, env, phone, station_mac, tmp = station
    started = time.monotonic()
    real = [_cdp(A, STONE45),                                            # on the stone already
            _cdp(B, "SCCP41.8-2-1S", "Cisco IP Phone 7941"),             # below the stone
            {"kind": "lldp", "src": C, "software": STONE45, "chassis_ip": "10.81.1.99"},   # LLDP-MED only
            _cdp(D, STONE45), {"kind": "lldp", "src": D, "software": TARGET45}]              # two stories: neither
    bad = [_cdp("001f9eab59e1", STONE45, extra="0005ffff41"),           # a TLV longer than the frame
           _cdp("001f9eab59e2", "x" * 1000),                             # oversized version
           _cdp("001f9eab59e3", "", version_hex="534343503435ff00e9"),   # non-ASCII, NUL
           _cdp(FORGED, STONE45, checksum=0x1234),                       # wrong checksum: lldpd keeps it (a claim)
           _cdp("001f9eab59e5", STONE45, truncate=40),                   # cut short
           {"kind": "cdp", "src": "001f9eab59e6", "device": "Switch01", "version": "Cisco IOS", "platform": "WS-C2960"},
           {"kind": "cdp", "src": "001f9eab59e7", "device": "SEP00000000000G", "version": STONE45, "platform": "x"},
           {"kind": "raw", "src": "001f9eab59e8", "hex": "01000ccccccc001f9eab59e8" + "0040aaaa0300000c2000" + "ff" * 60},
           # a device ID with LF, '"', '\\' and ESC: lldpcli prints it unescaped as a key, breaking its listing
           dict(_cdp("001f9eab59e9", STONE45), device_hex="5345500a225c1b")]
    flood = [dict(_cdp(A, STONE45), repeat=300)]                          # one phone, announcing in a loop
    flood += [_cdp(f"0200{i:08x}", STONE45) for i in range(400)]          # 400 forged device IDs
    r = lab.run("ph", PYTHON_E2E(), "-m", "tests.lldp_frames", "send", "lan0", json.dumps(real + bad + flood), timeout=60)
    assert r.returncode == 0, r.stderr
    info = wait_for(lambda: (lambda i: i if i.get("claims", 0) >= 4 and i.get("conflicts", 0) >= 1 else None)(
        _neighbour_info(state)), 30, "the claims of A, B, C and the forged one, and D's conflict")
    assert info["neighbours"] <= 2 * lldp.MAX_NEIGHBOURS, info            # lldpd's cap held the flood
    assert info["malformed"] == 1, info                                   # the broken one, and only it, dropped
    listed = lab.run("srv", "lldpcli", "-u", str(lldp.run_dir_for(state) / lldp.SOCKET_NAME), "-f", "json", "show", "neighbors",
                     "details", timeout=20)
    assert listed.returncode == 0 and len(listed.stdout) < neighbours.MAX_OUTPUT
    assert listed.stdout.count('"via": "CDPv2"') <= lldp.MAX_NEIGHBOURS

    # A phone CDP says is on the stone: its load shows (source cdp) once it leases, before it fetches anything,
    # and its first config names the target.
    lease_a = phone("lease", "lan0", A, "CP-7965G")
    assert lease_a.get("ip"), lease_a
    row = wait_for(lambda: (lambda p: p if p and p["current_load"] else None)(_phone_view(state, A)), 15, "A's row")
    assert (row["current_load"], row["load_source"], row["load_before"]) == (STONE45, "cdp", STONE45), row
    assert row["transfer"] is None and row["state"] == "seen", row
    api = lab.run("srv", PYTHON_E2E(), "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], "
                  "timeout=5).read().decode())", f"http://{E2E_STATION}:8080/api/v1/phones/{A}", timeout=30)
    doc = json.loads(api.stdout)
    assert (doc["current_load"], doc["load_source"]) == (STONE45, "cdp") and doc["transfers"] == [], api.stdout[:500]
    station_vars = [f"{k}={v}" for k, v in env.items() if k.startswith("APPLIANCE_") or k == "PYTHONPATH"]
    status = lab.run("srv", "env", *station_vars, PYTHON_E2E(), "-m", "appliance", "status", timeout=30)
    assert f"runs {STONE45} (cdp)" in status.stdout and "neighbours: reading CDP/LLDP neighbours on lan0" in status.stdout, \
        status.stdout
    first = phone("config", E2E_STATION, lease_a["ip"], A)
    assert first[f"SEP{A.upper()}.cnf.xml"]["load"] == TARGET45, first

    # A 7941 CDP says runs 8.2(1): the stone first, and the report knows what it ran.
    lease_b = phone("lease", "lan0", B, "CP-7941G")
    row = wait_for(lambda: (lambda p: p if p and p["current_load"] else None)(_phone_view(state, B)), 15, "B's row")
    assert (row["current_load"], row["load_source"]) == ("SCCP41.8-2-1S", "cdp"), row
    assert phone("config", E2E_STATION, lease_b["ip"], B)[f"SEP{B.upper()}.cnf.xml"]["load"] == STONE41

    # LLDP-MED only (chassis ID its address, MAC from its system name): the same, source lldp.
    lease_c = phone("lease", "lan0", C, "CP-7965G")
    row = wait_for(lambda: (lambda p: p if p and p["current_load"] else None)(_phone_view(state, C)), 15, "C's row")
    assert (row["current_load"], row["load_source"]) == (STONE45, "lldp"), row
    assert phone("config", E2E_STATION, lease_c["ip"], C)[f"SEP{C.upper()}.cnf.xml"]["load"] == TARGET45

    # CDP and LLDP telling two stories about D: neither is believed; unknown load, stepwise, the stone.  (Two CDP
    # frames with one device ID cannot disagree in the listing: lldpd keeps one chassis per ID, the last frame's.)
    lease_d = phone("lease", "lan0", D, "CP-7965G")
    assert phone("config", E2E_STATION, lease_d["ip"], D)[f"SEP{D.upper()}.cnf.xml"]["load"] == STONE45
    assert _phone_view(state, D)["current_load"] is None

    # Claims never make phones: only the four that leased have rows (not the forged one, not the flood).
    assert {p["mac"] for p in views.phones(Store(state / "station.db"))} == {A, B, C, D}

    # A installs the target; its downloads are the proof now.  A later claim of an older load is refused.
    names = [f"{TARGET45}.loads", *synth.component_names(TARGET45, 2)]
    got = phone("get", E2E_STATION, lease_a["ip"], *names)
    assert all("bytes" in v for v in got.values()), got
    lease_a = phone("lease", "lan0", A, "CP-7965G")
    assert phone("config", E2E_STATION, lease_a["ip"], A)[f"SEP{A.upper()}.cnf.xml"]["load"] == TARGET45
    row = wait_for(lambda: (lambda p: p if p and p["state"] == "done" else None)(_phone_view(state, A)), 15, "A done")
    assert (row["current_load"], row["load_source"]) == (TARGET45, "step"), row
    refused = _neighbour_info(state, "tracker").get("claims_refused", 0)
    r = lab.run("ph", PYTHON_E2E(), "-m", "tests.lldp_frames", "send", "lan0", json.dumps([_cdp(A, "SCCP45.8-3-2S")]))
    assert r.returncode == 0, r.stderr
    wait_for(lambda: _neighbour_info(state, "tracker").get("claims_refused", 0) > refused, 20,
             "the downgrade claim refused")
    assert phone("config", E2E_STATION, lease_a["ip"], A)[f"SEP{A.upper()}.cnf.xml"]["load"] == TARGET45
    row = _phone_view(state, A)
    assert (row["current_load"], row["load_source"], row["state"]) == (TARGET45, "step", "done"), row

    # The station never announced itself (lldpd receive-only); the sniffer did see the phones' frames.
    time.sleep(1)
    seen = [line.split() for line in (tmp / "sniffed.txt").read_text().splitlines()[1:]]
    assert any(src == A for src, _dst, _n in seen), "the sniffer saw nothing: it proves nothing"
    assert not [s for s in seen if s[0] == station_mac], f"the station sent {len(seen)} CDP/LLDP frames"
    # lldpd read the station's lldpd.conf (asked of lldpd itself: its start-up lines are DEBUG in the station's log).
    conf = lab.run("srv", "lldpcli", "-u", str(lldp.run_dir_for(state) / lldp.SOCKET_NAME), "-f", "keyvalue", "show",
                   "configuration", timeout=20)
    assert f"configuration.config.max-neighbors={lldp.MAX_NEIGHBOURS}" in conf.stdout.splitlines(), conf.stdout
    log = (tmp / "station.log").read_text()
    assert "Permission denied" not in log
    # Everything is still up after the bad frames and the flood.
    health = json.loads(lab.run("srv", "env", *station_vars, PYTHON_E2E(), "-m", "appliance", "status", "--json",
                                timeout=30).stdout)["health"]
    # Up, not "ok": this library has no term files, so health rightly calls each model seen red for factory-reset
    # phones; nothing else may be wrong.
    assert all(s["status"] == "up" for s in health["services"] if s["expected"]), health["services"]
    assert all(p["code"].startswith("no-start-for-factory-reset:") for p in health["problems"]), health["problems"]
    lldpd = [p for p in _station_pids(lab.members["srv"])
             if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "lldpd"]
    assert len(lldpd) == 2, lldpd            # its monitor and its unprivileged child
    pss = sum(int(re.search(r"Pss:\s+(\d+)", Path(f"/proc/{p}/smaps_rollup").read_text()).group(1)) for p in lldpd)
    print(f"\nlldpd PSS {pss} kB (monitor + child, {info['neighbours']} neighbours); "
          f"test body {time.monotonic() - started:.1f} s")


def PYTHON_E2E() -> str:
    from bench.dhcp_lab import PYTHON
    return PYTHON
