"""A retry pressed on the dashboard restarts the phone's plan: headless Chromium, the real API and the real file
service (whose recovery core executes the command) over one state directory, on loopback.

Without the token the page sends nothing and the phone stays stuck; with it the file service restarts the plan
(the phone leaves "stuck", the event log says who asked) and the page moves the row out of the stuck group by itself.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from appliance import config
from appliance.store import Store
from tests.conftest import wait_for
from tests.test_api_server import start_api, stop
from tests.test_dashboard import ARTIFACTS, CHROMIUM, page  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")

PHONE = "001e7a7a0001"


def test_retry_from_the_page_restarts_the_plan_only_with_the_token(tmp_path, page):  # noqa: F811
    from tests.test_tftp_service import Station

    station = Station(tmp_path, api_token="tok")
    env = {k: v for k, v in station.env.items() if k.startswith("APPLIANCE_")}
    store = Store(config.load(environ=env).db_path)
    store.phones.upsert(PHONE, model="CP-7965G", ip="10.0.0.21", state="stuck", plan=["SCCP45.8-5-2S"], step=0,
                        diagnosis="it refused SCCP45.8-5-2S: look at its screen")
    station.start()
    api = None
    try:
        api, base = start_api(station.env)
        page.goto(base + "/")
        row = page.locator(f'tr[data-mac="{PHONE}"]')
        expect(row).to_have_attribute("data-group", "stuck", timeout=10000)
        assert page.locator('#summary [data-group="stuck"] .n').inner_text() == "1"

        row.locator('button[data-action="retry"]').click()
        page.locator("#token-cancel").click()
        expect(row.locator(".note")).to_have_text("Retry not sent: no token entered.")
        page.wait_for_timeout(3000)                # the file service looks for commands every second
        assert (store.phones.get(PHONE) or {}).get("state") == "stuck", "nothing was sent, nothing restarted"

        row.locator('button[data-action="retry"]').click()
        page.fill("#token-input", "tok")
        page.locator('#token-form button[type="submit"]').click()
        wait_for(lambda: (store.phones.get(PHONE) or {}).get("state") not in (None, "stuck"), 20,
                 "the file service to restart the phone's plan: " + station.logtext())
        assert (store.phones.get(PHONE) or {})["state"] == "seen"
        notes = wait_for(lambda: [e for e in store.events.timeline(PHONE)
                                  if "plan restarted on request (127.0.0.1)" in str(e["data"])], 10,
                         "the phone's note naming who asked (the page's address)")
        assert notes[0]["source"] != "api", notes          # written by the recovery core, not by the request
        expect(row).to_have_attribute("data-group", "progress", timeout=10000)   # the page follows by itself
        assert page.locator('#summary [data-group="stuck"] .n').inner_text() == "0"
        assert page.locator("#phones tbody tr").first.get_attribute("data-mac") == PHONE
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-retried.png"), full_page=True)
    finally:
        if api is not None:
            stop(api)
        station.stop()
        station.log.close()
