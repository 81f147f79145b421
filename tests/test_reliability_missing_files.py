"""A flood of requests for missing files, over TFTP and HTTP :6970, while a genuine phone recovers (issue 24 item 4).

Why: each request for a missing file adds a transfer row and an event, and nothing was ever pruned: 3,000 requests
added 3,000 of each, on a Pi's SD card.  The store now keeps the bounds appliance/store/README.md states (rows per
table, the database under 64 MiB).  Here the real station (`appliance serve dhcp/tftp/api`) runs in a namespace; an
attacker in another asks, from ADDRESSES static addresses that hold no lease (no phone's), for names that do not
exist -- each one different, as a scanner's would be -- over TFTP and HTTP :6970 until the phone is done (at least
MIN_EACH of each: more rows than the transfers table keeps); the genuine phone (tools.phonesim, a 7965 on 8.3(2)
that needs the stone) recovers meanwhile and alone before it (the baseline); the tech's laptop polls /api/v1/health
throughout.  The store's size (bytes, rows) is measured before and after the flood.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_root, needs_tool, wait_for
from tests.reliability_figures import record_attack
from tests.reliability_station import (
    PYTHON,
    REPO,
    STONE,
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

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip")]

NET = "10.92"
ADDRESSES = 20
# Requests per protocol: together more than the transfers table keeps (20,000), so its pruning is measured too; the
# flood goes on until the phone is done and both reached MIN_EACH.
MIN_EACH = 12000
MAX_EACH = 15000
TFTP_WINDOW, HTTP_WINDOW = 32, 16     # requests in flight at once
ANSWER_S = 2.0                  # a request unanswered this long counts as unanswered
ATTACK_MAX_S = 200
BASELINE_MAC, ATTACKED_MAC = 0x001E7A920001, 0x001E7A920002


# ---- the attacker: `python -m tests.test_reliability_missing_files SERVER STOP_FILE SECONDS ADDRESS...` ---------
def attack(server: str, stop_file: str, seconds: float, addresses: list[str]) -> dict:
    """Ask for missing files over TFTP (port 69) and HTTP (:6970), a window of each in flight, each name new;
    until stop_file exists and both reached MIN_EACH, or MAX_EACH, or `seconds`.  -> counts of what came back."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    sel = selectors.DefaultSelector()
    seen = {"tftp": {"sent": 0, "not_found": 0, "other_error": 0, "data": 0, "unanswered": 0},
            "http": {"sent": 0, "404": 0, "other_status": 0, "connect_failed": 0, "unanswered": 0}}
    inflight: dict[socket.socket, dict] = {}
    n = {"i": 0}

    def name(kind: str) -> str:
        n["i"] += 1
        # never SEP<MAC>.cnf.xml: the station writes a config for any phone that asks, so that name is never missing
        return (f"favicon-{n['i']}.ico", f"missing-{n['i']}.loads", f"scan/{n['i']}/x.bin",
                f"CTLSEP{n['i']:012d}.tlv")[n["i"] % 4]

    def open_tftp(now: float) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addresses[seen["tftp"]["sent"] % len(addresses)], 0))
        s.setblocking(False)
        s.sendto(b"\x00\x01" + name("tftp").encode() + b"\x00octet\x00", (server, 69))
        seen["tftp"]["sent"] += 1
        inflight[s] = {"kind": "tftp", "until": now + ANSWER_S}
        sel.register(s, selectors.EVENT_READ)

    def open_http(now: float) -> None:
        s = socket.socket()
        s.bind((addresses[seen["http"]["sent"] % len(addresses)], 0))
        s.setblocking(False)
        seen["http"]["sent"] += 1
        if s.connect_ex((server, 6970)) not in (0, 115):        # EINPROGRESS
            seen["http"]["connect_failed"] += 1
            s.close()
            return
        req = f"GET /{name('http')} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n".encode()
        inflight[s] = {"kind": "http", "until": now + ANSWER_S, "out": req, "got": b""}
        sel.register(s, selectors.EVENT_WRITE)

    def done(s: socket.socket) -> None:
        inflight.pop(s, None)
        sel.unregister(s)
        s.close()

    end = time.monotonic() + seconds
    while not stop["now"] and time.monotonic() < end:
        t, h = seen["tftp"]["sent"], seen["http"]["sent"]
        ending = (os.path.exists(stop_file) and t >= MIN_EACH and h >= MIN_EACH) or (t >= MAX_EACH and h >= MAX_EACH)
        if ending and not inflight:
            break
        now = time.monotonic()
        kinds = [st["kind"] for st in inflight.values()]
        while not ending and kinds.count("tftp") < TFTP_WINDOW and seen["tftp"]["sent"] < MAX_EACH:
            open_tftp(now)
            kinds.append("tftp")
        while not ending and kinds.count("http") < HTTP_WINDOW and seen["http"]["sent"] < MAX_EACH:
            open_http(now)
            kinds.append("http")
        for key, _ in sel.select(0.05):
            s = key.fileobj
            st = inflight.get(s)            # type: ignore[call-overload]
            if st is None:
                continue
            try:
                if st["kind"] == "tftp":
                    pkt = s.recv(2048)      # type: ignore[union-attr]
                    op, code = pkt[:2], pkt[2:4]
                    k = "not_found" if op == b"\x00\x05" and code == b"\x00\x01" else (
                        "data" if op in (b"\x00\x03", b"\x00\x06") else "other_error")
                    seen["tftp"][k] += 1
                    done(s)                 # type: ignore[arg-type]
                elif st["out"]:
                    st["out"] = st["out"][s.send(st["out"]):]       # type: ignore[union-attr]
                    if not st["out"]:
                        sel.modify(s, selectors.EVENT_READ)
                else:
                    data = s.recv(4096)     # type: ignore[union-attr]
                    st["got"] += data
                    if not data or b"\r\n" in st["got"]:
                        status = st["got"].split(b" ", 2)[1:2]
                        seen["http"]["404" if status == [b"404"] else "other_status"] += 1
                        done(s)             # type: ignore[arg-type]
            except OSError:
                seen[st["kind"]]["connect_failed" if st["kind"] == "http" else "other_error"] += 1
                done(s)                     # type: ignore[arg-type]
        now = time.monotonic()
        for s, st in list(inflight.items()):
            if now > st["until"]:
                seen[st["kind"]]["unanswered"] += 1
                done(s)
    return seen


