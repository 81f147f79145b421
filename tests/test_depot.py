"""The depot view (deploy/depot/): Debian's promtool checks the shipped files and the metrics page, runs the
alert tests, and a real prometheus with the shipped configuration scrapes three stations' APIs in network
namespaces and sums their phones by state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from appliance import config
from appliance.api import metrics
from appliance.api.app import create_app
from appliance.store import Store
from tests.conftest import needs_root, wait_for
from tests.test_api import populate

REPO = Path(__file__).resolve().parent.parent
DEPOT = REPO / "deploy" / "depot"


def _install_prometheus() -> str | None:
    """Debian's prometheus (prometheus and promtool) when missing; why not, if it cannot be had."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "prometheus/promtool missing and not root to apt-get them (make test installs them)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    made = not policy.exists()
    if made:    # the package would start a Prometheus on the host's 9090: keep it from starting
        policy.write_text("#!/bin/sh\n# written by tests/test_depot.py while installing prometheus\nexit 101\n")
        policy.chmod(0o755)
    try:
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], env=env,
                           capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"installing Debian's prometheus failed: {exc}"
    finally:
        if made:
            policy.unlink(missing_ok=True)
    if shutil.which("promtool") is None:
        return f"installing Debian's prometheus failed: {r.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def promtool() -> str:
    why = _install_prometheus()
    if why:
        pytest.skip(why)
    return shutil.which("promtool") or "promtool"


def run(*cmd: str, cwd: Path | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, input=stdin, capture_output=True, timeout=120)


def depot_copy(tmp_path: Path, targets: str | None = None) -> Path:
    """The shipped depot directory, copied, with targets/stations.yml from the example (or `targets`)."""
    dest = tmp_path / "depot"
    shutil.copytree(DEPOT, dest)
    example = dest / "targets" / "stations.yml.example"
    (dest / "targets" / "stations.yml").write_text(targets if targets is not None else example.read_text())
    return dest


def test_shipped_config_and_rules_pass_promtool(promtool, tmp_path):
    depot = depot_copy(tmp_path)
    r = run(promtool, "check", "config", "prometheus.yml", cwd=depot)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "1 rule files found" in out and "WARNING" not in out, out    # the example targets file was read
    r = run(promtool, "check", "rules", "rules/station.rules.yml", cwd=depot)
    assert r.returncode == 0 and b"5 rules found" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("edit, named", [
    (("station_phone_stuck_longest_seconds >= 600", "station_phone_stuck_longest_seconds >= "), "parse error"),
    (("for: 2m", "for: two minutes"), "not a valid duration"),
    (("expr: station_phone_stuck", "exp: station_phone_stuck"), "field exp not found"),
])
def test_a_rule_file_edited_wrong_is_a_named_error(promtool, tmp_path, edit, named):
    depot = depot_copy(tmp_path)
    rules = depot / "rules" / "station.rules.yml"
    text = rules.read_text()
    assert edit[0] in text
    rules.write_text(text.replace(edit[0], edit[1], 1))
    r = run(promtool, "check", "rules", "rules/station.rules.yml", cwd=depot)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0 and named in out and "station.rules.yml" in out, out
    r = run(promtool, "check", "config", "prometheus.yml", cwd=depot)
    assert r.returncode != 0, (r.stdout + r.stderr).decode()


def test_a_targets_file_edited_wrong_fails_the_config_check(promtool, tmp_path):
    depot = depot_copy(tmp_path, targets='- targets: ["10.10.10.1:8080"]\n  label: {station: bench-1}\n')
    r = run(promtool, "check", "config", "prometheus.yml", cwd=depot)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and b"checking SD file" in out and b"field label not found" in out, out


def test_alert_unit_tests_pass_and_catch_a_changed_threshold(promtool, tmp_path):
    depot = depot_copy(tmp_path)
    r = run(promtool, "test", "rules", "alerts.test.yml", cwd=depot)
    assert r.returncode == 0 and b"SUCCESS" in r.stdout, r.stdout + r.stderr
    rules = depot / "rules" / "station.rules.yml"
    rules.write_text(rules.read_text().replace(">= 600", ">= 1200"))    # 20 minutes: the 10-minute test fails
    r = run(promtool, "test", "rules", "alerts.test.yml", cwd=depot)
    assert r.returncode != 0 and b"PhoneStuck" in r.stdout + r.stderr, r.stdout + r.stderr


def test_metrics_page_passes_promtool_check_metrics(promtool, station_env):
    cfg = config.load(environ=station_env)
    store = Store(cfg.db_path)
    populate(store)
    page = create_app(cfg, store).test_client().get("/metrics").get_data()
    r = run(promtool, "check", "metrics", stdin=page)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    assert b"station_transfer_sent_bytes_total" in page
    # The same check refuses a counter named against the conventions, so a pass above means something.
    bad = b"# HELP station_sent Bytes.\n# TYPE station_sent counter\nstation_sent 1\n"
    assert run(promtool, "check", "metrics", stdin=bad).returncode != 0


