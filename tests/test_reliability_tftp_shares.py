"""TFTP fair shares (issue 24 item 1): strangers asking for `timeout=255` cannot lock a phone out.

Why: before, a couple of hundred read requests from a couple of dozen addresses, each asking for
`timeout=255` and never ACKing, were all accepted; every later request, a genuine phone's included,
got "server busy" for as long as those sessions lived (six sends of 255 s: about 25 minutes).

The station is the real `appliance serve dhcp` + `appliance serve tftp` (shipped config: two
workers' worth of caps are the same shared counters, one worker by default) in a namespace; the
genuine phone is the independent model (tools.phonesim, a 7965 on 8.3(2) that needs the 8.5(2)
stone) in its own; the attackers are 26 static addresses (no lease) in a third, each opening more
sessions than `[tftp] per_client` and re-opening each one the station ends, for as long as the
phone takes.  The phone recovers once alone (the baseline) and once under the attack; both must end
on the target with a true report, and the figures go to docs/reliability.md.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool
from tests.reliability_figures import record_attack
from tests.reliability_station import assert_store_within_bounds, store_size

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env, wait_serving  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip")]

NET = "10.87"
STATION = f"{NET}.0.1"
OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
ATTACKERS = 26                 # a couple of dozen addresses, 10 sessions each: more than the 200 overall
SESSIONS_EACH = 10             # and more than [tftp] per_client (8)
PHONE_DEADLINE_S = 90
ATTACK_MAX_S = 150             # the attacker stops by itself after this, whatever happens to the test
REOPEN_S = 0.5                 # a refused or ended session is asked again this soon
DEAD_S = 20.0                  # a held session silent this long is taken for ended and asked again


# ---- the attacker: run in its own namespace as `python -m tests.test_reliability_tftp_shares` ------------
def attack(addresses: list[str], server: str, port: int, name: str, seconds: float) -> dict:
    """Hold as many `timeout=255` sessions as the station grants, never ACK, re-ask whenever one ends.

    Returns what it saw: requests sent, sessions opened (answered with DATA or OACK), OACKs that
    granted timeout=255, refusals (ERROR as the first answer), sessions ended by the station (ERROR
    later), and the most it held at once.
    """
    sel = selectors.DefaultSelector()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    rrq = b"\x00\x01" + name.encode() + b"\x00octet\x00timeout\x00255\x00"
    seen = {"requests": 0, "opened": 0, "timeout_granted": 0, "refused": 0, "ended": 0, "peak_held": 0,
            "refusal_texts": {}}
    slots: dict[int, dict] = {}            # fd -> {"sock", "addr", "held", "last"}
    due: list[tuple[float, str]] = [(0.0, a) for a in addresses for _ in range(SESSIONS_EACH)]

    def ask(addr: str, now: float) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        s.setblocking(False)
        s.sendto(rrq, (server, port))
        seen["requests"] += 1
        slots[s.fileno()] = {"sock": s, "addr": addr, "held": False, "last": now}
        sel.register(s, selectors.EVENT_READ)

    def drop(fd: int, now: float) -> None:
        slot = slots.pop(fd)
        sel.unregister(slot["sock"])
        slot["sock"].close()
        due.append((now + REOPEN_S, slot["addr"]))

    end = time.monotonic() + seconds
    while not stop["now"] and time.monotonic() < end:
        now = time.monotonic()
        for item in [d for d in due if d[0] <= now]:
            due.remove(item)
            ask(item[1], now)
        for key, _ in sel.select(0.05):
            slot = slots.get(key.fd)
            if slot is None:
                continue
            try:
                packet = slot["sock"].recv(65536)
            except OSError:
                drop(key.fd, now)
                continue
            slot["last"] = now
            if packet[:2] == b"\x00\x05":
                seen["ended" if slot["held"] else "refused"] += 1
                text = packet[4:].rstrip(b"\0").decode("ascii", "replace")
                seen["refusal_texts"][text] = seen["refusal_texts"].get(text, 0) + 1
                drop(key.fd, now)
            elif not slot["held"]:
                slot["held"] = True
                seen["opened"] += 1
                if packet[:2] == b"\x00\x06" and b"timeout\x00255\x00" in packet:
                    seen["timeout_granted"] += 1
        for fd, slot in list(slots.items()):
            if slot["held"] and now - slot["last"] > DEAD_S:
                drop(fd, now)
        seen["peak_held"] = max(seen["peak_held"], sum(1 for s in slots.values() if s["held"]))
    for fd in list(slots):
        slots[fd]["sock"].close()
    return seen


# ---- the test ----------------------------------------------------------------------------------------
def heartbeat(state: Path, since: float = 0.0) -> dict:
    """The file service's last heartbeat info ({} when there is none, or none beaten after `since`)."""
    try:
        conn = sqlite3.connect(state / "station.db", timeout=5)
        try:
            row = conn.execute("SELECT info, heartbeat FROM services WHERE name = 'tftp'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}
    return json.loads(row[0]) if row and row[0] and row[1] > since else {}


def report(lab: Lab, env: dict) -> dict[str, dict]:
    r = subprocess.run(["ip", "netns", "exec", lab.members["srv"], PYTHON, "-m", "appliance", "report", "--format",
                        "json"], env=env, capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    return {p["mac"]: p for p in json.loads(r.stdout)["phones"]}


def recover(lab: Lab, ns: str, mac: str, tmp: Path, during=None) -> tuple[dict, float]:
    """Run one model phone to its end; -> (its summary, seconds from power-on to its end).  `during()` is
    called about every half second while it runs (the heartbeat sampler)."""
    lab.add(ns)
    out = tmp / f"phone-{ns}.jsonl"
    with open(out, "w") as fh:
        t0 = time.monotonic()
        proc = lab.popen(ns, PYTHON, "-m", "tools.phonesim", "--interface", "lan0", "--model", "CP-7965G",
                         "--load", OLD, "--no-web", "--ignore-web-access", "--first-mac", f"{int(mac, 16) - 1:012x}",
                         "--deadline", str(PHONE_DEADLINE_S), env={**os.environ, "PYTHONPATH": str(REPO)},
                         stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO))
        deadline = t0 + PHONE_DEADLINE_S + 20
        while proc.poll() is None and time.monotonic() < deadline:
            if during is not None:
                during()
            time.sleep(0.5)
        took = time.monotonic() - t0
        if proc.poll() is None:
            lab.kill(proc)
            pytest.fail(f"phone {mac} did not end within its deadline")
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(lines) == 1, out.read_text()[-2000:]
    return json.loads(lines[0]), took


def assert_recovered(summary: dict, rep: dict | None) -> None:
    why = json.dumps({"phone": {k: summary.get(k) for k in ("load", "installed", "refused", "end", "log")},
                      "report": rep}, indent=1)[:4000]
    assert summary["load"] == TARGET and summary["end"] == "settled", why
    assert summary["installed"] == [STONE, TARGET], why
    assert rep is not None and rep["result"] == "recovered" and rep["load_after"] == TARGET, why


@pytest.mark.timeout(300)
@pytest.mark.parametrize("reserve,figures", [
    pytest.param(None, "tftp_shares", id="shipped-reserve"),
    # no reserve: the strangers fill every slot, so each file the phone asks for ends a stranger's session
    pytest.param("0", "tftp_shares_evict", id="no-reserve-eviction"),
])
def test_timeout_255_flood_from_26_addresses_does_not_keep_a_phone_from_its_target(tmp_path, reserve, figures):
    from appliance.firmware import synth
    with Lab("tfs", subnet=f"{NET}.0") as lab:
        lab.add("srv", STATION)
        state = tmp_path / "state"
        for load in (STONE, TARGET):
            synth.write_zip(state / "firmware", load, size_bytes=24_000, components=5, term=True)
        extra = {"TFTP_PHONE_RESERVE_PERCENT": reserve} if reserve is not None else {}
        env = station_env(state, DHCP_POOL_START=f"{NET}.1.1", DHCP_POOL_END=f"{NET}.1.250", **extra)
        procs = {}
        for svc in ("dhcp", "tftp"):
            with open(tmp_path / f"{svc}.log", "a") as log:
                procs[svc] = lab.popen("srv", PYTHON, "-m", "appliance", "serve", svc, env=env, stdout=log,
                                       cwd=str(REPO))
        wait_serving(state, procs["dhcp"], timeout=30)
        deadline = time.time() + 30
        while not heartbeat(state):
            assert procs["tftp"].poll() is None and time.time() < deadline, (tmp_path / "tftp.log").read_text()[-3000:]
            time.sleep(0.2)
        budget = heartbeat(state)["limits"]
        strangers_max = budget["max_sessions"] - budget["phone_reserve"]

        # 1. the baseline: the phone alone
        alone, _ = recover(lab, "ph1", "001e7a870001", tmp_path)
        assert_recovered(alone, report(lab, env).get("001e7a870001"))

        # 2. the attack, from static addresses that hold no lease
        lab.add("atk")
        addresses = [f"{NET}.2.{10 + i}" for i in range(ATTACKERS)]
        for addr in addresses:
            lab.run("atk", "ip", "addr", "add", f"{addr}/16", "dev", "lan0", check=True)
        store_before = store_size(state)
        atk_out = tmp_path / "attack.json"
        with open(atk_out, "w") as fh:
            attacker = lab.popen("atk", PYTHON, "-m", "tests.test_reliability_tftp_shares", STATION, "69",
                                 f"{STONE}.loads", str(ATTACK_MAX_S), *addresses,
                                 env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=fh, stderr=subprocess.STDOUT,
                                 cwd=str(REPO))
        peak = {"others": 0, "sessions": 0}

        def sample() -> None:
            info = heartbeat(state).get("limits") or {}
            peak["others"] = max(peak["others"], info.get("others", 0))
            peak["sessions"] = max(peak["sessions"], info.get("sessions", 0))

        try:
            deadline = time.monotonic() + 30
            while peak["others"] < strangers_max and time.monotonic() < deadline:   # the strangers' share full
                assert attacker.poll() is None, atk_out.read_text()[-2000:]
                sample()
                time.sleep(0.3)
            assert peak["others"] == strangers_max, (peak, heartbeat(state))
            before = heartbeat(state)
            attacked, _ = recover(lab, "ph2", "001e7a870002", tmp_path, during=sample)
            assert attacker.poll() is None, atk_out.read_text()[-2000:]     # the attack lasted the whole run
        finally:
            lab.kill(attacker, signal.SIGTERM, wait=10)
        stopped = time.time()
        deadline = time.monotonic() + 10
        while not heartbeat(state, since=stopped) and time.monotonic() < deadline:
            time.sleep(0.3)                  # a heartbeat beaten after the attack ended: its counts are final
        after = heartbeat(state, since=stopped)
        assert after, "the file service stopped beating"
        seen = json.loads(atk_out.read_text().strip().splitlines()[-1])
        rep = report(lab, env)
        assert_recovered(attacked, rep.get("001e7a870002"))

        limits, tftp = after["limits"], after["tftp"]
        store_after = store_size(state)
        attack = f"{ATTACKERS} static addresses x {SESSIONS_EACH} RRQs with timeout=255, never ACKed, re-asked when ended"
        record_attack(figures, attack="TFTP timeout=255 flood" + (" (no phone reserve)" if reserve == "0" else ""),
                      load=f"{peak['others']} sessions held at once from {ATTACKERS} addresses ({seen['requests']} requests "
                           f"with timeout=255, never ACKed)",
                      phone_s_without=alone["elapsed_s"], phone_s_with=attacked["elapsed_s"],
                      store_before=store_before, store_after=store_after,
                      reserve=budget["phone_reserve"], how=attack,
                      attackers=ATTACKERS, sessions_each=SESSIONS_EACH, attack_requests=seen["requests"],
                      attack_sessions_opened=seen["opened"], attack_sessions_held_peak=peak["others"],
                      strangers_share=strangers_max, sessions_peak=peak["sessions"], max_sessions=budget["max_sessions"],
                      timeout_255_granted=seen["timeout_granted"], attack_refused=seen["refused"],
                      attack_sessions_ended=seen["ended"],
                      refused_share=limits["refused_share"], refused_per_client=limits["refused_per_client"],
                      evicted=limits["evicted"], phones_refused=limits["phones_refused"],
                      timeout_declined=tftp["timeout_declined"],
                      phone_busy_during_attack=after["limits"]["phones_refused"] - before["limits"]["phones_refused"],
                      attack_refusal_texts=seen["refusal_texts"])

        assert seen["timeout_granted"] == 0, seen                  # the option over the cap is never acknowledged
        assert peak["others"] <= strangers_max, peak               # the reserve stayed the phones'
        assert limits["phones_refused"] == 0, limits               # no phone request was refused for room
        assert limits["refused_per_client"] > 0 and limits["refused_share"] > 0, limits
        if reserve == "0":                                         # the phone's files came out of strangers' slots
            assert limits["evicted"] > 0 and seen["ended"] > 0 and tftp["evicted"] == limits["evicted"], (limits, seen)
        assert tftp["timeout_declined"] >= seen["opened"] > 0, (tftp, seen)
        assert_store_within_bounds(store_after)
        for proc in procs.values():
            assert proc.poll() is None
            lab.kill(proc)


if __name__ == "__main__":        # the attacker, in its namespace: SERVER PORT NAME SECONDS ADDRESS...
    server, port, name, seconds, *addrs = sys.argv[1:]
    print(json.dumps(attack(addrs, server, int(port), name, float(seconds))), flush=True)