# ---- the test ----------------------------------------------------------------------------------------------------
@pytest.mark.timeout(420)
def test_a_flood_of_requests_for_missing_files_keeps_the_store_within_its_bound(tmp_path):
    with Lab("rmf", subnet=f"{NET}.0") as lab:
        station = Station(lab, tmp_path, NET)
        health = HealthPoller(station, "missing")
        alone, alone_s = run_phone(station, "ph1", BASELINE_MAC)
        assert_on_target(station, alone, [STONE, TARGET])

        lab.add("atk")
        addresses = [f"{NET}.2.{10 + i}" for i in range(ADDRESSES)]
        for addr in addresses:
            lab.run("atk", "ip", "addr", "add", f"{addr}/16", "dev", "lan0", check=True)
        wait_for(lambda: services(station.state).get("tftp", {}).get("tftp"), 10, "a file service heartbeat")
        before = store_size(station.state)
        stop = tmp_path / "stop-attack"
        with open(tmp_path / "attack.json", "w") as fh:
            attacker = lab.popen("atk", PYTHON, "-m", "tests.test_reliability_missing_files", station.ip, str(stop),
                                 str(ATTACK_MAX_S), *addresses, env={**os.environ, "PYTHONPATH": str(REPO)},
                                 stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO))
        try:
            time.sleep(2)                    # the phone powers on into the flood
            assert attacker.poll() is None, (tmp_path / "attack.json").read_text()[-2000:]
            attacked, attacked_s = run_phone(station, "ph2", ATTACKED_MAC)
        finally:
            stop.write_text("stop")
            try:
                attacker.wait(ATTACK_MAX_S)
            except subprocess.TimeoutExpired:
                lab.kill(attacker)
        rep = assert_on_target(station, attacked, [STONE, TARGET])
        seen = json.loads((tmp_path / "attack.json").read_text().strip().splitlines()[-1])
        requests = seen["tftp"]["sent"] + seen["http"]["sent"]
        stopped = time.time()
        # the rows of the flood are written (batch writer) and pruned (heartbeat, every 2 s) by a beat after it
        wait_for(lambda: (lambda i: i.get("beat_at", stopped) > stopped + 2 or None)(
            {"beat_at": _beat(station)}), 15, "a file service heartbeat after the flood")
        after = store_size(station.state)
        polls = health.stop()

        record_attack("missing_files", attack="requests for missing files (TFTP and HTTP :6970)",
                      load=f"{seen['tftp']['sent']} TFTP and {seen['http']['sent']} HTTP requests, each for a new "
                           f"missing name, from {ADDRESSES} addresses holding no lease",
                      phone_s_without=alone_s, phone_s_with=attacked_s, store_before=before, store_after=after,
                      attack_seen=seen, store_bytes_per_request=round((after["bytes"] - before["bytes"]) / requests, 1),
                      health=polls, report=rep["result"])

        # the flood was real and answered: every name refused as missing, none served, few left unanswered
        assert seen["tftp"]["sent"] >= MIN_EACH and seen["http"]["sent"] >= MIN_EACH, seen
        assert seen["tftp"]["data"] == 0 and seen["http"]["other_status"] == 0, seen
        assert seen["tftp"]["not_found"] >= 0.95 * seen["tftp"]["sent"], seen
        assert seen["http"]["404"] >= 0.95 * seen["http"]["sent"], seen
        # the store: within its bound, and no stranger became a phone
        from appliance.store import BOUNDS
        assert requests > BOUNDS["transfers"].rows, requests          # more than the table keeps: its pruning held
        assert_store_within_bounds(after)
        assert after["phones"] == before["phones"] + 1, (before, after)
        assert polls["polls"] >= 10 and polls["unanswered"] == 0, polls
        assert all(code is None for code in station.alive().values()), station.alive()


def _beat(station: Station) -> float:
    import sqlite3
    conn = sqlite3.connect(station.state / "station.db", timeout=5)
    try:
        row = conn.execute("SELECT heartbeat FROM services WHERE name = 'tftp'").fetchone()
    finally:
        conn.close()
    return row[0] if row else 0.0


if __name__ == "__main__":      # the attacker, in its namespace: SERVER STOP_FILE SECONDS ADDRESS...
    server, stop_file, seconds, *addrs = sys.argv[1:]
    print(json.dumps(attack(server, stop_file, float(seconds), addrs)), flush=True)
