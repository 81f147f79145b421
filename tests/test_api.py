"""Status API against a store populated the way the services write it."""
from __future__ import annotations

import csv
import io
import json
import time

import pytest

from appliance import config
from appliance import events as ev
from appliance.api.app import create_app
from appliance.store import Store

TOKEN = "s3cret-token"


def make_cfg(station_env, **extra):
    return config.load(environ={**station_env, **extra})


def with_firmware(station_env) -> None:
    """One complete load, with its term file, for the CP-7945G phones populate() adds: without firmware the
    station cannot do its job and its health is red (appliance/problems.py)."""
    from appliance.firmware import synth

    synth.write_load(station_env["APPLIANCE_TFTP_ROOT"], "SCCP45.9-4-2SR4-3S", 4096, term=True)


def populate(store: Store, now: float | None = None) -> None:
    now = now or time.time()
    for name in ("api", "dhcp", "dns", "tftp"):
        store.services.beat(name, 100, {"counters": {"offers": 3, "acks": 2, "naks": 1}} if name == "dhcp" else {})
    store.phones.upsert("001b2c3d4e5f", model="CP-7945G", ip="10.0.0.11", hostname="<script>alert(1)</script>",
                       vendor_class="Cisco Systems, Inc. IP Phone CP-7945G", load_before="SCCP45.8-3-1S",
                       current_load="SCCP45.9-0-3S", target_load="SIP45.9-4-2SR4-3S",
                       plan=["SCCP45.9-0-3S", "SIP45.9-4-2SR4-3S"], step=1, state="downloading")
    store.phones.upsert("00aabbccddee", model="CP-8845", ip="10.0.0.12", state="done",
                       load_before="sip88xx.10-3-1-20", current_load="sip88xx.14-2-1-0001-22",
                       target_load="sip88xx.14-2-1-0001-22", plan=["sip88xx.14-2-1-0001-22"], step=0)
    store.transfers.write([{"key": "t1", "proto": "tftp", "client_ip": "10.0.0.11", "mac": "001b2c3d4e5f",
                            "file": "SIP45.9-4-2SR4-3S.loads", "bytes": 5000, "total": 20000, "result": "running"},
                           {"key": "t2", "proto": "http", "client_ip": "10.0.0.12", "mac": "00aabbccddee",
                            "file": "SEP00AABBCCDDEE.cnf.xml", "bytes": 900, "total": 900, "result": "complete",
                            "duration": 0.1}])
    with store._db.transaction() as conn:
        conn.execute("INSERT INTO leases(mac, ip, state, expires, hostname, updated) VALUES (?,?,?,?,?,?)",
                     ("001b2c3d4e5f", "10.0.0.11", "bound", now + 3600, "SEP001B2C3D4E5F", now))
    store.events.add("dhcp", ev.DHCP_ACK, "001b2c3d4e5f", ip="10.0.0.11")
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "clear", "servers": []})


@pytest.fixture
def client(station_env):
    with_firmware(station_env)
    cfg = make_cfg(station_env, APPLIANCE_API_TOKEN=TOKEN)
    store = Store(cfg.db_path)
    populate(store)
    app = create_app(cfg, store)
    return app.test_client(), store


def test_health_green_then_503_when_a_service_is_stale(client):
    c, store = client
    r = c.get("/api/v1/health")
    assert r.status_code == 200 and r.json["ok"]
    assert {s["name"] for s in r.json["services"]} == {"api", "dhcp", "dns", "tftp"}
    with store._db.transaction() as conn:
        conn.execute("UPDATE services SET heartbeat = heartbeat - 60 WHERE name = 'tftp'")
    store.services.error("tftp", "cannot bind udp/69: permission denied")
    r = c.get("/api/v1/health")
    assert r.status_code == 503 and not r.json["ok"]
    tftp = next(s for s in r.json["services"] if s["name"] == "tftp")
    assert tftp["status"] == "stale" and "permission denied" in tftp["last_error"]


def test_health_down_when_service_never_started(station_env):
    cfg = make_cfg(station_env)
    store = Store(cfg.db_path)
    store.services.beat("api", 1)
    r = create_app(cfg, store).test_client().get("/api/v1/health")
    assert r.status_code == 503
    assert {s["name"]: s["status"] for s in r.json["services"]}["dhcp"] == "down"


def test_disabled_services_are_not_required(station_env):
    with_firmware(station_env)
    cfg = make_cfg(station_env, APPLIANCE_DHCP_ENABLED="false", APPLIANCE_DNS_ENABLED="false")
    store = Store(cfg.db_path)
    store.services.beat("api", 1)
    store.services.beat("tftp", 1)
    assert create_app(cfg, store).test_client().get("/api/v1/health").status_code == 200


def test_phones_and_phone_detail(client):
    c, _ = client
    phones = c.get("/api/v1/phones").json["phones"]
    assert [p["mac"] for p in phones] == ["001b2c3d4e5f", "00aabbccddee"]
    first = phones[0]
    assert first["steps"] == 2 and first["step"] == 1 and first["transfer"]["bytes"] == 5000
    assert first["state_words"] == "downloading firmware"
    d = c.get("/api/v1/phones/00:1B:2C:3D:4E:5F").json
    assert d["mac"] == "001b2c3d4e5f" and d["timeline"][0]["kind"] == "dhcp.ack"
    assert d["transfers"][0]["file"].endswith(".loads")
    assert c.get("/api/v1/phones/001122334455").status_code == 404
    assert c.get("/api/v1/phones/nonsense").status_code == 400


