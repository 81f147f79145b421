"""Hostile DHCP packets against `appliance serve dhcp` in namespaces the test builds, then real udhcpc.

Why: the DHCP socket is the first thing an unknown device on the bench LAN
reaches.  After each kind of bad input the same PID must still lease to a
real client, and a hostile host name that arrived by real DHCP must reach
the API as data.
"""
from __future__ import annotations

import json
import random
import urllib.request

import pytest

from bench.dhcp_lab import PYTHON, Lab, start_station, station_env, wait_serving
from fuzz import hostile
from tests.conftest import needs_root, needs_tool
from tests.reliability_figures import record
from tests.test_api_server import start_api, stop
from tests.test_dhcp_netns import STATION, mac_of, udhcpc

pytestmark = [pytest.mark.netns, needs_root(), needs_tool("ip", "udhcpc")]

SENDER = """
import socket, sys, time
packets = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", 68))
limit, deadline, sent = int(sys.argv[3]), time.monotonic() + 5, 0
while sent < limit and time.monotonic() < deadline:
    for p in packets:
        for dest in (sys.argv[2], "255.255.255.255"):
            try:
                s.sendto(p, (dest, 67))
            except OSError:
                pass
        sent += 1
        if sent >= limit:
            break
print(sent)
"""
FLOOD = 2000
SCRIPT_NAME = "<script>alert(1)</script>"


def test_dhcp_service_leases_after_each_kind_of_hostile_packet(tmp_path):
    tried = {}
    with Lab("rd") as lab:
        lab.add("srv", STATION)
        lab.add("bad", "10.77.0.250")
        state = tmp_path / "state"
        proc = start_station(lab, "srv", state, tmp_path / "dhcp.log", DHCP_GUARD="off")
        wait_serving(state, proc)
        sender = tmp_path / "send.py"
        sender.write_text(SENDER)
        for kind, packets in hostile.dhcp(random.Random(8)).items():
            blob = tmp_path / f"{kind}.hex"
            blob.write_text("\n".join(p.hex() for p in packets))
            out = lab.run("bad", PYTHON, str(sender), str(blob), STATION, str(len(packets)), timeout=30)
            assert out.returncode == 0, out.stderr
            tried[kind] = 2 * int(out.stdout)
            lab.add(f"c{len(tried)}")
            got = udhcpc(lab, f"c{len(tried)}", tmp_path)
            assert got.get("ip", "").startswith("10.77.0."), (kind, got, (tmp_path / "dhcp.log").read_text()[-2000:])
            assert proc.poll() is None, kind
        blob = tmp_path / "flood.hex"
        blob.write_text(hostile.dhcp(random.Random(1))["non_utf8_names"][0].hex())
        out = lab.run("bad", PYTHON, str(sender), str(blob), STATION, str(FLOOD), timeout=30)
        tried["flood"] = 2 * int(out.stdout)
        lab.add("phone")
        mac = mac_of(lab, "phone")
        got = udhcpc(lab, "phone", tmp_path, "-x", f"hostname:{SCRIPT_NAME}", "-V", "<img src=x onerror=alert(2)>")
        assert got.get("ip"), got
        assert proc.poll() is None
        api, base = start_api({k: v for k, v in station_env(state).items() if k.startswith("APPLIANCE_")}
                              | {"APPLIANCE_NETWORK_INTERFACE": "lo"})
        try:
            leases = json.loads(urllib.request.urlopen(base + "/api/v1/leases", timeout=5).read())
        finally:
            stop(api)
        mine = [lease for lease in leases["leases"] if lease["mac"] == mac]
        assert mine and mine[0]["hostname"] == SCRIPT_NAME, leases
    record("dhcp_hostile", service="dhcp", packets=sum(tried.values()), by_kind=tried, good_client="udhcpc",
           crashes=0)
