"""The dashboard shows a phone's firmware kind (Enterprise, MPP, transition) beside it and a conversion as its own
result (appliance/api/static/dashboard.js, issue 27 item 5), in headless Chromium against the running API."""
from __future__ import annotations

from playwright.sync_api import expect

from appliance.recovery.diagnosis import Code, Need, Note
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.memory import to_row
from appliance.recovery.phone import Phone
from tests.test_api_server import api  # noqa: F401  (module-scoped running API fixture)
from tests.test_dashboard import page, pytestmark  # noqa: F401

MPP = "sip78xx.11-3-5MPP0001-10"


def test_firmware_kind_and_conversion_results(api, page):  # noqa: F811
    base, store = api
    rows = {
        "00562b047801": Phone("00562b047801", model="CP-7841", current=MPP, state=S.DONE, converted_from="enterprise",
                              note=Note(Code.ON_LOAD, (MPP,))),
        "00562b047802": Phone("00562b047802", model="CP-7841", current="sip78xx.12-5-1SR1-4", state=S.STUCK,
                              note=Note(Code.CONVERT_REFUSED, (Need("licence", "CP-7841", "mpp",
                                                                    low="00562B047802.lic"),))),
        "00562b047803": Phone("00562b047803", model="CP-7841", current="sip78xx.TLexE2M-11-2-3C-12",
                              plan=["sip78xx.TLexE2M-11-2-3C-12", MPP], step=1, state=S.CONFIGURED,
                              converted_from="enterprise"),
    }
    for mac, p in rows.items():
        store.phones.upsert(mac, **to_row(p))
    page.goto(base + "/")
    done = page.locator('tr[data-mac="00562b047801"]')
    done.wait_for(timeout=10000)
    expect(done.locator(".firmware")).to_have_text("MPP (multiplatform) firmware")
    expect(done.locator(".conversion")).to_have_text("converted")
    refused = page.locator('tr[data-mac="00562b047802"]')
    expect(refused.locator(".conversion")).to_have_text("conversion refused")
    expect(refused.locator(".firmware")).to_have_text("Enterprise firmware")
    assert "00562B047802.lic" in refused.inner_text()
    moving = page.locator('tr[data-mac="00562b047803"]')
    expect(moving.locator(".firmware")).to_have_text("transition load (Enterprise to MPP) → MPP (multiplatform) firmware")
    expect(moving.locator(".conversion")).to_have_text("converting")
    assert page.locator('tr[data-mac="001b2c3d4e5f"] .conversion').count() == 0
