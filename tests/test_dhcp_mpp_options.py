"""DHCP options 159 and 160 for multiplatform (3PCC) phones (appliance/dhcp/server.py): a provisioning URL, sent only
to a client whose option 55 asks for it (phone-families.md §3.4: MPP phones read 66, 160, 159, 150).

The state machine first, then busybox udhcpc asking for them in a namespace the test builds.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from appliance.dhcp import codec
from appliance.dhcp.codec import Message
from appliance.dhcp.server import Server, ServerSettings
from tests.conftest import needs_root, needs_tool

REPO = Path(__file__).resolve().parent.parent
STATION = "10.9.0.1"
SETTINGS = ServerSettings(address=STATION, netmask="255.255.255.0", pool_start="10.9.0.10",
                          pool_end="10.9.0.14", lease_seconds=600, dns=(STATION,), domain="recovery.lan",
                          tftp_servers=(STATION,))
MPP_VC = b"Cisco Systems, Inc. IP Phone CP-8851-3PCC\x00"


def offer(srv: Server, prl: bytes, n: int = 1) -> Message:
    msg = Message(xid=n, chaddr=bytes.fromhex(f"00562b0436{n:02x}"),
                  options={53: bytes([codec.DISCOVER]), 55: prl, 60: MPP_VC})
    out = srv.handle(codec.serialize(msg), 1000.0, peer="test")
    assert len(out.replies) == 1
    return codec.parse(out.replies[0].data)


def test_159_and_160_only_when_asked_and_in_the_order_asked():
    srv = Server(SETTINGS)
    asked = offer(srv, bytes([1, 3, 160, 66, 159, 150]))
    assert asked.options[160] == asked.options[159] == b"http://10.9.0.1:6970/$PSN.xml"
    codes = list(asked.options)
    assert codes.index(160) < codes.index(66) < codes.index(159) < codes.index(150)
    plain = offer(srv, bytes([1, 3, 66, 150]), n=2)
    assert 159 not in plain.options and 160 not in plain.options and plain.options[150] == codec.ip_bytes(STATION)


def test_without_http_the_url_is_tftp():
    from dataclasses import replace
    srv = Server(replace(SETTINGS, profile_port=0))
    assert offer(srv, bytes([160])).options[160] == b"tftp://10.9.0.1/$PSN.xml"


UDHCPC_SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip opt159=$opt159 opt160=$opt160" >> "{out}"\nexit 0\n'


@pytest.mark.netns
@needs_root()
@needs_tool("ip", "udhcpc")
def test_busybox_udhcpc_asking_159_and_160_gets_the_profile_url(tmp_path):
    sys.path.insert(0, str(REPO))
    from bench.dhcp_lab import Lab, start_station, wait_serving

    with Lab("mo") as lab:
        lab.add("srv", "10.77.0.1")
        state = tmp_path / "state"
        proc = start_station(lab, "srv", state, tmp_path / "dhcp.log")
        try:
            wait_serving(state, proc)
            lab.add("cli")
            out = tmp_path / "udhcpc.out"
            script = tmp_path / "udhcpc.sh"
            script.write_text(UDHCPC_SCRIPT.format(out=out))
            script.chmod(0o755)
            lab.run("cli", "udhcpc", "-i", "lan0", "-f", "-q", "-n", "-t", "4", "-T", "1", "-O", "159", "-O", "160",
                    "-V", "Cisco Systems, Inc. IP Phone CP-8851-3PCC", "-s", str(script), timeout=60)
            text = out.read_text() if out.exists() else ""
            m = re.search(r"BOUND ip=(\S+) opt159=(\S*) opt160=(\S*)", text)
            assert m, text
            url = b"http://10.77.0.1:6970/$PSN.xml"
            # busybox gives options it has no name for as hex
            assert bytes.fromhex(m.group(2)) == url and bytes.fromhex(m.group(3)) == url
        finally:
            proc.terminate()
            proc.wait(timeout=10)
