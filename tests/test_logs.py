"""One log format across the station, each line once (issue 25 item 5).

Units: appliance/logs.py (format and level from the environment, gunicorn's lines, cleaned arguments of a
dict subclass) and supervise.sh's `say`/`relay`, which must write the same two shapes.  Real runs: the station
under `appliance run` on loopback (text), and in a namespace with model phones (JSON): every line parses,
none appears twice, each phone event is said once, and the dashboard URL has the interface's address.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance import logs
from tests.conftest import REPO, needs_root, needs_tool, wait_for
from tests.test_supervisor import all_up, station_env_for

sys.path.insert(0, str(REPO))
from bench.dhcp_lab import PYTHON, Lab, station_env  # noqa: E402

HELPER = REPO / "appliance" / "supervise.sh"
TEXT_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +(\S+) +(.*)")
CONTINUATION = re.compile(r"  \| .*")        # a traceback's lines under its record (HumanFormatter)


def text_ok(line: str) -> bool:
    return bool(TEXT_LINE.fullmatch(line) or CONTINUATION.fullmatch(line))


def json_ok(line: str) -> dict | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) - {"exc"} != {"ts", "level", "service", "msg"}:
        return None
    return doc


# ---- units ------------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def root_logging_restored():
    """logs.setup points the root logger at this test's captured stdout: put back what was there."""
    root = logging.getLogger()
    handlers, level, fmt = root.handlers[:], root.level, logs._format
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._format = fmt
    sys.excepthook, threading.excepthook = hooks


