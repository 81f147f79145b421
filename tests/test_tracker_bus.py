"""The tracker speaks the real bus: kinds from appliance.events, phone.state data the API shows, retry, option 60, web."""
import http.server
import threading
import time

from appliance import events as E
from appliance.recovery.tracker import Tracker, TRUST_WAIT_S
from appliance.recovery.webpoll import WebPoller, parse
from tests.test_config import run_check, write

MAC, IP = "001122334455", "10.0.0.5"
PLAN = ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"]


def test_phone_state_carries_step_and_uses_bus_kinds():
    t = Tracker(lambda p: [s for s in PLAN if p.current is None or s > p.current])
    out = t.feed({"kind": E.DHCP_ACK, "ts": 0, "mac": MAC, "ip": IP, "model": "CP-7965G"})
    assert out[0]["kind"] == E.PHONE_STATE == "phone.state"
    assert {"state", "step", "steps", "load", "diagnosis"} <= set(out[0])
    out = t.feed({"kind": E.FILE_DONE, "ts": 1, "ip": IP, "file": f"SEP{MAC.upper()}.cnf.xml"})
    assert out[0]["state"] == "configured" and (out[0]["step"], out[0]["steps"]) == (1, 2)
    t.feed({"kind": E.FILE_DONE, "ts": 2, "ip": IP, "file": PLAN[0] + ".loads"})
    t.feed({"kind": E.FILE_DONE, "ts": 3, "ip": IP, "file": "apps45.8-5-2TH1-9.sbn"})
    out = t.feed({"kind": E.DHCP_ACK, "ts": 9, "mac": MAC, "ip": IP, "model": "CP-7965G"})
    loads = [o for o in out if o["kind"] == E.PHONE_LOAD]
    assert loads == [{"kind": "phone.load", "source": "tracker", "ts": 9, "mac": MAC, "load": PLAN[0], "how": "step"}]
    assert out[-1]["load"] == PLAN[0] and out[-1]["steps"] == 1
    assert t.feed({"kind": "FILE_DONE", "ts": 10, "ip": IP, "file": "x"}) == []


def test_retry_restarts_a_stuck_phone():
    t = Tracker(lambda p: list(PLAN), lambda p: "")
    t.feed({"kind": E.DHCP_ACK, "ts": 0, "mac": MAC, "ip": IP, "model": "7965"})
    t.feed({"kind": E.FILE_NOT_FOUND, "ts": 1, "ip": IP, "file": PLAN[0] + ".loads"})
    assert t.phones[MAC].state == "stuck"
    out = t.feed({"kind": E.PHONE_RETRY, "ts": 2, "mac": MAC, "by": "10.0.0.9"})
    p = t.phones[MAC]
    assert p.state == "seen" and p.diagnosis == "" and p.plan == PLAN and out[0]["diagnosis"] is None
    assert t.feed({"kind": E.PHONE_RETRY, "ts": 3, "mac": "ffffffffffff"}) == []


def test_trust_list_diagnosis_names_the_models_reset_keys():
    from appliance.firmware.models import by_name
    t = Tracker(lambda p: list(PLAN), lambda p: "", lambda m: by_name(m).reset)
    t.feed({"kind": E.DHCP_ACK, "ts": 0, "mac": MAC, "ip": IP, "model": "CP-7965G"})
    t.feed({"kind": E.FILE_NOT_FOUND, "ts": 1, "ip": IP, "file": f"SEP{MAC.upper()}.cnf.xml.sgn"})
    t.tick(1 + TRUST_WAIT_S + 1)
    p = t.phones[MAC]
    assert p.state == "stuck" and "trust list" in p.diagnosis and "123456789*0#" in p.diagnosis


