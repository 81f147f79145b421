"""Pieces the image relies on: the HEALTHCHECK's TFTP client against a peer server, the capability check."""
from __future__ import annotations

import os
import threading
import time

import pytest

from appliance import config
from appliance.supervise import effective_caps, missing_caps
from appliance.tftp.fetch import fetch
from tests.test_dns import free_udp_port


def test_healthcheck_client_against_tftpy_server(tmp_path):
    tftpy = pytest.importorskip("tftpy")
    body = os.urandom(512 * 3) + b"<tail/>"
    (tmp_path / "XMLDefault.cnf.xml").write_bytes(body)
    (tmp_path / "exact.bin").write_bytes(b"x" * 1024)
    port = free_udp_port()
    server = tftpy.TftpServer(str(tmp_path))
    t = threading.Thread(target=server.listen, args=("127.0.0.1", port), daemon=True)
    t.start()
    try:
        deadline = time.time() + 5
        while server.sock is None and time.time() < deadline:
            time.sleep(0.05)
        assert fetch("127.0.0.1", port, "XMLDefault.cnf.xml") == body
        assert fetch("127.0.0.1", port, "exact.bin") == b"x" * 1024
        with pytest.raises(OSError, match="TFTP error"):
            fetch("127.0.0.1", port, "missing.xml")
    finally:
        server.stop(now=True)
        t.join(5)


def test_healthcheck_client_times_out_on_silence():
    with pytest.raises(OSError):
        fetch("127.0.0.1", free_udp_port(), "XMLDefault.cnf.xml", timeout=0.3, retries=1)


def test_capability_check_names_the_missing_one(station_env, monkeypatch):
    monkeypatch.setattr("appliance.supervise.unprivileged_port_start", lambda: 1024)
    cfg = config.load(environ={**station_env, "APPLIANCE_DHCP_PORT": "67", "APPLIANCE_DNS_PORT": "53"})
    status = "Name:\tx\nCapEff:\t0000000000000400\n"  # only NET_BIND_SERVICE
    assert effective_caps(status) == 1 << 10
    missing = " ".join(missing_caps(cfg, status))
    assert "CAP_NET_RAW" in missing and "CAP_NET_ADMIN" in missing and "NET_BIND_SERVICE" not in missing
    full = "CapEff:\t000001ffffffffff\n"
    assert missing_caps(cfg, full) == []
    none = " ".join(missing_caps(cfg, "CapEff:\t0000000000000000\n"))
    assert "CAP_NET_BIND_SERVICE (ports below" in none and "dhcp 67" in none
