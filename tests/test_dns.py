"""DNS responder: real `dig` against `appliance serve dns` on a random loopback port."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from dnslib import DNSRecord

from appliance.dns.resolver import Resolver
from tests.conftest import needs_tool


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- sans-I/O ------------------------------------------------------------------------------------
def test_resolver_answers_own_names_bare_and_under_domain():
    r = Resolver({"recovery": "10.1.2.3"}, "recovery.lan")
    for name in ("recovery", "RECOVERY.recovery.lan."):
        reply = DNSRecord.parse(r.resolve(DNSRecord.question(name).pack()))
        assert reply.header.aa == 1 and [str(a.rdata) for a in reply.rr] == ["10.1.2.3"]
    ptr = DNSRecord.parse(r.resolve(DNSRecord.question("3.2.1.10.in-addr.arpa", "PTR").pack()))
    assert str(ptr.rr[0].rdata) == "recovery.recovery.lan."


def test_resolver_nxdomain_refused_and_garbage():
    r = Resolver({"recovery": "10.1.2.3"}, "recovery.lan")
    assert DNSRecord.parse(r.resolve(DNSRecord.question("example.com").pack())).header.rcode == 3
    chaos = DNSRecord.question("version.bind", "TXT", "CH")
    assert DNSRecord.parse(r.resolve(chaos.pack())).header.rcode == 5
    assert r.resolve(b"\x00") is None
    reply = r.resolve(b"\x12\x34\x01\x00" + os.urandom(40))
    assert reply is None or reply[:2] == b"\x12\x34"
    answer = DNSRecord.parse(r.resolve(DNSRecord.question("recovery").pack()))
    assert answer.header.rcode == 0


def test_resolver_survives_random_bytes():
    r = Resolver({"recovery": "10.1.2.3"}, "recovery.lan")
    rng = __import__("random").Random(7)
    for _ in range(3000):
        r.resolve(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    assert r.stats["malformed"] > 0


# -- real service, real dig -----------------------------------------------------------------------
def start_dns(station_env, port: int, names: str, upstream: str = "") -> subprocess.Popen:
    env = dict(os.environ, **station_env, APPLIANCE_DNS_PORT=str(port), APPLIANCE_DNS_NAMES=names,
               APPLIANCE_DNS_UPSTREAM=upstream)
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "dns"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc


def dig(port: int, *args: str) -> str:
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+notcp", "+time=1", "+tries=2", *args],
                         capture_output=True, text=True, timeout=20)
    return out.stdout


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 15
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        if "status: " in dig(port, "recovery"):
            return
        time.sleep(0.2)
    raise AssertionError("dns service did not answer")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@needs_tool("dig")
def test_dig_against_service(station_env):
    port = free_udp_port()
    proc = start_dns(station_env, port, "recovery=127.0.0.1,tftp=10.9.8.7")
    try:
        wait_ready(port, proc)
        assert dig(port, "+short", "recovery").split() == ["127.0.0.1"]
        assert dig(port, "+short", "tftp.recovery.lan").split() == ["10.9.8.7"]
        out = dig(port, "recovery", "A")
        assert " aa" in out.split("flags:")[1].split(";")[0]
        assert dig(port, "+short", "-x", "10.9.8.7").split() == ["tftp.recovery.lan."]
        assert "status: NXDOMAIN" in dig(port, "www.example.com")
        assert "status: REFUSED" in dig(port, "version.bind", "CH", "TXT")
        # garbage and truncated packets never stop it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for blob in (b"", b"\xff" * 3, b"\x00\x01\x01\x00\x00\x05" + b"\xff" * 30, os.urandom(500)):
                s.sendto(blob, ("127.0.0.1", port))
        assert dig(port, "+short", "recovery").split() == ["127.0.0.1"]
        assert proc.poll() is None
    finally:
        stop(proc)


@needs_tool("dig")
def test_forwards_only_foreign_names_to_configured_upstream(station_env, tmp_path):
    up_port, port = free_udp_port(), free_udp_port()
    up_env = dict(station_env, APPLIANCE_STATE_DIR=str(tmp_path / "upstate"))
    upstream = start_dns(up_env, up_port, "printer.example=10.5.5.5")
    station = start_dns(station_env, port, "recovery=127.0.0.1", upstream=f"127.0.0.1:{up_port}")
    try:
        wait_ready(up_port, upstream)
        wait_ready(port, station)
        assert dig(port, "+short", "printer.example").split() == ["10.5.5.5"]
        assert dig(port, "+short", "recovery").split() == ["127.0.0.1"]
        assert "status: NXDOMAIN" in dig(port, "nothing.example")
        assert "status: REFUSED" in dig(port, "printer.example", "ANY")
    finally:
        stop(station)
        stop(upstream)
