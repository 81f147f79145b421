"""The dashboard in headless Chromium while a simulated 7965 recovers through the stone on a whole station.

The station is the real `appliance run` (supervisord: dhcp, tftp, dns, api) in
a namespace this test builds; the phone is `appliance simulate` (the
independent model, tools.phonesim, web access off) in a second one, and
Chromium runs in a third, as a tech's laptop on the bench switch would (a
wrapper puts Playwright's Chromium into that namespace).  The page is
loaded once: every step the test sees must arrive by the page's live updates.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_for
from tests.test_dashboard import ARTIFACTS, FLAGS

REPO = Path(__file__).resolve().parent.parent
from bench.dhcp_lab import PYTHON, Lab, station_env  # noqa: E402

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip", "curl"),
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")]

STATION, DESK = "10.73.0.1", "10.73.0.250"
START, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
FIRST_MAC, MAC = "001e7a730000", "001e7a730001"   # the simulator numbers its phones from FIRST_MAC + 1




def stop_station(run, state: Path) -> None:
    """supervisord gives each service its own process group, so killing `appliance run`'s group
    would orphan them: stop it with TERM (supervisord then stops every program) and kill what is
    left of the services this station recorded (by PID, checked against the command line)."""
    from appliance.store import Store
    pids = [s["pid"] for s in Store(state / "station.db").services.all() if s.get("pid")]
    if run.poll() is None:
        os.kill(run.pid, signal.SIGTERM)
        try:
            run.wait(40)
        except subprocess.TimeoutExpired:
            pass
    for pid in pids:
        try:
            if b"appliance" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def watch_the_row(lab, desk: str, tmp_path: Path) -> list[str]:
    """Open the dashboard from the desk namespace once, start the phone, note each new text of its row."""
    from playwright.sync_api import sync_playwright

    wrapper = tmp_path / "chromium-in-desk"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {desk} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    seen: list[str] = []
    with sync_playwright() as pw, open(tmp_path / "phone.jsonl", "w") as out:
        browser = pw.chromium.launch(executable_path=str(wrapper), args=FLAGS, env={**os.environ, "HOME": str(tmp_path)})
        phone = None
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            page.goto(f"http://{STATION}:8080/")
            page.evaluate("window.loadedOnce = true")
            phone = lab.popen("ph", PYTHON, "-m", "appliance", "simulate", "--interface", "lan0",
                              "--model", "CP-7965G", "--load", START, "--first-mac", FIRST_MAC, "--no-web",
                              "--reboot-seconds", "3", "--deadline", "120", stdout=out, cwd=str(REPO))
            row = page.locator(f'tr[data-mac="{MAC}"]')
            deadline = time.time() + 150
            while time.time() < deadline:
                text = row.inner_text(timeout=1000) if row.count() else ""
                if text and (not seen or seen[-1] != text):
                    seen.append(text)
                if "recovered" in text:
                    break
                time.sleep(0.1)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-station.png"), full_page=True)
            assert page.evaluate("window.loadedOnce === true"), "the page reloaded"
        finally:
            browser.close()
            if phone is not None:
                lab.kill(phone)
    return seen


def test_dashboard_follows_a_phone_through_the_stone_to_the_target(tmp_path):
    from appliance.firmware import synth
    with Lab("db", subnet="10.73.0") as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        desk = lab.add("desk", DESK)
        state = tmp_path / "state"
        for load in (STONE, TARGET):
            synth.write_load(state / "firmware", load, size_bytes=4_000_000, components=3)
        env = station_env(state, DHCP_POOL_START="10.73.1.1", DHCP_POOL_END="10.73.1.250")
        with open(tmp_path / "station.log", "a") as log:
            run = lab.popen("srv", PYTHON, "-m", "appliance", "run", env=env, stdout=log, cwd=str(REPO))
            try:
                health = lambda: lab.run("desk", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",  # noqa: E731
                                         "--max-time", "2", f"http://{STATION}:8080/api/v1/health").stdout == "200"
                wait_for(health, 90, "all four services green, seen from the desk namespace")
                seen = watch_the_row(lab, desk, tmp_path)
            finally:
                stop_station(run, state)

    trace = "\n---\n".join(seen)
    assert seen and "recovered" in seen[-1], trace
    assert f"runs {TARGET}" in seen[-1], trace
    # The plan stays on the row (stone -> target) and its step advances.  A synthetic load downloads in a
    # fraction of a second, under the page's refresh, so "downloading" may not be sampled; installing and
    # rebooting lasts as long as the phone's reboot and always is.
    stone_step = next((i for i, t in enumerate(seen) if "step 1 of 2" in t and "rebooting into the new load" in t), None)
    target_step = next((i for i, t in enumerate(seen) if "step 2 of 2" in t and "rebooting into the new load" in t), None)
    assert stone_step is not None and target_step is not None and stone_step < target_step, trace
    assert all(STONE in seen[i] and TARGET in seen[i] for i in (stone_step, target_step)), trace
    assert "00:1e:7a:73:00:01" in seen[-1] and "CP-7965G" in seen[-1], trace
