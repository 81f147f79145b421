"""End to end in namespaces the test builds: the station (`serve dhcp` + `serve tftp`, HTTP :6970 included) and
the independent 7841 model (tools/phonesim), on the product's synthetic 7800 loads (5th-generation container,
two platforms).

- A 7841 takes its config and firmware over HTTP :6970 (TFTP only for what HTTP lacks) and moves to its target
  fetching only its own platform's three files (platform 1 and platform 2 phones side by side): the core counts a
  load complete for a phone when its platform's files are taken.
- A V20 7841 offered a load under its hardware floor (phone-families.md §1.4) takes the manifest and nothing else
  ("Load rejected HC"): the station ends it stuck (the report's `failed`) with a diagnosis naming its VID and the
  floor, having served that manifest at most three times, under both readings of the V20 floor (14.0(1) and
  14.0(1)SR3); once the station stops naming the load, the phone settles on the load it ran.
- With a load at or above the floor in the library and the 7841 target pinned below it (`[upgrade] targets`), the
  V20 7841 is offered the one at or above its floor and reaches it.
- A V20 7841 whose web server stays off (its VID unknown) is told the model's highest documented floor.
- With the station's HTTP off, a 7841 tries HTTP :6970, falls back to TFTP for everything, and reaches its target.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_rows

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip")]

STATION = "10.78.0.1"
OLD, TARGET, NEWER = "sip78xx.11-0-1-11", "sip78xx.12-5-1SR3-74", "sip78xx.14-2-1-0101-26"
V20_RUNS = "sip78xx.14-0-1-0301-212"       # 14.0(1)SR3: a V20 7841 runs nothing older under either reading
MAC_P1, MAC_P2, MAC_V20 = "001e7a784101", "001e7a784201", "001e7a782001"


def memory(row: dict) -> dict:
    hints = row.get("hints")
    hints = json.loads(hints) if isinstance(hints, str) else hints or {}
    return hints.get("memory") or {}


def start(tmp_path: Path, loads: tuple[str, ...], **env_overrides: str):
    """A lab with the station in `srv` and an empty `ph` namespace; the library holds `loads` (30 kB each)."""
    from appliance.firmware import synth
    lab = Lab("rf", subnet="10.78.0")
    try:
        lab.add("srv", STATION)
        lab.add("ph")
        state = tmp_path / "state"
        for load in loads:
            synth.write_load(state / "firmware", load, size_bytes=30000)
        env = station_env(state, DHCP_POOL_START="10.78.1.1", DHCP_POOL_END="10.78.1.250", **env_overrides)
        logs = [open(tmp_path / f"{n}.log", "a") for n in ("dhcp", "tftp")]
        dhcp = lab.popen("srv", PYTHON, "-m", "appliance", "serve", "dhcp", env=env, stdout=logs[0], cwd=str(REPO))
        lab.popen("srv", PYTHON, "-m", "appliance", "serve", "tftp", env=env, stdout=logs[1], cwd=str(REPO))
        wait_serving(state, dhcp)
    except BaseException:
        lab.close()
        raise
    return lab, state, logs


@pytest.fixture
def lab_factory(tmp_path):
    made: list = []

    def make(loads: tuple[str, ...], **env: str):
        lab, state, logs = start(tmp_path, loads, **env)
        made.append((lab, logs))
        return lab, state
    yield make
    for lab, logs in made:
        for f in logs:
            f.close()
        lab.close()


def simulate(lab, *args: str, timeout: float = 150) -> dict:
    r = lab.run("ph", PYTHON, "-m", "tools.phonesim", "--interface", "lan0", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    (out,) = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return out


def platform_files(load: str, platform: int) -> set[str]:
    ver = load.split(".", 1)[1]
    mid = "" if platform == 1 else "2."
    return {f"{role}{mid}78xx.{ver}.sbn" for role in ("sboot", "kern", "rootfs")}


def test_7841s_reach_their_target_over_http_fetching_only_their_platforms_files(lab_factory):
    lab, state = lab_factory((OLD, TARGET))
    runs = {1: ("--first-mac", MAC_P1[:-2] + "00"), 2: ("--first-mac", MAC_P2[:-2] + "00")}
    out: dict[int, dict] = {}
    threads = [threading.Thread(target=lambda k=k, a=a: out.__setitem__(k, simulate(
        lab, "--model", "CP-7841", "--load", OLD, "--platform", str(k), *a, "--linger", "15", "--deadline", "90")))
        for k, a in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(160)
    for platform in (1, 2):
        r = out[platform]
        assert r["load"] == TARGET and r["end"] == "settled", json.dumps(r)
        assert r["installed"] == [TARGET] and not r["refused"], r
        comps = {f["name"] for f in r["fetched"] if f["ok"] and f["name"].endswith(".sbn")}
        assert comps == platform_files(TARGET, platform), comps
        got = [f for f in r["fetched"] if f["ok"] and f["name"].startswith(("sip78xx", "sboot", "kern", "rootfs"))]
        assert {f["via"] for f in got} == {"http"}, got      # HTTP :6970 first, and the station serves it there
    rows = wait_rows(state, [MAC_P1, MAC_P2], lambda r: r.get("state") == "done", until=time.time() + 45)
    for mac in (MAC_P1, MAC_P2):
        row = rows.get(mac) or {}
        assert row.get("state") == "done" and row.get("current_load") == TARGET, row
        # its page (on once the config's <webAccess>0</webAccess> turned it on) gave its VID
        assert memory(row).get("vid") == "V01", row


def v20_run(lab, reading: str, *extra: str) -> dict:
    return simulate(lab, "--model", "CP-7841", "--vid", "V20", "--load", V20_RUNS, "--v20-floor", reading,
                    "--first-mac", MAC_V20[:-2] + "00", "--web-port", "80", "--linger", "35", "--deadline", "100",
                    *extra)


@pytest.mark.parametrize("reading", ["14.0(1)", "14.0(1)SR3"])
def test_a_v20_7841_offered_a_load_under_its_floor_ends_stuck_naming_its_vid_and_the_floor(lab_factory, reading):
    lab, state = lab_factory((OLD,))
    r = v20_run(lab, reading)
    asked = sum(f["name"] == f"{OLD}.loads" for f in r["fetched"])
    assert asked <= 3, r["fetched"]
    assert not [f for f in r["fetched"] if f["ok"] and f["name"].endswith(".sbn")], r["fetched"]
    if asked:
        assert any(x.get("screen") == "Load rejected HC" for x in r["refused"]), r["refused"]
    assert r["load"] == V20_RUNS and r["end"] == "settled", json.dumps(r)     # kept its load, and was left alone
    rows = wait_rows(state, [MAC_V20], lambda row: row.get("state") == "stuck", until=time.time() + 20)
    row = rows.get(MAC_V20) or {}
    assert row.get("state") == "stuck", row
    words = row.get("diagnosis") or ""
    assert "V20" in words and "14.0(1)" in words and "11.0(1)" in words, words
    assert "stepping stone" not in words and "signature" not in words, words
    assert memory(row).get("vid") == "V20", row


def test_a_v20_7841_is_offered_the_load_at_or_above_its_floor_and_reaches_it(lab_factory):
    lab, state = lab_factory((OLD, NEWER), UPGRADE_TARGETS=json.dumps({"CP-7841": OLD}))
    r = v20_run(lab, "14.0(1)SR3")
    assert r["load"] == NEWER and r["installed"] == [NEWER], json.dumps(r)
    assert sum(f["name"] == f"{OLD}.loads" for f in r["fetched"]) <= 1, r["fetched"]
    rows = wait_rows(state, [MAC_V20], lambda row: row.get("state") == "done", time.time() + 45)
    row = rows.get(MAC_V20) or {}
    assert row.get("state") == "done" and row.get("current_load") == NEWER, row


def test_a_7841_falls_back_to_tftp_when_the_station_serves_no_http(lab_factory):
    lab, state = lab_factory((OLD, TARGET), TFTP_HTTP_PORT="0")
    r = simulate(lab, "--model", "CP-7841", "--load", OLD, "--platform", "2", "--first-mac", MAC_P2[:-2] + "00",
                 "--deadline", "90")
    assert r["load"] == TARGET and r["installed"] == [TARGET] and r["end"] == "settled", json.dumps(r)
    got = [f for f in r["fetched"] if f["ok"]]
    assert {f["via"] for f in got} == {"tftp"}, got
    assert {f["name"] for f in got if f["name"].endswith(".sbn")} == platform_files(TARGET, 2)
    tried = [f for f in r["fetched"] if f["via"] == "http"]
    assert tried and not any(f["ok"] for f in tried), r["fetched"]          # it did try HTTP first
    rows = wait_rows(state, [MAC_P2], lambda row: row.get("state") == "done", time.time() + 45)
    assert (rows.get(MAC_P2) or {}).get("current_load") == TARGET, rows.get(MAC_P2)


def test_a_v20_7841_whose_page_stays_off_is_told_the_models_highest_floor(lab_factory):
    lab, state = lab_factory((OLD,))
    r = v20_run(lab, "14.0(1)", "--ignore-web-access")
    assert sum(f["name"] == f"{OLD}.loads" for f in r["fetched"]) <= 3, r["fetched"]
    assert r["load"] == V20_RUNS and r["end"] == "settled", json.dumps(r)
    rows = wait_rows(state, [MAC_V20], lambda row: row.get("state") == "stuck", until=time.time() + 20)
    row = rows.get(MAC_V20) or {}
    words = row.get("diagnosis") or ""
    assert row.get("state") == "stuck" and memory(row).get("vid") is None, row
    assert "its hardware may need a newer load: the highest documented floor for the 7841 is 14.0(1)SR2" in words, words
    assert "stepping stone" not in words and "signature" not in words, words
