"""A dashboard a tech can work from (issue 25 item 4), in real headless Chromium against a running API.

The store is seeded directly (phones stuck, in progress, waiting, recovered; a running transfer of a load the
firmware library holds), as the other dashboard tests do.  What the page must do is checked by measuring it:
the counts, the order of the rows, the whole-load bar against the files on disk, the columns' x-positions
before and after the data changes, that no load ID wraps, and at 390 px that each phone is a labelled card with
the stuck ones first and on screen.  Screenshots go to tests/artifacts/ (dashboard-wide.png,
dashboard-cards.png); the wide one is also taken twice across a refresh of unchanged data and must not differ
by a pixel (the rows jumping on refresh was the complaint).
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from appliance import config
from appliance.firmware import synth
from appliance.store import Store
from tests.test_api_server import start_api, stop
from tests.test_dashboard import ARTIFACTS, CHROMIUM, page  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
STUCK_A, STUCK_B = "001e7a000003", "001e7a000000"      # two stuck phones: B sorts first (by MAC)
LOADING, DONE, WAITING, SEEN = "001e7a000002", "001e7a000001", "001e7a000004", "001e7a000005"
RATE = 50_000                                          # bytes/s of the running transfer (500 kB in 10 s)


def seed(store: Store, fw: Path) -> dict:
    now = time.time()
    for name in ("api", "dhcp", "dns", "tftp"):
        store.services.beat(name, 100, {})
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "clear", "servers": []})
    # the library as Cisco ships it (each load with its term files), so health has nothing to say about it
    for load in (STONE, TARGET):
        synth.write_zip(fw, load, size_bytes=3_000_000, components=3)
    sizes = [(name, len(data)) for name, data in synth.load_files(STONE, 3_000_000, 3).items()]  # .loads first
    store.phones.upsert(STUCK_A, model="CP-7965G", ip="10.0.0.13", state="stuck", plan=[STONE, TARGET], step=0,
                        current_load="SCCP45.8-3-2S", target_load=TARGET,
                        diagnosis="it holds another cluster's trust list and ignores this station's config: "
                                  "erase it (Settings > Security > Trust List > ITL File, **#, Erase), then restart it")
    store.phones.upsert(STUCK_B, model="CP-7945G", ip="10.0.0.10", state="stuck", plan=[STONE, TARGET], step=0,
                        target_load=TARGET, diagnosis="it refused SCCP45.8-5-2S twice: look at its screen")
    store.phones.upsert(LOADING, model="CP-7945G", ip="10.0.0.12", state="downloading", plan=[STONE, TARGET],
                        step=0, current_load="SCCP45.8-3-2S", target_load=TARGET,
                        hostname="<script>alert(1)</script>")
    store.phones.upsert(DONE, model="CP-8845", ip="10.0.0.11", state="done", plan=["sip88xx.14-2-1-0001-22"],
                        step=1, current_load="sip88xx.14-2-1-0001-22", target_load="sip88xx.14-2-1-0001-22",
                        hints={"memory": {"vid": "V15"}})
    store.phones.upsert(WAITING, model="CP-7965G", ip="10.0.0.14", state="waiting", current_load=STONE,
                        target_load=TARGET, plan=[TARGET],
                        diagnosis=f"already on {STONE}, which its config named, so it stays there: "
                                  f"restart it (unplug power) to go on to {TARGET}")
    store.phones.upsert(SEEN, model="CP-7965G", state="seen", vendor_class='"><img src=x onerror=alert(2)>')
    (manifest, m_size), (c0, c0_size), (c1, c1_size) = sizes[0], sizes[1], sizes[2]
    t0 = now - 40
    store.transfers.write([
        {"key": "m", "proto": "tftp", "client_ip": "10.0.0.12", "mac": LOADING, "file": manifest, "bytes": m_size,
         "total": m_size, "result": "complete", "started": t0, "updated": t0 + 0.2, "duration": 0.2},
        {"key": "c0", "proto": "tftp", "client_ip": "10.0.0.12", "mac": LOADING, "file": c0, "bytes": c0_size,
         "total": c0_size, "result": "complete", "started": t0 + 1, "updated": t0 + 21, "duration": 20.0},
        {"key": "c1", "proto": "tftp", "client_ip": "10.0.0.12", "mac": LOADING, "file": c1, "bytes": 10 * RATE,
         "total": c1_size, "result": "running", "started": now - 10, "updated": now}])
    with store._db.transaction() as conn:
        conn.execute("INSERT INTO leases(mac, ip, state, expires, hostname, updated) VALUES (?,?,?,?,?,?)",
                     (STUCK_A, "10.0.0.13", "bound", now + 3600, "SEP001E7A000003", now))
    return {"sizes": sizes, "done": m_size + c0_size + 10 * RATE, "total": sum(s for _, s in sizes)}


def beat(path: Path, stopping: threading.Event, every: float = 2.0, at_most: float = 600.0) -> None:
    """Heartbeats of the services this test does not run, as if they ran: without them health turns red
    (service down) after 10 s and its banners would be what the page shows first."""
    store = Store(path)
    deadline = time.monotonic() + at_most
    while time.monotonic() < deadline and not stopping.wait(every):
        for name in ("dhcp", "dns", "tftp"):
            store.services.beat(name, 100, {})


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    (tmp / "firmware").mkdir()
    env = {"APPLIANCE_CONFIG": str(Path(__file__).resolve().parent.parent / "config" / "appliance.toml"),
           "APPLIANCE_NETWORK_INTERFACE": "lo", "APPLIANCE_TFTP_ROOT": str(tmp / "firmware"),
           "APPLIANCE_STATE_DIR": str(tmp / "state"), "APPLIANCE_API_TOKEN": "tok"}
    store = Store(config.load(environ=env).db_path)
    facts = seed(store, tmp / "firmware")
    stopping = threading.Event()
    beating = threading.Thread(target=beat, args=(store.path, stopping), daemon=True)
    beating.start()
    proc, base = start_api(env)
    try:
        yield base, store, facts
    finally:
        stop(proc)
        stopping.set()
        beating.join(5)


def duration(s: float) -> str:
    """The page's words for a time left (dashboard.js duration)."""
    s = max(1, round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s // 60 % 60:02d} min"


def columns(page) -> list[tuple[float, float]]:
    """(x, width) of each header cell and each cell of the first two rows: what must not move."""
    return page.evaluate("""() => [...document.querySelectorAll('#phones thead th, #phones tbody tr:nth-child(-n+2) > td')]
        .map(e => { const r = e.getBoundingClientRect(); return [Math.round(r.x * 10) / 10, Math.round(r.width * 10) / 10]; })""")


def wrapped_load_ids(page) -> list[str]:
    """Load IDs drawn on more than one line (each .load is one nowrap box: taller than a line means it broke)."""
    return page.evaluate("""() => [...document.querySelectorAll('.load')].filter(e => e.offsetParent &&
        e.getBoundingClientRect().height > 1.8 * parseFloat(getComputedStyle(e).fontSize)).map(e => e.textContent)""")


def test_wide_summary_order_whole_load_progress_and_columns_that_stay_put(station, page):  # noqa: F811
    base, store, facts = station
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + "/")
    page.locator(f'tr[data-mac="{LOADING}"] [data-whole="load"]').wait_for(timeout=10000)

    counts = {g: page.locator(f'#summary [data-group="{g}"] .n').inner_text()
              for g in ("stuck", "progress", "waiting", "recovered")}
    assert counts == {"stuck": "2", "progress": "2", "waiting": "1", "recovered": "1"}, counts
    order = page.eval_on_selector_all("#phones tbody tr", "rows => rows.map(r => r.dataset.mac)")
    assert order == [STUCK_B, STUCK_A, LOADING, SEEN, WAITING, DONE], order

    row = page.locator(f'tr[data-mac="{LOADING}"]')
    pct = 100 * facts["done"] // facts["total"]
    assert row.locator('[data-whole="load"]').get_attribute("aria-valuenow") == str(pct)
    left = (facts["total"] - facts["done"]) / RATE
    text = row.inner_text()
    assert f"({pct}%)" in text and f"about {duration(round(left, 1))} left at 49 kB/s" in text, text
    assert f"2 of {len(facts['sizes'])} files" in text and STONE in text, text
    assert "<script>alert(1)</script>" in text and page.locator("#phones script, #phones img").count() == 0
    assert page.dialogs == []

    stuck = page.locator(f'tr[data-mac="{STUCK_A}"]').inner_text()
    assert "stuck" in stuck and "Next: it holds another cluster's trust list" in stuck and "press Retry" in stuck
    done = page.locator(f'tr[data-mac="{DONE}"]').inner_text()
    assert "Next: nothing: it runs its target" in done and "hardware V15" in done, done
    assert "hardware" not in page.locator(f'tr[data-mac="{STUCK_A}"] .who').inner_text()    # no VID read: nothing

    fw = page.locator('#fw-models tr[data-model="CP-7965G"][data-protocol="sccp"]')
    assert fw.locator(".load.stone").inner_text() == STONE and fw.locator(".load.target").inner_text() == TARGET

    assert wrapped_load_ids(page) == []
    before = columns(page)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = [page.screenshot(full_page=True)]
    updated = page.evaluate("document.body.dataset.updated")
    page.wait_for_function("u => document.body.dataset.updated !== u", arg=updated, timeout=10000)   # one refresh later
    shots.append(page.screenshot(full_page=True))
    (ARTIFACTS / "dashboard-wide.png").write_bytes(shots[0])
    assert shots[0] == shots[1], "the page moved on a refresh that changed nothing"

    # The data changes (more bytes, a phone with long names): the columns stay where they were, IDs stay whole.
    store.transfers.write([{"key": "c1", "bytes": 20 * RATE, "updated": time.time()}])
    store.phones.upsert("001e7a0000ff", model="CP-7975G", ip="10.0.0.200", state="configured",
                        hostname="a-very-long-host-name-that-a-phone-could-send-over-dhcp-option-12",
                        plan=["SCCP75.9-4-2SR4-3S-LONGER-THAN-ANY-REAL-LOAD-ID", "SIP75.9-4-2SR4-3S"], step=0)
    try:
        page.locator('tr[data-mac="001e7a0000ff"]').wait_for(timeout=10000)
        pct2 = 100 * (facts["done"] + 10 * RATE) // facts["total"]
        expect(row.locator('[data-whole="load"]')).to_have_attribute("aria-valuenow", str(pct2), timeout=10000)
        assert columns(page) == before
        assert wrapped_load_ids(page) == []
        long_id = page.locator('tr[data-mac="001e7a0000ff"] .load').first
        assert long_id.get_attribute("title") == "SCCP75.9-4-2SR4-3S-LONGER-THAN-ANY-REAL-LOAD-ID"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        with store._db.transaction() as conn:
            conn.execute("DELETE FROM phones WHERE mac = '001e7a0000ff'")


