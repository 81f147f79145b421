"""`appliance demo`: a newcomer watches the station recover model phones, on the dashboard and in the terminal."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from appliance.recovery.board import Board, render
from tests.conftest import REPO, needs_root, needs_tool
from tests.test_dashboard import FLAGS
from tests.test_dns import free_udp_port

CHROMIUM = shutil.which("chromium")
PHONE = {"mac": "001e7a0d0001", "model": "CP-7965G", "current_load": "SCCP45.8-3-2S", "step": 0, "steps": 2,
         "state": "downloading", "state_words": "downloading the stone", "diagnosis": None, "first_seen": 100.0}


def test_board_redraws_in_place_on_a_terminal():
    out: list[str] = []
    board = Board(out.append, tty=True)
    board.update([PHONE], 110.0)
    board.update([{**PHONE, "step": 1, "state_words": "rebooting"}], 115.0)
    assert not out[0].startswith("\x1b") and out[1].startswith("\x1b[2F\x1b[J")     # cursor up over 2 lines
    assert "MAC" in out[1] and "2/2" in out[1] and "rebooting" in out[1] and "15s" in out[1]


def test_board_appends_only_changed_phones_when_not_a_terminal():
    out: list[str] = []
    board = Board(out.append, tty=False)
    board.update([PHONE], 110.0)
    board.update([PHONE], 120.0)                     # only the clock moved: nothing new
    board.update([{**PHONE, "state": "stuck", "state_words": "stuck", "diagnosis": "Auth Fail"}], 130.0)
    assert len(out) == 2 and "\x1b" not in "".join(out)
    assert "stuck: Auth Fail" in out[1]
    assert render([], 0.0)[0].startswith("MAC")


@pytest.mark.netns
@pytest.mark.slow
@needs_root()
@needs_tool("ip")
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
def test_demo_prints_its_dashboard_and_chromium_sees_phones_progress(tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_udp_port()      # a free number; the API binds TCP on it
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "demo", "--port", str(port), "--deadline", "120"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 60
        while not any(line.startswith("dashboard: ") for line in lines) and time.time() < deadline:
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        url = next(line.split(" ", 1)[1].strip() for line in lines if line.startswith("dashboard: "))
        assert url == f"http://127.0.0.1:{port}/"
        seen: dict[str, list[str]] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, env={**os.environ, "HOME": str(tmp_path)})
            try:
                page = browser.new_page()
                page.goto(url)
                end = time.time() + 150
                while time.time() < end and proc.poll() is None:
                    for row in page.locator("tr[data-mac]").all():
                        mac, text = row.get_attribute("data-mac"), row.inner_text(timeout=1000)
                        if mac and (not seen.get(mac) or seen[mac][-1] != text):
                            seen.setdefault(mac, []).append(text)
                    time.sleep(0.3)
            finally:
                browser.close()
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)
    reader.join(5)
    text = "".join(lines)
    assert len(seen) >= 4, seen                                      # every model phone showed up on the page
    assert any(len(texts) >= 3 for texts in seen.values()), seen     # and at least one moved through states
    assert any("recovered" in texts[-1] for texts in seen.values()), seen
    assert "report:" in text and "all phones on their targets" in text
    assert re.search(r"001e7a0d0001 .* recovered", text), text
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"demo-st-{proc.pid}" not in names and f"demo-ph-{proc.pid}" not in names