def test_a_bad_format_or_level_is_said_and_the_default_used(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_LOG_FORMAT", "xml")
    logs.setup(None, "loud")
    assert logs.current() == ("text", "INFO")
    out = capsys.readouterr().out
    assert "log format 'xml' is not text or json: text used" in out
    assert "log level 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL: INFO used" in out


def test_the_environment_sets_the_format_of_every_process(station_env):
    """APPLIANCE_LOG_FORMAT=json (a container's environment) without --log-format: every process of a run is
    JSON, supervise.sh's last line too (the DNS port held, so the run stops at once)."""
    env = {**station_env_for(station_env), "APPLIANCE_LOG_FORMAT": "json"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", int(env["APPLIANCE_DNS_PORT"])))
        proc = subprocess.Popen([PYTHON, "-m", "appliance", "run"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(120)
        finally:
            out = stop(proc)
    lines = out.splitlines()
    assert proc.returncode == 3 and lines, out
    assert [line for line in lines if not json_ok(line)] == [], out
    last = json.loads(lines[-1])
    assert (last["level"], last["service"]) == ("error", "supervisor"), last
    assert last["msg"].startswith(f"station stopped: dns cannot start: port {env['APPLIANCE_DNS_PORT']}/udp is held "
                                  f"by python"), last
    assert {"supervisor", "dns"} <= {json.loads(line)["service"] for line in lines}


def test_run_into_a_file_keeps_every_line(station_env, tmp_path):
    """`appliance run > station.log`: the services' lines (supervisord reopens /dev/stdout, appending) and the
    wrapper's last line (this process's descriptor) all land in the file, none written over another."""
    env = station_env_for(station_env)
    path = tmp_path / "station.log"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held, open(path, "w") as log:
        held.bind(("127.0.0.1", int(env["APPLIANCE_DNS_PORT"])))
        proc = subprocess.Popen([PYTHON, "-m", "appliance", "run"], env=env, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert proc.wait(120) == 3
        finally:
            stop(proc)
    lines = path.read_text().splitlines()
    assert [line for line in lines if not text_ok(line)] == [], lines
    assert "ERROR   supervisor station stopped: dns cannot start: port" in lines[-1], lines
    assert sum("dns cannot start: port" in line for line in lines) == 2, lines      # the service's, the last


def test_an_uncaught_exception_is_logged_in_the_format(capsys):
    logs.setup("text", "INFO")
    thread = threading.Thread(target=lambda: 1 / 0, name="poller")
    thread.start()
    thread.join()
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d CRITICAL appliance  stopped by an error in thread poller: "
                        r"ZeroDivisionError: division by zero", out[0]), out
    assert out[1:] and all(CONTINUATION.fullmatch(line) for line in out[1:]), out


def test_setup_takes_format_and_level_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_LOG_FORMAT", "json")
    monkeypatch.setenv("APPLIANCE_LOG_LEVEL", "warning")
    try:
        logs.setup()
        logging.getLogger("dhcp").info("hidden")
        logging.getLogger("dhcp").warning("shown %s", "a\x1b[2Jb")
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 1 and json_ok(out[0]) and json.loads(out[0])["msg"] == "shown a?[2Jb"
        logs.setup("text", "INFO")                     # an explicit choice wins over the environment
        logging.getLogger("dhcp").info("plain")
        (line,) = capsys.readouterr().out.splitlines()
        assert TEXT_LINE.fullmatch(line) and line.endswith("INFO    dhcp       plain")
    finally:
        monkeypatch.delenv("APPLIANCE_LOG_FORMAT")


class Atoms(dict):
    """Like gunicorn's SafeAtoms: a dict that answers a missing key."""

    def __getitem__(self, key):
        return super().__getitem__(key) if key in self else "-"


def test_clean_args_keeps_a_dict_subclass_and_cleans_its_values():
    record = logging.LogRecord("api", logging.INFO, __file__, 1, '%(r)s %(missing)s', (), None)
    record.args = Atoms(r="GET /\x1b[31mx HTTP/1.1")
    logs.CleanArgs().filter(record)
    assert isinstance(record.args, Atoms) and record.getMessage() == "GET /?[31mx HTTP/1.1 -"


def test_gunicorn_lines_are_the_stations(capsys):
    from gunicorn.config import Config
    logs.setup("json", "INFO")
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("errorlog", "-")
    logger = logs.gunicorn_logger("api")(cfg)
    try:
        logger.info("Listening at: %s", "http://0.0.0.0:8080")
        logger.access_log.info('%(h)s "%(r)s"', Atoms(h="10.0.0.9", r="GET /\x1b]0;owned\x07 HTTP/1.1"))
        err = capsys.readouterr()
        docs = [json_ok(line) for line in (err.out + err.err).splitlines()]
        assert sorted((d["service"], d["msg"]) for d in docs if d) == [      # stderr and stdout: either order
            ("api", '10.0.0.9 "GET /?]0;owned? HTTP/1.1"'), ("api", "Listening at: http://0.0.0.0:8080")]
        assert all(docs)
    finally:
        for log in (logger.error_log, logger.access_log):
            log.handlers.clear()           # they hold this test's captured streams


def sh(*args: str, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(HELPER), *args], input=stdin, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


LLDPD = ("2026-12-07T06:12:03 [INFO/main] protocol LLDP enabled\n"
         "06:12:03 INFO    neighbours starting lldpd\n"
         '2026-12-07T06:12:04 [WARN/lldpctl] a "quoted" \\ word\n')


def test_relay_rewrites_lldpd_lines_and_keeps_the_exit_status():
    got = sh("relay", "lldpd", "/bin/sh", "-c", 'printf "%s" "$0"; exit 7', LLDPD)
    assert got.returncode == 7
    out = got.stdout.splitlines()
    assert out[0] == "06:12:03 INFO    neighbours starting lldpd"          # already the station's: as it is
    assert TEXT_LINE.fullmatch(out[1]) and out[1].endswith(' WARNING lldpd      a "quoted" \\ word')
    assert len(out) == 2                                                  # lldpd's INFO chatter is DEBUG
    got = sh("relay", "lldpd", "/bin/sh", "-c", 'printf "%s" "$0"', LLDPD,
             env={"APPLIANCE_LOG_FORMAT": "json", "APPLIANCE_LOG_LEVEL": "DEBUG"})
    assert got.returncode == 0
    docs = [json_ok(line) for line in got.stdout.splitlines()]
    assert docs[0] and docs[0]["level"] == "debug" and docs[0]["msg"] == "protocol LLDP enabled"
    assert docs[2] and (docs[2]["level"], docs[2]["service"], docs[2]["msg"]) == ("warning", "lldpd",
                                                                                  'a "quoted" \\ word')
    assert abs(docs[2]["ts"] - time.time()) < 60


# ---- real runs --------------------------------------------------------------------------------------------------
def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.stdout.read().decode(errors="replace") if proc.stdout else ""


def test_a_station_run_logs_one_text_format_each_line_once(station_env, tmp_path):
    env = {**station_env_for(station_env), "APPLIANCE_API_HOST": "0.0.0.0"}
    api = env["APPLIANCE_API_PORT"]
    proc = subprocess.Popen([PYTHON, "-m", "appliance", "run"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: all_up(env), 90, "every service up")
        sup = tmp_path / "state" / "supervisord.log"        # supervisord's own lines: in its file
        wait_for(lambda: all(f"success: {n} entered RUNNING".encode() in sup.read_bytes()
                             for n in ("dhcp", "tftp", "dns", "api")), 30, "supervisor to see them running")
        time.sleep(1)                                        # the listener says so
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{api}/"], timeout=10, check=False)
    finally:
        out = stop(proc)
    lines = out.splitlines()
    assert proc.returncode == 0, out
    assert [line for line in lines if not text_ok(line)] == [], out
    assert len(lines) == len(set(lines)), "a line appears twice:\n" + out
    services = {m.group(2) for line in lines if (m := TEXT_LINE.fullmatch(line))}
    assert {"supervisor", "dhcp", "tftp", "dns", "api"} <= services, services
    for name in ("dhcp", "tftp", "dns", "api"):
        assert sum(bool(re.search(rf"INFO +supervisor +{name} running \(pid \d+\)$", line)) for line in lines) == 1
        # The last service to stop may outlive the listener that would say so: at most once.
        assert sum(line.endswith(f"INFO    supervisor {name} stopped") for line in lines) <= 1, out
    # The dashboard's address is the interface's (lo: 127.0.0.1), not the wildcard it listens on.
    assert [line.split(" on ", 1)[1] for line in lines if "dashboard and status API on" in line] == \
        [f"http://127.0.0.1:{api}/ (writes disabled: no token)"]
    # supervisord's own lines went to its file, not the terminal.
    assert not [line for line in lines if "entered RUNNING state" in line or "spawned:" in line]


STATION = "10.76.0.1"
STONE, TARGET, TARGET_75 = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S", "SCCP75.9-4-2SR3-3S"


def phones(state: Path) -> dict[str, str]:
    try:
        conn = sqlite3.connect(state / "station.db", timeout=10)
        try:
            return dict(conn.execute("SELECT mac, state FROM phones"))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


@pytest.mark.netns
@needs_root()
@needs_tool("ip", "udhcpc", "curl")
def test_a_station_run_with_phones_logs_json_each_event_once(tmp_path):
    """The station under `appliance --log-format json run` in a namespace; model phones (tools.phonesim) in
    another: a 7965 on 8.3(2) through the stone, a 7975 whose library has no stone (stuck), and busybox
    udhcpc as a laptop.  Every line of the run is one JSON record, none twice; each phone event once."""
    from appliance.firmware import synth
    with Lab("lg", subnet="10.76.0") as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        state = tmp_path / "state"
        for load in (STONE, TARGET, TARGET_75):
            synth.write_load(state / "firmware", load, size_bytes=30000, components=2)
        env = station_env(state, DHCP_POOL_START="10.76.1.1", DHCP_POOL_END="10.76.1.250", DHCP_GUARD="off")
        station = lab.popen("srv", PYTHON, "-m", "appliance", "--log-format", "json", "run", env=env,
                            stdout=subprocess.PIPE, cwd=str(REPO))
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(station.stdout), daemon=True)
        reader.start()
        try:
            wait_for(lambda: any('"tftp running' in line for line in out), 90, "the file service up")
            runs = [("--model", "CP-7965G", "--load", "SCCP45.8-3-2S", "--first-mac", "001e7a650000"),
                    ("--model", "CP-7975G", "--load", "SCCP75.8-3-2S", "--first-mac", "001e7a750000")]
            sims = [lab.popen("ph", PYTHON, "-m", "appliance", "simulate", "--interface", "lan0", *args, "--no-web",
                              "--deadline", "60", cwd=str(REPO)) for args in runs]
            laptop = lab.run("ph", "udhcpc", "-i", "lan0", "-f", "-q", "-n", "-t", "4", "-T", "1", "-s", "/bin/true",
                             timeout=30)
            assert laptop.returncode == 0, laptop.stderr
            for sim in sims:
                sim.wait(120)
            wait_for(lambda: phones(state).get("001e7a650001") == "done"
                     and phones(state).get("001e7a750001") == "stuck", 60, "one phone done, one stuck")
            assert subprocess.run(["ip", "netns", "exec", lab.members["srv"], "curl", "-sf", "-o", "/dev/null",
                                   f"http://{STATION}:8080/"], timeout=20).returncode == 0
        finally:
            lab.kill(station, wait=60)
            reader.join(10)
    lines = [line.rstrip("\n") for line in out]
    bad = [line for line in lines if not json_ok(line)]
    assert bad == [], "\n".join(bad)
    assert len(lines) == len(set(lines)), "a line appears twice"
    docs = [json.loads(line) for line in lines]
    said = [d["msg"] for d in docs if d["service"] == "recovery" and d["level"] == "info"]
    p65 = [m for m in said if m.startswith("phone 001e7a650001 ")]
    leased = [m for m in p65 if " leased " in m]
    assert len(leased) == 1 and re.fullmatch(r"phone 001e7a650001 leased 10\.76\.1\.\d+ \(CP-7965G\)", leased[0]), p65
    for words in (f"plan: {STONE} (stepping stone), then {TARGET} (target)", f"downloading: {STONE}.loads",
                  f"downloading: {TARGET}.loads", f"installed {STONE}", f"installed {TARGET}", f"done: on {TARGET}"):
        assert sum(m == f"phone 001e7a650001 {words}" for m in p65) == 1, (words, p65)
    rates = [m for m in p65 if " downloaded " in m]
    assert len(rates) == 2 and all(re.fullmatch(r"phone 001e7a650001 downloaded SCCP45\.\S+: \d+ files, [\d.]+ k?B "
                                                 r"in [\d.]+ s \([\d.]+ [kM]?B/s\)", m) for m in rates), rates
    stuck = [m for m in said if m.startswith("phone 001e7a750001 stuck: ")]
    assert len(stuck) == 1 and len(stuck[0]) > len("phone 001e7a750001 stuck: ") + 20, said
    assert all(not m.startswith("phone ") or m.split()[1] in ("001e7a650001", "001e7a750001") for m in said), said
    api = [d["msg"] for d in docs if d["service"] == "api" and "dashboard and status API on" in d["msg"]]
    assert api == [f"dashboard and status API on http://{STATION}:8080/ (writes disabled: no token)"], api
    assert {"supervisor", "dhcp", "tftp", "dns", "api", "recovery"} <= {d["service"] for d in docs}