def test_sent_bytes_is_a_counter_that_survives_pruning(station_env):
    cfg = config.load(environ=station_env)
    store = Store(cfg.db_path)
    sent = metrics.Sent()
    row = {"proto": "tftp", "client_ip": "10.0.0.11", "file": "a.loads"}
    store.transfers.write([{"key": "old", **row, "bytes": 7000, "result": "complete"},
                           {"key": "t1", **row, "bytes": 100, "result": "running"}])
    sent.update(store, 1.0)                      # the baseline: what was there before the API counted
    store.transfers.write([{"key": "t1", "bytes": 600, "result": "complete"},
                           {"key": "h1", **row, "proto": "http", "file": "b.zip", "bytes": 50, "result": "running"}])
    sent.update(store, 2.0)
    assert sent.snapshot()[1:] == ({"tftp": 500, "http": 50}, {("tftp", "complete"): 1})
    store.transfers.prune(time.time(), keep=1, pause=0)     # the file service prunes all but the newest row
    store.transfers.write([{"key": "h1", "bytes": 80, "result": "timeout"}])
    sent.update(store, 3.0)
    assert sent.snapshot()[1:] == ({"tftp": 500, "http": 80}, {("tftp", "complete"): 1, ("http", "timeout"): 1})
    sent.update(store, 4.0)                      # nothing new: nothing counted twice
    assert sent.snapshot()[1]["http"] == 80


def test_stuck_longest_counts_from_when_the_phone_became_stuck(station_env):
    cfg = config.load(environ=station_env)
    store = Store(cfg.db_path)
    now = time.time()
    store.phones.upsert("001b2c3d4e5f", state="stuck")
    store.events.append([(now - 900, "tracker", "phone.state", "001b2c3d4e5f", {"state": "downloading"}),
                         (now - 700, "tracker", "phone.state", "001b2c3d4e5f", {"state": "stuck"}),
                         (now - 300, "tracker", "phone.state", "001b2c3d4e5f", {"state": "stuck"})])
    store.phones.upsert("00aabbccddee", state="done")
    page = metrics.render(cfg, store, now=now, sent=metrics.Sent()).decode()
    value = next(float(line.split()[1]) for line in page.splitlines()
                 if line.startswith("station_phone_stuck_longest_seconds "))
    assert abs(value - 700) < 1, page
    store.phones.upsert("001b2c3d4e5f", state="done")
    page = metrics.render(cfg, store, now=now, sent=metrics.Sent()).decode()
    assert "station_phone_stuck_longest_seconds 0.0" in page


# -- three stations, one depot ------------------------------------------------------------------------------
SUBNET = "10.81.0"
DEPOT_IP = f"{SUBNET}.100"
# station -> phones by state, written through the store as the recovery hub would
STATIONS = {
    "bench-a": {"done": 2, "downloading": 1, "stuck": 1},
    "bench-b": {"done": 1, "stuck": 2, "waiting": 1},
    "bench-c": {"seen": 3, "rebooting": 1},
}
FLOOD_SCRIPT = r"""
import sys, threading, time, urllib.request
url, threads, each, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + limit
ok, failed = [0], [0]
errors = []
lock = threading.Lock()
def scrape():
    for _ in range(each):
        if time.monotonic() > deadline:
            return
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                good = r.status == 200 and b"station_phones" in r.read()
        except OSError as e:
            good = False
            errors.append(repr(e)[:200])
        with lock:
            (ok if good else failed)[0] += 1
ts = [threading.Thread(target=scrape) for _ in range(threads)]
[t.start() for t in ts]
[t.join(limit + 10) for t in ts]
print(ok[0], failed[0])
print("\n".join(errors[:5]), file=sys.stderr)
"""