def test_leases_transfers_filters(client):
    c, _ = client
    assert c.get("/api/v1/leases").json["leases"][0]["ip"] == "10.0.0.11"
    assert len(c.get("/api/v1/transfers").json["transfers"]) == 2
    running = c.get("/api/v1/transfers?running=true").json["transfers"]
    assert [t["key"] if "key" in t else t["file"] for t in running] == ["SIP45.9-4-2SR4-3S.loads"]
    assert len(c.get("/api/v1/transfers?mac=00aabbccddee").json["transfers"]) == 1
    assert c.get("/api/v1/transfers?limit=0").status_code == 400
    assert c.get("/api/v1/transfers?running=maybe").status_code == 400


def test_report_json_and_csv(client):
    c, _ = client
    rows = c.get("/api/v1/report").json["phones"]
    by_mac = {r["mac"]: r for r in rows}
    assert by_mac["00aabbccddee"]["result"] == "recovered"
    assert by_mac["001b2c3d4e5f"]["load_before"] == "SCCP45.8-3-1S"
    r = c.get("/api/v1/report?format=csv")
    assert r.mimetype == "text/csv"
    parsed = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert {p["mac"] for p in parsed} == set(by_mac) and parsed[0]["first_seen"].endswith("Z")
    assert c.get("/api/v1/report?format=xml").status_code == 400


def test_writes_need_token(client):
    c, store = client
    assert c.post("/api/v1/phones/001b2c3d4e5f/retry").status_code == 401
    assert c.post("/api/v1/phones/001b2c3d4e5f/retry", headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = c.post("/api/v1/phones/001b2c3d4e5f/retry", headers=auth)
    assert r.status_code == 202
    assert store.events.after(0)[-1]["kind"] == ev.PHONE_RETRY
    assert c.post("/api/v1/phones/001122334455/retry", headers=auth).status_code == 404
    assert c.delete("/api/v1/leases/001b2c3d4e5f").status_code == 401
    assert c.delete("/api/v1/leases/001b2c3d4e5f", headers=auth).status_code == 202
    forget = store.events.after(0)[-1]
    assert (forget["kind"], forget["mac"]) == (ev.LEASE_FORGET, "001b2c3d4e5f")
    assert len(store.leases.all()) == 1     # the API only asks: DHCP, the leases' owner, deletes the row
    assert c.delete("/api/v1/leases/0011223344ff", headers=auth).status_code == 404
    assert c.post("/api/v1/firmware/rescan", headers=auth).status_code == 202


def test_writes_off_without_token(station_env):
    cfg = make_cfg(station_env)
    store = Store(cfg.db_path)
    populate(store)
    c = create_app(cfg, store).test_client()
    r = c.post("/api/v1/phones/001b2c3d4e5f/retry", headers={"Authorization": "Bearer "})
    assert r.status_code == 403 and "token" in r.json["error"]
    assert c.delete("/api/v1/leases/001b2c3d4e5f").status_code == 403
    assert len(store.leases.all()) == 1


def test_metrics(client):
    c, store = client
    store.kv.put("dhcp.guard", {"mode": "refuse", "status": "refusing", "servers": ["10.0.0.99"]})
    text = c.get("/metrics").get_data(as_text=True)
    assert 'station_phones{state="downloading"} 1.0' in text
    assert 'station_phones{state="stuck"} 0.0' in text       # every state, so a depot's sums see zeros
    assert 'station_dhcp_messages_total{kind="offers"} 3.0' in text
    assert 'station_dhcp_messages_total{kind="naks"} 1.0' in text
    assert 'station_dhcp_guard{status="refusing"} 1.0' in text
    assert 'station_transfers_running{proto="tftp"} 1.0' in text


def test_sse_stream_is_bounded_and_resumes(client):
    c, store = client
    store.events.add("tracker", ev.PHONE_STATE, "001b2c3d4e5f", state="done")
    r = c.get("/api/v1/events?after=0&duration=1")
    body = r.get_data(as_text=True)
    assert r.mimetype == "text/event-stream"
    ids = [int(line[4:]) for line in body.splitlines() if line.startswith("id: ")]
    assert len(ids) == 2 and "event: phone.state" in body
    r = c.get("/api/v1/events?duration=0", headers={"Last-Event-ID": str(ids[0])})
    assert [int(line[4:]) for line in r.get_data(as_text=True).splitlines() if line.startswith("id: ")] == ids[1:]
    data = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert data[-1]["data"]["state"] == "done"


def test_dashboard_and_openapi_served(client):
    c, _ = client
    r = c.get("/")
    assert r.status_code == 200 and "Content-Security-Policy" in r.headers
    assert c.get("/static/dashboard.js").status_code == 200
    assert c.get("/static/../app.py").status_code == 404
    spec = c.get("/api/v1/openapi.json").json
    assert "/api/v1/phones/{mac}" in spec["paths"]
