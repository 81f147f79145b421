"""Retry and forget from the dashboard (issue 25 item 4): the station token asked once, a wrong or missing one
refused and said so, never a silent open write; hostile MACs and tokens on the same paths get a named error.

The page runs in real headless Chromium against a running API over a seeded store (tests/test_dashboard_work.py);
that the file service then restarts the phone's plan is tests/test_dashboard_retry.py.
"""
from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from appliance import events as ev
from tests.conftest import wait_for
from tests.test_dashboard import CHROMIUM, page  # noqa: F401  (the browser fixture)
from tests.test_dashboard_work import LOADING, STUCK_A, station  # noqa: F401  (the seeded API)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")

TOKEN_KEY = "recovery-station-token"
HOSTILE_MAC = "<img src=x onerror=alert(3)>"


def commands(store, mac: str, kind: str) -> list[dict]:
    return [e for e in store.events.timeline(mac) if e["kind"] == kind]


def test_retry_asks_for_the_token_refuses_a_wrong_one_and_is_sent_with_the_right_one(station, page):  # noqa: F811
    base, store, _ = station
    page.goto(base + "/")
    row = page.locator(f'tr[data-mac="{STUCK_A}"]')
    row.wait_for(timeout=10000)
    form, note = page.locator("#token-form"), row.locator(".note")
    before = len(commands(store, STUCK_A, ev.PHONE_RETRY))

    row.locator('button[data-action="retry"]').click()                   # no token yet: asked, nothing sent
    expect(form).to_be_visible()
    assert "needs the station token" in page.locator("#token-why").inner_text()
    expect(note).to_have_text("Not sent: Retry needs the station token. Enter it above.")
    page.locator("#token-cancel").click()
    expect(note).to_have_text("Retry not sent: no token entered.")
    assert page.evaluate("() => fetch('/api/v1/phones/%s/retry', {method: 'POST'}).then(r => r.status)" % STUCK_A) \
        == 401, "the station itself refuses a write without its token"
    assert len(commands(store, STUCK_A, ev.PHONE_RETRY)) == before

    row.locator('button[data-action="retry"]').click()                   # a wrong token: refused, asked again
    page.fill("#token-input", "not-the-token")
    page.locator('#token-form button[type="submit"]').click()
    expect(note).to_have_text("Refused: the station did not accept that token. Enter the right one above, then "
                              "press Retry again.")
    expect(form).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert len(commands(store, STUCK_A, ev.PHONE_RETRY)) == before

    page.fill("#token-input", "tok")                                      # the right one: the retry goes at once
    page.locator('#token-form button[type="submit"]').click()
    expect(note).to_have_text("Retry sent: the station starts this phone's plan again within a few seconds.")
    queued = wait_for(lambda: commands(store, STUCK_A, ev.PHONE_RETRY)[before:], 10, "the retry command")
    assert queued[0]["data"].get("by") == "127.0.0.1"
    assert form.is_hidden() and "tok" not in page.url
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == "tok"
    assert "Station token entered" in page.locator("#token-state").inner_text()

    # Asked once: the next writes go without asking.  Forget on a phone with a lease frees it; on one without,
    # the page says there was nothing to free.
    row.locator('button[data-action="forget"]').click()
    expect(note).to_have_text("Lease freed: the address goes back to the pool; the device gets a new one when it "
                              "next asks.")
    assert commands(store, STUCK_A, ev.LEASE_FORGET)
    other = page.locator(f'tr[data-mac="{LOADING}"]')
    other.locator('button[data-action="forget"]').click()
    expect(other.locator(".note")).to_have_text("Nothing to forget: the station holds no address for this device.")
    assert form.is_hidden() and page.dialogs == []


def test_hostile_mac_and_token_from_the_page_get_a_named_error_and_the_page_goes_on(station, page):  # noqa: F811
    base, store, _ = station
    store.phones.upsert(HOSTILE_MAC, model="CP-7965G", state="stuck", diagnosis="seeded with a hostile MAC")
    try:
        page.goto(base + "/")
        page.evaluate(f"sessionStorage.setItem('{TOKEN_KEY}', 'tok')")
        page.reload()
        row = page.locator("#phones tbody tr", has_text="seeded with a hostile MAC")
        row.wait_for(timeout=10000)
        assert HOSTILE_MAC in row.inner_text() and page.locator("#phones img").count() == 0
        row.locator('button[data-action="retry"]').click()
        expect(row.locator(".note")).to_have_text(f"Refused (400): not a MAC address: '{HOSTILE_MAC}'")
        row.locator('button[data-action="forget"]').click()
        expect(row.locator(".note")).to_have_text(f"Refused (400): not a MAC address: '{HOSTILE_MAC}'")

        # A token no HTTP header can carry is not sent; one it can (but wrong) is refused by the station.
        page.evaluate(f"sessionStorage.setItem('{TOKEN_KEY}', 'tok\u2603')")
        stuck = page.locator(f'tr[data-mac="{STUCK_A}"]')
        stuck.locator('button[data-action="retry"]').click()
        expect(stuck.locator(".note")).to_have_text("Not sent: the token has characters a station token never has. "
                                                    "Enter it again above.")
        page.fill("#token-input", "t\u00f6k")
        page.locator('#token-form button[type="submit"]').click()
        expect(stuck.locator(".note")).to_contain_text("Refused: the station did not accept that token.")
        assert page.dialogs == [] and page.locator("#phones tbody tr").count() >= 6      # the page goes on
    finally:
        with store._db.transaction() as conn:
            conn.execute("DELETE FROM phones WHERE mac = ?", (HOSTILE_MAC,))


def request(base: str, method: str, path: str, auth: bytes | None = b"Bearer tok") -> tuple[int, dict | str]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        if auth is not None:
            conn.putheader("Authorization", auth)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, body
    finally:
        conn.close()


@pytest.mark.parametrize("method,template", [("POST", "/api/v1/phones/{}/retry"), ("DELETE", "/api/v1/leases/{}")])
def test_hostile_macs_and_tokens_on_the_write_paths_get_named_errors(station, method, template):  # noqa: F811
    base, store, _ = station
    status, body = request(base, method, template.format("A" * 5000))
    assert status == 414 and "Request Line is too large" in body, (status, body)      # the server's own limit
    for mac in ("A" * 1000, "\x00\x1b[2J\u202e", "001b2c3d4e5f0", "../../etc/passwd", "%", "00:1b:2c:3d:4e:5g"):
        status, body = request(base, method, template.format(quote(mac, safe="")))
        assert status in (400, 404), (mac[:20], status, body)
        assert isinstance(body, dict) and body["status"] == status, body
        if status == 400:
            assert body["error"].startswith("not a MAC address: ") and len(body["error"]) <= 120, body
            assert not any(c in body["error"] for c in "\x00\x1b\u202e"), body
    for auth in (b"", b"Bearer", b"Bearer ", b"Basic dG9rOg==", b"Bearer t\xf6k", b"Bearer tok\x01",
                 b"bearer tok", b"Bearer " + b"x" * 4000, None):
        status, body = request(base, method, template.format(STUCK_A), auth)
        assert status in (400, 401), (auth[:20] if auth else auth, status, body)
        if status == 401:
            assert body["error"] == "missing or wrong bearer token", body
    status, body = request(base, "GET", "/api/v1/health", None)
    assert status in (200, 503) and "problems" in body, "the API goes on answering"
