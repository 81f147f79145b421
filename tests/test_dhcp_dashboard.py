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
    expect(line).to_have_class("banner", timeout=10000)          # the page polls health every 2 s
    assert line.inner_text().startswith("No address left for a new phone: unplug other devices or widen the DHCP pool.")
    assert "72 phones" in line.inner_text() and "0 free of 100" in line.inner_text()
