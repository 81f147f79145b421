"""The dashboard in real headless Chromium (Debian's, driven by Playwright) against a running API."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.test_api_server import api  # noqa: F401  (module-scoped running API fixture)

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 700})
            dialogs = []
            pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            pg.dialogs = dialogs
            yield pg
        finally:
            browser.close()


def test_rows_escape_and_live_updates(api, page):
    base, store = api
    page.goto(base + "/")
    row = page.locator('tr[data-mac="001b2c3d4e5f"]')
    row.wait_for(timeout=10000)
    text = row.inner_text()
    assert "CP-7945G" in text and "00:1b:2c:3d:4e:5f" in text and "10.0.0.11" in text
    assert "step 2 of 2" in text and "SCCP45.9-0-3S" in text and "downloading firmware" in text
    assert "<script>alert(1)</script>" in text, "a host name from the network shows as text"
    assert page.locator("tr[data-mac] script").count() == 0 and page.dialogs == []
    assert row.locator('[role="progressbar"]').get_attribute("aria-valuenow") == "25"

    store.transfers.write([{"key": "t1", "bytes": 15000}])
    expect(row.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "75", timeout=10000)
    guard = page.locator('#problems .banner[data-code="dhcp-guard-blocked"]')
    assert guard.count() == 0 and page.locator("#guard-banner").is_hidden()
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "refusing", "servers": ["10.0.0.254"]})
    store.events.add("dhcp", "dhcp.guard", None, status="refusing")
    guard.wait_for(state="visible", timeout=10000)      # health's problem, what then what to do
    assert "10.0.0.254" in guard.locator(".what").inner_text() and guard.locator(".do").inner_text()
    assert page.locator("#guard-banner").is_hidden(), "one banner per problem, not the old one beside it"
    store.phones.upsert("0011223344aa", model="CP-7841", ip="10.0.0.13", state="seen",
                       vendor_class='"><img src=x onerror=alert(2)>')
    page.locator('tr[data-mac="0011223344aa"]').wait_for(timeout=10000)
    assert page.locator("tr[data-mac] img").count() == 0 and page.dialogs == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "clear", "servers": []})


def test_phone_width_layout(api, page):
    base, _ = api
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(base + "/")
    page.locator('tr[data-mac="001b2c3d4e5f"]').wait_for(timeout=10000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)


def test_phone_waiting_for_a_restart_says_what_to_do(api, page):
    """A phone parked on a stone (it already ran it) is not stuck, but only a restart moves it on."""
    base, store = api
    store.phones.upsert("001e7a770009", model="CP-7965G", ip="10.0.0.19", state="waiting",
                       current_load="SCCP45.8-5-2S", target_load="SCCP45.9-4-2SR3-3S", plan=["SCCP45.9-4-2SR3-3S"],
                       diagnosis="already on SCCP45.8-5-2S, which its config named, so it stays there: "
                                 "restart it (unplug power) to go on to SCCP45.9-4-2SR3-3S")
    page.goto(base + "/")
    row = page.locator('tr[data-mac="001e7a770009"]')
    row.wait_for(timeout=10000)
    text = row.inner_text()
    assert "waiting for the tech to restart it" in text and "restart it (unplug power)" in text, text
    color = row.locator(".state-waiting").evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(161, 92, 0)", color      # --warn: needs a hand, not failed
