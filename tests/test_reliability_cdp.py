"""Malformed CDP frames among good ones while a genuine phone, known only through CDP, recovers (issue 24 item 5).

Why: one frame whose device ID holds control characters and quotes makes `lldpcli -f json`'s output invalid JSON
(it prints a CDP device ID unescaped as an object key), and the station once dropped the whole neighbour list until
the frame aged out (up to three minutes).  The genuine phone here is a tools.phonesim 7965 already past the stone
(9.3(1)SR1) with its web page off: offered the 8.5(2) stone it would show Auth Fail (a 9.x load knows only the new
signing key), so it reaches its target only if the station learned its load from its CDP frame.  The station is
the real `appliance serve dhcp/tftp/api` and lldpd through its launcher (`python -m appliance.recovery.lldp`) in a
namespace; the frames (tests/lldp_frames.py) come from another.  The same phone model recovers once with only good
frames on the wire (the baseline) and once with the malformed ones among them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import needs_root, needs_tool, wait_for
from tests.reliability_figures import record_attack
from tests.reliability_station import (
    PYTHON,
    TARGET,
    HealthPoller,
    Lab,
    Station,
    assert_on_target,
    assert_store_within_bounds,
    run_phone,
    services,
    store_size,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip", "lldpd", "lldpcli")]

NET = "10.89"
PAST_STONE = "SCCP45.9-3-1SR1-1S"      # past the stone, short of the target: the stone is refused (Auth Fail)
STONE_VERSION = "SCCP45.8-5-2S"
BYSTANDERS = [f"001f9ea0{i:04x}" for i in range(1, 7)]   # good neighbours: phones on the bench announcing the stone
BASELINE_MAC, ATTACKED_MAC = 0x001E7A890001, 0x001E7A890002


def _cdp(mac: str, version: str, **kw) -> dict:
    return {"kind": "cdp", "src": mac, "device": f"SEP{mac.upper()}", "version": version,
            "platform": "Cisco IP Phone 7965", **kw}


# Each breaks lldpcli's JSON or carries what a terminal must never get; none names a phone's MAC the station could use.
MALFORMED = [
    # LF, '"', '\\', ESC in the device ID: lldpcli prints it unescaped as the chassis key, the listing is not JSON
    dict(_cdp("001f9ea0e001", STONE_VERSION), device_hex="5345500a225c1b"),
    # the same, with lines that look like the ends of lldpcli's list items, to cut its own neighbour in pieces
    dict(_cdp("001f9ea0e002", STONE_VERSION), device_hex=b'SEP\n      }\n      {\n"\x1b[2J'.hex()),
    # control characters (0x1F is printed raw by lldpcli), C1 CSI and a bidi override in the version
    _cdp("001f9ea0e003", "x", version_hex=b"SCCP45\r\n\t\x08\x1b[31m\x1f\"\\".hex() + "c29be280ae"),
    # a quote and a backslash in the platform, and a NUL
    _cdp("001f9ea0e004", STONE_VERSION, platform_hex=b'Cisco "IP\\ Phone\x00 7965'.hex()),
]


def _frames(lab: Lab, specs: list[dict]) -> None:
    r = lab.run("frames", PYTHON, "-m", "tests.lldp_frames", "send", "lan0", json.dumps(specs), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def _cdp_loads(station: Station, mac: str) -> list[str]:
    """The loads the station learned for `mac` from CDP (its phone.load events)."""
    return [e["data"]["load"] for e in station.events("mac = ? AND kind = 'phone.load'", (mac,))
            if (e["data"] or {}).get("how") == "cdp"]


def _lldpd_cannot_run(tmp) -> str | None:
    from appliance.recovery import lldp

    class Cfg:                  # why_not reads only these
        class network:
            interface = "lo"

        class state:
            dir = str(tmp)
    why = lldp.why_not(Cfg)
    return f"lldpd cannot run here: {why} (`make test` installs the lldpd package)" if why else None


@pytest.mark.timeout(420)
def test_malformed_cdp_frames_among_good_ones_hide_no_neighbour_and_the_phone_reaches_its_target(tmp_path):
    why = _lldpd_cannot_run(tmp_path)
    if why:
        pytest.skip(why)
    from appliance.recovery import lldp
    with Lab("rcd", subnet=f"{NET}.0") as lab:
        try:
            station = Station(lab, tmp_path, NET, ("dhcp", "tftp", "api", "lldpd"))
            wait_for(lambda: services(station.state).get("tftp", {}).get("neighbours", {}).get("ok"), 40,
                     "the file service reading lldpd's neighbours")
            lab.add("frames")
            health = HealthPoller(station, "cdp")

            # 1. the baseline: good frames only, the phone's own among them
            good = [_cdp(m, STONE_VERSION) for m in BYSTANDERS[:3]]
            good += [_cdp(f"{BASELINE_MAC:012x}", PAST_STONE)] + [_cdp(m, STONE_VERSION) for m in BYSTANDERS[3:]]
            _frames(lab, good)
            wait_for(lambda: services(station.state)["tftp"]["neighbours"].get("claims", 0) >= len(good), 30,
                     "the good neighbours' claims")
            alone, alone_s = run_phone(station, "ph1", BASELINE_MAC, PAST_STONE, "--no-web", "--ignore-web-access")
            assert_on_target(station, alone, [TARGET])
            assert _cdp_loads(station, f"{BASELINE_MAC:012x}") == [PAST_STONE]

            # 2. the malformed frames among the good ones, the attacked phone's frame between two of them
            before = store_size(station.state)
            mixed = [_cdp(BYSTANDERS[0], STONE_VERSION), MALFORMED[0], MALFORMED[1],
                     _cdp(f"{ATTACKED_MAC:012x}", PAST_STONE), MALFORMED[2], _cdp(BYSTANDERS[1], STONE_VERSION),
                     MALFORMED[3], MALFORMED[0]]
            _frames(lab, mixed)
            info = wait_for(lambda: (lambda n: n if n.get("malformed", 0) >= 1 and n.get("claims", 0) >= len(good) + 1
                                     else None)(services(station.state)["tftp"]["neighbours"]), 30,
                            "the malformed neighbours counted and every good claim read")
            raw = lab.run("srv", "lldpcli", "-u", str(lldp.run_dir_for(station.state) / lldp.SOCKET_NAME), "-f",
                          "json", "show", "neighbors", "details", timeout=20)
            with pytest.raises(ValueError):           # the attack is real: lldpcli's listing is not JSON
                json.loads(raw.stdout, strict=False)
            seen = {"malformed_min": info["malformed"], "claims_min": info["claims"], "samples": 0}

            def sample() -> None:                    # the bad frames stay in lldpd for the whole run (TTL 180 s)
                n = services(station.state).get("tftp", {}).get("neighbours", {})
                seen["samples"] += 1
                seen["malformed_min"] = min(seen["malformed_min"], n.get("malformed", 0))
                seen["claims_min"] = min(seen["claims_min"], n.get("claims", 0))

            attacked, attacked_s = run_phone(station, "ph2", ATTACKED_MAC, PAST_STONE, "--no-web",
                                             "--ignore-web-access", during=sample)
            rep = assert_on_target(station, attacked, [TARGET])
            after = store_size(station.state)
            polls = health.stop()
            final = services(station.state)["tftp"]["neighbours"]
            learned = {m: _cdp_loads(station, m) for m in BYSTANDERS}

            record_attack("cdp_malformed", attack="malformed CDP frames among good ones",
                          load=f"{sum(f in MALFORMED for f in mixed)} malformed CDP frames of {len(MALFORMED)} kinds "
                               "(control characters, quotes, fake list ends) among "
                               f"{len(good) + sum(f not in MALFORMED for f in mixed)} good ones; lldpcli's listing "
                               "not JSON for the whole run",
                          phone_s_without=alone_s, phone_s_with=attacked_s, store_before=before, store_after=after,
                          neighbours=final, malformed_min_during_run=seen["malformed_min"],
                          claims_min_during_run=seen["claims_min"], health=polls, report=rep["result"])

            # every good neighbour stayed learned while the broken ones were in lldpd; the phone's claim was used
            assert seen["samples"] >= 1 and seen["malformed_min"] >= 1, seen
            assert seen["claims_min"] >= len(good) + 1 and final["claims"] >= len(good) + 1, (seen, final)
            assert _cdp_loads(station, f"{ATTACKED_MAC:012x}") == [PAST_STONE]
            assert final["failures"] == 0, final
            # claims of phones that never leased are held, not phones: no bystander, good or broken, became a row
            assert not any(learned.values()) and set(station.report()) == {f"{BASELINE_MAC:012x}",
                                                                          f"{ATTACKED_MAC:012x}"}
            assert polls["polls"] >= 10 and polls["unanswered"] == 0, polls
            assert_store_within_bounds(after)
            assert all(code is None for code in station.alive().values()), station.alive()
            assert "Traceback" not in station.log("tftp"), station.log("tftp")[-3000:]
        finally:
            for proc in list(lab.procs):
                lab.kill(proc, wait=15)
            out = subprocess.run(["ip", "netns", "pids", lab.members["srv"]], capture_output=True, text=True).stdout
            for pid in (int(p) for p in out.split()):
                try:
                    os.kill(pid, 9)              # lldpd's privilege-separated child, which the launcher's exec made
                except ProcessLookupError:
                    pass
            shutil.rmtree(lldp.run_dir_for(tmp_path / "state"), ignore_errors=True)
