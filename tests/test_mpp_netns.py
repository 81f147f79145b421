"""End to end in namespaces the test builds (issue 27): the station (`serve dhcp` + `serve tftp`, HTTP :6970) and the
independent MPP phone model (`python -m tools.phonesim --mpp`, its own truth table), on the product's synthetic
MPP, transition and Enterprise 7800/8800 loads.

- An MPP 8851 on an old MPP load asks `8851-3PCC.xml` and ends on the newest MPP load in the library, tracked as
  any phone (the phones table: done, on that load, MPP firmware).
- An Enterprise 7841 set to convert (`[upgrade] convert`, its MAC) with its licence in `licences/` ends on MPP
  through the path its release needs (12.5(1): the transition load first); without the licence file it ends stuck
  (the report's `failed`) with a diagnosis naming the missing `<MAC>.lic`, and it still runs its Enterprise load.
- An 8831 set to convert is refused with the reason (per MAC: stuck saying Cisco lists it as not eligible; per
  model: the station does not start, exit 2 naming the key).
- A licence is never served to another MAC's address: a second phone on the segment asks for the first's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_rows

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip")]

STATION = "10.79.0.1"
MPP_OLD, MPP_NEW = "sip88xx.11-3-1MPP0001-100", "sip88xx.11-3-3MPP0001-377"
ENT78, TL78, MPP78 = "sip78xx.12-5-1SR1-4", "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.11-3-5MPP0001-10"
ENT8831 = "sip8831.10-3-1-16"
MAC_8851, MAC_7841, MAC_8831 = "001e7a885101", "001e7a784101", "001e7a883101"


def wait_row(state: Path, mac: str, ok, until: float) -> dict:
    return wait_rows(state, [mac], ok, until).get(mac) or {}


@pytest.fixture
def lab_factory(tmp_path):
    made: list = []

    def make(loads: tuple[str, ...], licences: tuple[str, ...] = (), **env_overrides: str):
        from appliance.firmware import synth
        lab = Lab("mp", subnet="10.79.0")
        logs = [open(tmp_path / f"{n}.log", "a") for n in ("dhcp", "tftp")]
        made.append((lab, logs))
        lab.add("srv", STATION)
        lab.add("ph")
        lab.add("ph2")
        state = tmp_path / "state"
        root = state / "firmware"
        for load in loads:
            synth.write_load(root, load, size_bytes=30000)
        (root / "licences").mkdir(parents=True, exist_ok=True)
        for mac in licences:
            (root / "licences" / f"{mac.upper()}.lic").write_bytes(f"licence for {mac}\n".encode())
        env = station_env(state, DHCP_POOL_START="10.79.1.1", DHCP_POOL_END="10.79.1.250", **env_overrides)
        dhcp = lab.popen("srv", PYTHON, "-m", "appliance", "serve", "dhcp", env=env, stdout=logs[0], cwd=str(REPO))
        lab.popen("srv", PYTHON, "-m", "appliance", "serve", "tftp", env=env, stdout=logs[1], cwd=str(REPO))
        wait_serving(state, dhcp)
        return lab, state
    yield make
    for lab, logs in made:
        for f in logs:
            f.close()
        lab.close()


def simulate(lab, ns: str, mac: str, *args: str, timeout: float = 200) -> dict:
    first = f"{int(mac, 16) - 1:012x}"
    r = lab.run(ns, PYTHON, "-m", "tools.phonesim", "--mpp", "--interface", "lan0", "--first-mac", first,
                "--reboot-seconds", "1", "--retry-seconds", "2", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    (out,) = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return out


def test_an_mpp_8851_on_an_old_load_ends_on_the_newest_mpp_load(lab_factory):
    lab, state = lab_factory((MPP_OLD, MPP_NEW))
    out = simulate(lab, "ph", MAC_8851, "--model", "8851", "--load", MPP_OLD, "--vid", "V08", "--deadline", "150")
    assert out["load"] == MPP_NEW, out
    asked = [f["name"] for f in out["fetched"]]
    assert any(n.lstrip("/").lower() == "8851-3pcc.xml" for n in asked), asked
    row = wait_row(state, MAC_8851, lambda r: r.get("state") == "done", time.time() + 30)
    assert row.get("state") == "done" and row.get("current_load") == MPP_NEW, row


def test_an_enterprise_7841_with_its_licence_converts_through_the_transition_load(lab_factory):
    lab, state = lab_factory((ENT78, TL78, MPP78), licences=(MAC_7841,),
                             UPGRADE_CONVERT=f"{MAC_7841}=mpp")
    out = simulate(lab, "ph", MAC_7841, "--model", "7841", "--load", ENT78, "--vid", "V04", "--deadline", "180")
    assert out["load"] == MPP78, out
    installed = [i if isinstance(i, str) else i.get("load") for i in out["installed"]]
    assert TL78 in json.dumps(out["installed"]) and installed, out["installed"]
    row = wait_row(state, MAC_7841, lambda r: r.get("state") == "done", time.time() + 30)
    assert row.get("state") == "done" and row.get("current_load") == MPP78, row


def test_the_same_7841_without_its_licence_ends_stuck_naming_the_file(lab_factory):
    lab, state = lab_factory((ENT78, TL78, MPP78), UPGRADE_CONVERT=f"{MAC_7841}=mpp")
    out = simulate(lab, "ph", MAC_7841, "--model", "7841", "--load", ENT78, "--vid", "V04", "--deadline", "40")
    assert out["load"] == ENT78, out
    row = wait_row(state, MAC_7841, lambda r: r.get("state") == "stuck", time.time() + 30)
    assert row.get("state") == "stuck" and f"{MAC_7841.upper()}.lic" in (row.get("diagnosis") or ""), row
    report = subprocess.run([PYTHON, "-m", "appliance", "report", "--format", "json"], capture_output=True, text=True,
                            env={**station_env(state), "APPLIANCE_NETWORK_INTERFACE": "lo"}, cwd=str(REPO),
                            timeout=60)
    assert "failed" in report.stdout and f"{MAC_7841.upper()}.lic" in report.stdout, report.stdout + report.stderr


@needs_tool("udhcpc", "curl")
def test_an_8831_set_to_convert_is_refused_with_the_reason(lab_factory, tmp_path):
    """No independent 8831 model exists (tools/phonesim simulates none): busybox udhcpc sends its option 60 from a
    namespace whose interface has its MAC, then curl asks its config over HTTP :6970, as a 7800/8800 does."""
    lab, state = lab_factory((ENT8831,), licences=(MAC_8831,), UPGRADE_CONVERT=f"{MAC_8831}=mpp")
    mac = ":".join(MAC_8831[i:i + 2] for i in range(0, 12, 2))
    lab.run("ph", "ip", "link", "set", "lan0", "down", timeout=10)
    lab.run("ph", "ip", "link", "set", "lan0", "address", mac, timeout=10)
    lab.run("ph", "ip", "link", "set", "lan0", "up", timeout=10)
    script = tmp_path / "udhcpc.sh"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/16" dev "$interface"\nexit 0\n')
    script.chmod(0o755)
    lab.run("ph", "udhcpc", "-i", "lan0", "-f", "-q", "-n", "-t", "4", "-T", "1", "-s", str(script),
            "-V", "Cisco Systems, Inc. IP Phone CP-8831", timeout=60)
    got = lab.run("ph", "curl", "-s", "--max-time", "5", f"http://{STATION}:6970/SEP{MAC_8831.upper()}.cnf.xml",
                  timeout=30)
    assert "<loadInformation>" in got.stdout and "MPP" not in got.stdout, got.stdout + got.stderr
    row = wait_row(state, MAC_8831, lambda r: r.get("state") == "stuck", time.time() + 30)
    assert row.get("state") == "stuck" and "8831 as not eligible" in (row.get("diagnosis") or ""), row
    bad = subprocess.run([PYTHON, "-m", "appliance", "check-config"], capture_output=True, text=True, cwd=str(REPO),
                         env={**station_env(tmp_path / "other"), "APPLIANCE_NETWORK_INTERFACE": "lo",
                              "APPLIANCE_UPGRADE_CONVERT": "8831=mpp"}, timeout=60)
    assert bad.returncode == 2 and "convert.8831" in bad.stderr and "not eligible" in bad.stderr, bad.stderr


def test_a_licence_is_never_served_to_another_macs_address(lab_factory):
    lab, state = lab_factory((ENT78, TL78, MPP78), licences=(MAC_7841,), UPGRADE_CONVERT=f"{MAC_7841}=mpp")
    other = "001e7a784199"
    lab.run("ph2", PYTHON, "-m", "tools.phonesim", "--mpp", "--interface", "lan0", "--first-mac",
            f"{int(other, 16) - 1:012x}", "--model", "7841", "--load", MPP78, "--deadline", "8", timeout=60)
    got = lab.run("ph2", PYTHON, "-c", (
        "import socket,struct,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3)\n"
        f"s.sendto(b'\\x00\\x01{MAC_7841.upper()}.lic\\x00octet\\x00',('{STATION}',69))\n"
        "p,_=s.recvfrom(2048);print(struct.unpack('!H',p[:2])[0])\n"), timeout=30)
    assert got.stdout.strip() == "5", got.stdout + got.stderr          # TFTP ERROR: file not found
    code = lab.run("ph2", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                   f"http://{STATION}:6970/{MAC_7841.upper()}.lic", timeout=30)
    assert code.stdout == "404", code.stdout + code.stderr


def test_an_mpp_8851_set_to_enterprise_with_its_licence_goes_back(lab_factory):
    """MPP -> Enterprise (phone-families.md §3.5): from MPP 11.3(5) the profile names the Enterprise load with the
    licence rule; the phone ends on Enterprise, the report's result 'converted'."""
    ent88, mpp88 = "sip88xx.12-5-1SR3-74", "sip88xx.11-3-5MPP0001-20"
    lab, state = lab_factory((ent88, mpp88), licences=(MAC_8851,), UPGRADE_CONVERT=f"{MAC_8851}=enterprise")
    out = simulate(lab, "ph", MAC_8851, "--model", "8851", "--load", mpp88, "--vid", "V08", "--deadline", "150")
    assert out["load"] == ent88, out
    row = wait_row(state, MAC_8851, lambda r: r.get("state") == "done", time.time() + 30)
    assert row.get("state") == "done" and row.get("current_load") == ent88, row
    report = subprocess.run([PYTHON, "-m", "appliance", "report", "--format", "json"], capture_output=True, text=True,
                            env={**station_env(state), "APPLIANCE_NETWORK_INTERFACE": "lo"}, cwd=str(REPO),
                            timeout=60)
    (mine,) = [r for r in json.loads(report.stdout)["phones"] if r["mac"] == MAC_8851]
    assert mine["result"] == "converted" and mine["firmware"] == "enterprise", mine
