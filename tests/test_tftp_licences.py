"""Licences and MPP profiles served by a real `appliance serve tftp` (appliance/tftp/files.py, http.py) on loopback.

Two phones hold leases (restored from the store as after a restart): an 8851 at 127.0.0.21 and a 7841 at
127.0.0.22, each with its licence in firmware/licences/.  A licence goes only to the address holding its MAC's
lease, over TFTP (a plain RFC 1350 reader bound to that address) and HTTP (curl --interface); never to the other
phone's address, a stranger, or under another path; its content never reaches the service's log.
"""
from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from appliance.dhcp.leases import Lease
from appliance.firmware import synth
from appliance.store import Store
from tests.conftest import needs_tool
from tests.test_tftp_service import Station, tftp_get

pytestmark = needs_tool("curl")

A, B = "00562b043615", "00562b043616"
IP_A, IP_B, STRANGER = "127.0.0.21", "127.0.0.22", "127.0.0.30"
LIC_A, LIC_B = b"LICENCE-A-do-not-leak\n", b"LICENCE-B-do-not-leak\n"
MPP_NEW = "sip88xx.11-3-3MPP0001-377"


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    base = tmp_path_factory.mktemp("licsvc")
    st = Station(base)
    synth.write_zip(st.root, MPP_NEW, size_bytes=6_000)
    (st.root / "licences").mkdir()
    (st.root / "licences" / f"{A.upper()}.lic").write_bytes(LIC_A)
    (st.root / "licences" / f"{B.upper()}.lic").write_bytes(LIC_B)
    (st.root / f"{A.upper()}.lic").write_bytes(b"a misplaced copy in the root\n")
    st.state.mkdir(parents=True, exist_ok=True)
    store = Store(st.state / "station.db")
    now = time.time()
    store.leases.save_changes([
        ("upsert", (Lease(A, IP_A, "bound", now + 3600, vendor_class="Cisco Systems, Inc. IP Phone CP-8851-3PCC",
                          updated=now),)),
        ("upsert", (Lease(B, IP_B, "bound", now + 3600, vendor_class="Cisco Systems, Inc. IP Phone CP-7841",
                          updated=now),)),
    ])
    store.phones.upsert(A, model="CP-8851", ip=IP_A)
    store.phones.upsert(B, model="CP-7841", ip=IP_B)
    store.close()
    st.start()
    yield st
    st.stop()


def curl(st: Station, name: str, src: str) -> tuple[str, bytes]:
    r = subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", "10", "--interface", src, "-o", "-", "-w", "\n%{http_code}",
                        f"http://127.0.0.1:{st.http_port}/{name}"], capture_output=True, check=True)
    body, _, code = r.stdout.rpartition(b"\n")
    return code.decode(), body


def test_a_licence_goes_only_to_the_address_holding_its_macs_lease(station):
    for name in (f"{A.upper()}.lic", f"{A.lower()}.LIC", f"/licences/{A.upper()}.lic"):
        assert tftp_get(station.port, name, src=IP_A) == LIC_A, name
        assert curl(station, name, IP_A) == ("200", LIC_A), name
    assert tftp_get(station.port, f"{B.upper()}.lic", src=IP_B) == LIC_B
    for src in (IP_B, STRANGER, "127.0.0.1"):          # the other phone's address, a stranger, the station itself
        assert tftp_get(station.port, f"{A.upper()}.lic", src=src) is None, src
        assert curl(station, f"{A.upper()}.lic", src)[0] == "404", src
    assert tftp_get(station.port, f"{B.upper()}.lic", src=IP_A) is None
    for odd in ("../licences/AB.lic", f"licences/../licences/{A.upper()}.lic", "licences/", "x.lic",
                f"{A.upper()}.lic.bak"):
        assert tftp_get(station.port, odd, src=IP_A) in (None, b""), odd
        assert curl(station, odd, IP_A)[0] in ("400", "403", "404"), odd


def test_profiles_over_both_protocols_and_no_licence_in_the_log(station):
    body = tftp_get(station.port, "8851-3PCC.xml", src=IP_A)
    assert body is not None
    rules = {e.tag: e.text for e in ET.fromstring(body)}
    assert rules["Upgrade_Rule"].startswith("tftp://") and rules["Upgrade_Rule"].endswith(f"/{MPP_NEW}.loads")
    assert rules["Trans_Auth_Rule"].endswith("/$MAU.lic") and rules["Trans_Auth_Type"] == "Classic"
    code, body = curl(station, f"Cisco/CP-8851-3PCC/{A}.cfg", IP_A)
    rules = {e.tag: e.text for e in ET.fromstring(body)}
    assert code == "200" and rules["Upgrade_Rule"] == f"http://127.0.0.1:{station.http_port}/{MPP_NEW}.loads" or \
        rules["Upgrade_Rule"].endswith(f":{station.http_port}/{MPP_NEW}.loads")
    code, body = curl(station, "8851-3PCC.xml", STRANGER)
    assert code == "200" and b"Trans_Auth" not in body and MPP_NEW.encode() in body
    log = station.logtext()
    assert "LICENCE-A" not in log and "LICENCE-B" not in log and "do-not-leak" not in log


@pytest.mark.parametrize("agent", [
    "Cisco-CP-8851-3PCC/11.3.3 (00562b043615)\x1b[2J\x1b]0;owned\x07", "Cisco-CP-8851-3PCC/" + "9" * 5000 + " (00562b043615)",
    "Cisco-CP-8851-3PCC/11.3.3 (00562b043616)", "\u202eCisco-CP-8851-3PCC/11.3.3 (00562b043615)", "x" * 8000,
])
def test_hostile_user_agents_cost_nothing(station, agent):
    """A User-Agent is a phone's claim: control characters, bidi overrides, oversize, another MAC.  The profile is
    still served (the agent never decides what a file says), the service stays up and logs no traceback."""
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--interface", IP_A, "-A", agent, "-o", "/dev/null", "-w",
                        "%{http_code}", f"http://127.0.0.1:{station.http_port}/8851-3PCC.xml"], capture_output=True)
    assert r.stdout in (b"200", b"431", b"400"), r
    assert tftp_get(station.port, "8851-3PCC.xml", src=IP_A) is not None
    assert station.proc.poll() is None and "Traceback" not in station.logtext()