def write_phones(state_dir: Path, phones: dict[str, int], seed: int) -> None:
    store = Store(state_dir / "station.db")      # the station's database (the config names lan0, in its namespace)
    n = 0
    for state, count in phones.items():
        for _ in range(count):
            n += 1
            mac = f"001e7a{seed:02x}{n:04x}"
            load = "SCCP45.9-4-2SR4-3S" if state == "done" else "SCCP45.8-3-2S"
            store.phones.upsert(mac, model="CP-7965G", ip=f"10.81.{seed}.{n}", state=state, current_load=load,
                                target_load="SCCP45.9-4-2SR4-3S", plan=["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"])
    store.close()


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.timeout(300)
@needs_root()
def test_prometheus_scrapes_three_stations_and_sums_their_phones(promtool, tmp_path):
    from bench.dhcp_lab import PYTHON, Lab, station_env
    if shutil.which("curl") is None:
        pytest.skip("curl missing (make test installs it)")
    targets = "".join(f'- targets: ["{SUBNET}.{i}:8080"]\n  labels:\n    station: {name}\n'
                      for i, name in enumerate(STATIONS, start=1))
    depot = depot_copy(tmp_path, targets)
    with Lab("dp", subnet=SUBNET) as lab:
        for i, (name, phones) in enumerate(STATIONS.items(), start=1):
            lab.add(f"st{i}", f"{SUBNET}.{i}")
            state = tmp_path / name
            env = station_env(state, API_HOST=f"{SUBNET}.{i}", API_PORT="8080")
            write_phones(state, phones, i)
            log = open(tmp_path / f"{name}.log", "a")
            lab.popen(f"st{i}", PYTHON, "-m", "appliance", "serve", "api", env=env, stdout=log, cwd=str(REPO))
        lab.add("depot", DEPOT_IP)
        prom_log = open(tmp_path / "prometheus.log", "a")
        lab.popen("depot", shutil.which("prometheus") or "prometheus", f"--config.file={depot / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={DEPOT_IP}:9090",
                  stdout=prom_log, cwd=str(depot))

        def query(expr: str) -> dict:
            r = lab.run("depot", "curl", "-s", "--max-time", "5", "-G", "--data-urlencode", f"query={expr}",
                        f"http://{DEPOT_IP}:9090/api/v1/query", timeout=20)
            try:
                return json.loads(r.stdout)
            except ValueError:
                return {"status": "unreachable", "error": r.stdout[-200:] + r.stderr[-200:]}

        def vector(expr: str) -> dict[str, float]:
            doc = query(expr)
            assert doc["status"] == "success", (expr, doc)
            return {"/".join(v["metric"].values()): float(v["value"][1]) for v in doc["data"]["result"]}

        # Scrapes start at a random offset within the 15 s interval; three stations must be up.
        wait_for(lambda: vector('count(up{job="recovery-stations"} == 1)').get("") == 3
                 if query("up")["status"] == "success" else False, 120,
                 f"prometheus scraping all three stations (log: {tmp_path / 'prometheus.log'})", every=1)
        wait_for(lambda: vector("count(station_phones)").get("") == 3 * 7, 60, "every station's phone series")

        want: dict[str, float] = {}
        for phones in STATIONS.values():
            for state, n in phones.items():
                want[state] = want.get(state, 0) + n
        got = {k: v for k, v in vector("sum by (state) (station_phones)").items() if v}
        assert got == want
        per_station = vector('sum by (station) (station_phones{state="stuck"})')
        assert per_station == {"bench-a": 1, "bench-b": 2, "bench-c": 0}
        assert vector("sum by (station) (station_phones_recovered)") == {"bench-a": 2, "bench-b": 1, "bench-c": 0}

        # Every expression on the shipped dashboard is one this Prometheus accepts.
        dashboard = json.loads((DEPOT / "grafana-dashboard.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        assert len(exprs) >= 8
        for expr in exprs:
            doc = query(expr.replace("$station", ".*").replace("$__rate_interval", "1m"))
            assert doc["status"] == "success", (expr, doc)

        # The shipped rules loaded and evaluate without error against real series.
        def rules_evaluated() -> list[dict] | None:
            r = lab.run("depot", "curl", "-s", "--max-time", "5", f"http://{DEPOT_IP}:9090/api/v1/rules")
            try:
                rules = [rule for g in json.loads(r.stdout)["data"]["groups"] for rule in g["rules"]]
            except (ValueError, KeyError):
                return None
            return rules if rules and all(rule.get("lastEvaluation", "").startswith("20") and
                                          not rule["lastEvaluation"].startswith("0001") for rule in rules) else None
        rules = wait_for(rules_evaluated, 60, "the alert rules' first evaluation", every=1)
        assert len(rules) == 5 and all(rule["health"] == "ok" for rule in rules), rules

        # A scrape flood: bounded in count and time, then the API still answers health and Prometheus still scrapes.
        started = time.monotonic()
        flood = lab.run("depot", PYTHON, "-c", FLOOD_SCRIPT, f"http://{SUBNET}.1:8080/metrics", "6", "50", "60",
                        timeout=120)
        ok, failed = (int(x) for x in flood.stdout.split())
        assert (ok, failed) == (300, 0), (flood.stdout, flood.stderr, time.monotonic() - started)
        health = lab.run("depot", "curl", "-s", "--max-time", "5", f"http://{SUBNET}.1:8080/api/v1/health")
        assert "services" in json.loads(health.stdout), health.stdout
        scraped = time.time()
        wait_for(lambda: vector(f'timestamp(up{{station="bench-a"}} == 1) > {scraped}'), 45, "a scrape after the flood")
