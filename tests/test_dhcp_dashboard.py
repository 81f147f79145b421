"""The dashboard's pool line in real headless Chromium: who holds the DHCP pool, and a banner when phones get none."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.test_api_server import api  # noqa: F401  (module-scoped running API fixture)
from tests.test_dashboard import CHROMIUM, page  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")

STATUS = {"pool_start": "10.0.0.10", "pool_end": "10.0.0.109", "size": 100, "phones": 60, "others": 25,
          "others_share": 25, "others_free": 0, "quarantined": 3, "free": 12, "used": 85, "exhausted": False,
          "others_full": True, "conflicts": 3}


def test_pool_line_shows_who_holds_the_pool_and_turns_into_a_banner_when_phones_get_none(api, page):  # noqa: F811
    base, store = api
    store.kv.put("dhcp.status", STATUS)
    page.goto(base + "/")
    line = page.locator("#pool-line")
    line.wait_for(state="visible", timeout=10000)
    assert line.inner_text() == "Addresses: 60 phones, 25 other devices (at most 25), 3 quarantined, 12 free of 100."
    assert line.get_attribute("class") == "muted"
    store.kv.put("dhcp.status", {**STATUS, "phones": 72, "free": 0, "used": 97, "exhausted": True})
    # health's problems say it (the page polls health every 2 s): a red banner, what then what to do
    banner = page.locator('#problems .banner[data-code="pool-exhausted"][data-severity="red"]')
    banner.wait_for(state="visible", timeout=10000)
    assert "no free address for a new phone" in banner.locator(".what").inner_text()
    assert "appliance forget MAC" in banner.locator(".do").inner_text()
    expect(line).to_have_text("Addresses: 72 phones, 25 other devices (at most 25), 3 quarantined, 0 free of 100.")
    assert line.get_attribute("class") == "muted", "the counts stay a plain line: the banner above says what to do"