def test_phone_width_labelled_cards_stuck_first_and_on_screen(station, page):  # noqa: F811
    base, _, _ = station
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/")
    page.locator(f'tr[data-mac="{LOADING}"] [data-whole="load"]').wait_for(timeout=10000)
    page.wait_for_function("() => document.querySelectorAll('#phones tbody tr').length === 6", timeout=10000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "sideways scrolling"

    first = page.locator("#phones tbody tr").first
    assert first.get_attribute("data-mac") == STUCK_B
    box = first.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844, f"first card off screen: {box}"
    second = page.locator("#phones tbody tr").nth(1)
    assert second.get_attribute("data-mac") == STUCK_A and second.bounding_box()["y"] < 844

    cards = page.evaluate("""() => [...document.querySelectorAll('#phones tbody tr')].map(tr => ({
        mac: tr.dataset.mac,
        display: getComputedStyle(tr).display,
        tops: [...tr.children].map(td => Math.round(td.getBoundingClientRect().top)),
        labels: [...tr.querySelectorAll('td[data-label]')].map(td => getComputedStyle(td, '::before').content),
        bare: [...tr.querySelectorAll('td')].map(td => td.innerText.trim()).filter(t => t === '' || t === '—'),
        who: tr.children[0].innerText, state: tr.children[1].innerText }))""")
    for c in cards:
        assert c["display"] == "block", c                          # a card, not a table row
        assert c["labels"] == ['"State"', '"Plan"', '"Progress"', '"Address"'], c
        assert c["bare"] == [], c                                  # no lone dash, no empty field
        assert c["tops"] == sorted(c["tops"]) and c["tops"][0] < c["tops"][1], c   # model+MAC, then state, ...
        assert ":" in c["who"] and "Next:" in c["state"], c
    assert "no address yet" in page.locator(f'tr[data-mac="{SEEN}"]').inner_text()
    assert wrapped_load_ids(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    shots = [page.screenshot(full_page=True)]
    updated = page.evaluate("document.body.dataset.updated")
    page.wait_for_function("u => document.body.dataset.updated !== u", arg=updated, timeout=10000)
    shots.append(page.screenshot(full_page=True))
    (ARTIFACTS / "dashboard-cards.png").write_bytes(shots[0])
    assert shots[0] == shots[1], "the cards moved on a refresh that changed nothing"
    page.screenshot(path=str(ARTIFACTS / "dashboard-cards-fold.png"))          # what a phone shows at first


def test_problems_from_health_are_banners_and_there_is_no_green_badge_beside_a_red_one(station, page):  # noqa: F811
    """The page against the health contract (problems: code, severity, what, do), before and after it lands."""
    base, _, _ = station
    doc = {"ok": False, "time": time.time(), "services": [], "guard": {"status": "clear", "servers": []}, "pool": {},
           "problems": [{"code": "firmware_empty", "severity": "red", "what": "The firmware library is empty <b>x</b>",
                         "do": "copy the cmterm zips for your phones into firmware/"},
                        {"code": "no_target", "severity": "amber", "what": "No complete load for CP-7841",
                         "do": "add cmterm-78xx.14-2-1-0001-22.zip"}]}
    page.route("**/api/v1/health", lambda route: route.fulfill(status=503, content_type="application/json",
                                                               body=json.dumps(doc)))
    page.goto(base + "/")
    page.locator('#problems .banner[data-severity="amber"]').wait_for(timeout=10000)
    red = page.locator('#problems .banner[data-severity="red"]')
    assert red.locator(".what").inner_text() == "The firmware library is empty <b>x</b>"
    assert red.locator(".do").inner_text() == "copy the cmterm zips for your phones into firmware/"
    assert page.locator("#problems b").count() == 0
    assert red.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(179, 38, 30)"
    amber = page.locator('#problems .banner[data-severity="amber"]')
    assert amber.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(161, 92, 0)"
    assert "all services up" not in page.locator("header").inner_text()
    assert page.locator("#health").get_attribute("class") == "pill bad"

    # At phone width each problem is its `what`, its `do` one tap away: the stuck phones stay on the first screen.
    page.set_viewport_size({"width": 390, "height": 844})
    red = page.locator('#problems details.banner[data-severity="red"]')
    red.wait_for(timeout=5000)
    assert red.locator(".do").is_hidden()
    red.locator("summary").click()
    expect(red.locator(".do")).to_be_visible()
    first = page.locator("#phones tbody tr").first
    assert first.get_attribute("data-group") == "stuck" and first.bounding_box()["y"] < 844

    doc.update(ok=True, problems=[])        # fixed: green again, no banner left
    expect(page.locator("#health")).to_have_text("all services up", timeout=10000)
    assert page.locator("#problems .banner").count() == 0


def test_refused_event_stream_falls_back_to_polling_and_says_so(station, page):  # noqa: F811
    """Two streams already open from this address (its share): the page's own is refused with 503."""
    import subprocess

    from appliance.api.sse import PER_ADDRESS

    base, store, _ = station
    held = [subprocess.Popen(["curl", "-sN", "--max-time", "30", base + "/api/v1/events?duration=25"],
                             stdout=subprocess.DEVNULL) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(1.0)
        page.goto(base + "/")
        expect(page.locator("#live")).to_have_text(
            "live updates paused (too many dashboards open); refreshing every 5 s", timeout=10000)
        store.phones.upsert(SEEN, ip="10.0.0.15")
        expect(page.locator(f'tr[data-mac="{SEEN}"]')).to_contain_text("10.0.0.15", timeout=8000)
        assert page.locator("#live").inner_text() != "reconnecting"
    finally:
        for p in held:
            p.kill()
            p.wait()
        store.phones.upsert(SEEN, ip=None)


def test_progress_and_firmware_roles_match_the_openapi_document(station):
    """The fields the page reads (a phone's whole-load progress, the firmware panel's stones and targets), as served
    with a load in progress, checked against the OpenAPI document by schemathesis."""
    import urllib.request

    from tests.test_api_server import schema

    base, _, facts = station
    for path in ("/api/v1/phones", "/api/v1/firmware", f"/api/v1/phones/{LOADING}"):
        op = schema[path.replace(LOADING, "{mac}")]["GET"]
        case = op.Case(path_parameters={"mac": LOADING}) if "{mac}" in op.path else op.Case()
        case.call_and_validate(base_url=base, timeout=10)
    phones = json.load(urllib.request.urlopen(base + "/api/v1/phones", timeout=10))["phones"]
    loading = next(p for p in phones if p["mac"] == LOADING)
    assert loading["progress"]["total"] == facts["total"] and loading["progress"]["rate"] > 0
    assert all(p["progress"] is None for p in phones if p["state"] in ("stuck", "waiting", "done", "seen"))