def test_7940_option60_gaining_a_model_means_the_load_took():
    t = Tracker(lambda p: [s for s in ["P00308010100", "P00308010200"] if p.current is None or s > p.current])
    old, new = "Cisco Systems, Inc. IP Phone\x00", "Cisco Systems, Inc. IP Phone CP-7940G\x00"
    t.feed({"kind": E.DHCP_ACK, "ts": 0, "mac": MAC, "ip": IP, "model": "CP-7940G", "vendor_class": old})
    t.feed({"kind": E.FILE_DONE, "ts": 1, "ip": IP, "file": "OS79XX.TXT"})
    t.feed({"kind": E.FILE_DONE, "ts": 2, "ip": IP, "file": "P00308010100.loads"})
    out = t.feed({"kind": E.DHCP_DISCOVER, "ts": 9, "mac": MAC, "model": "CP-7940G", "vendor_class": new})
    assert [o["how"] for o in out if o["kind"] == E.PHONE_LOAD] == ["option60"]
    assert t.phones[MAC].current == "P00308010100"


class _Page(http.server.BaseHTTPRequestHandler):
    body = b""
    release = threading.Event()      # the page answers once the test lets it (a poll stays pending till then)

    def do_GET(self):
        self.release.wait(10)
        if self.path != "/DeviceInformationX":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


def test_web_poller_reads_device_information_from_a_real_http_server():
    _Page.body = (b"<?xml version='1.0'?><DeviceInformation><MACAddress>001122334455</MACAddress>"
                  b"<appLoadID>apps45.8-5-2TH1-9</appLoadID><versionID>SCCP45.8-5-2S</versionID>"
                  b"<modelNumber>CP-7965G</modelNumber></DeviceInformation>")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    web = WebPoller(port=srv.server_address[1])
    _Page.release.clear()
    try:
        assert web.poll(MAC, "127.0.0.1") and not web.poll(MAC, "127.0.0.1")   # one poll per phone at a time
        _Page.release.set()
        deadline, got = time.monotonic() + 10, []
        while not got and time.monotonic() < deadline:
            got = web.drain()
            time.sleep(0.05)
        assert got == [(MAC, {"apploadid": "apps45.8-5-2TH1-9", "versionid": "SCCP45.8-5-2S", "modelnumber": "CP-7965G"})]
    finally:
        web.close()
        srv.shutdown()
    assert parse(b"<html>not a phone</html>") == {} and parse(b"\xff" * 100) == {}


def test_bad_user_rule_exits_2_naming_the_key(tmp_path, station_env):
    for body, key in [('via_min = "8.3(3)"\nvia_max = "eight"\nmodels = ["7965"]\n', "via_max"),
                      ('via_min = "8.3(3)"\nvia_max = "8.5(2)"\nmodels = ["7965"]\nbefroe = "9.0(1)"\n', "befroe"),
                      ('via_min = "8.3(3)"\nvia_max = "8.5(2)"\nmodels = []\n', "models"),
                      ('via_min = "8.3(3)"\nvia_max = "8.5(2)"\nmodels = ["7965"]\nprotocols = ["skinny"]\n', "protocols")]:
        path = write(tmp_path, "[[upgrade.rules]]\n" + body)
        result = run_check({**station_env, "APPLIANCE_CONFIG": str(path)})
        assert result.returncode == 2, result.stderr
        assert "[upgrade] rules[0]." + key in result.stderr, result.stderr
    good = write(tmp_path, '[[upgrade.rules]]\nmodels = ["7965"]\nvia_min = "SCCP45.8-3-3S"\nvia_max = "8.5(2)"\n'
                           'protocols = ["sccp"]\n')
    assert run_check({**station_env, "APPLIANCE_CONFIG": str(good)}).returncode == 0


def test_trust_list_phone_that_comes_back_is_stuck_at_once():
    t = Tracker(lambda p: list(PLAN))
    t.feed({"kind": E.DHCP_ACK, "ts": 0, "mac": MAC, "ip": IP, "model": "CP-7965G"})
    t.feed({"kind": E.FILE_NOT_FOUND, "ts": 1, "ip": IP, "file": f"SEP{MAC.upper()}.cnf.xml.sgn"})
    t.feed({"kind": E.DHCP_ACK, "ts": 5, "mac": MAC, "ip": IP, "model": "CP-7965G"})
    assert t.phones[MAC].state == "stuck" and "trust list" in t.phones[MAC].diagnosis
