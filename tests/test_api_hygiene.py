"""Strings phones and clients control never carry a control or bidi character to a terminal, a CSV cell, a log
line or the dashboard, and never make a spreadsheet formula (issue 24 item 7).

The hostile strings are the ones found on the bench: CSI as one C1 character (U+009B, "\\x9b2J" clears a VT220's
screen), ESC sequences, RIGHT-TO-LEFT OVERRIDE (U+202E) that turns "gpj.exe" into "exe.jpg", a newline forging a
second line, and a leading "=" for a spreadsheet.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys

import pytest

from appliance import config, logs, text
from appliance import events as ev
from appliance.api import views
from appliance.api.app import create_app
from appliance.store import Store
from tests.test_api import TOKEN, make_cfg, populate

MAC = "001b2c3d4e5f"
HOSTILE = "SEP\x9b2J\u202egpj.exe\x1b]0;pwned\x07\nforged line\u2066x\u200f\u061c"
UNSAFE = [chr(c) for c in (*range(0x00, 0x20), *range(0x7f, 0xa0))] + [
    "\u061c", "\u200e", "\u200f", "\u2028", "\u2029", *map(chr, range(0x202a, 0x202f)), *map(chr, range(0x2066, 0x206a))]


def _safe(s: str) -> bool:
    return not any(c in s for c in UNSAFE)


def _safe_but_lines(s: str) -> bool:
    return _safe(s.replace("\n", ""))


# ---- the pure module ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("char", UNSAFE)
def test_every_control_and_bidi_character_is_replaced(char):
    assert text.clean(f"a{char}b") == "a?b"


def test_plain_text_and_other_unicode_stay_as_they_are():
    assert text.clean("SEP001B2C3D4E5F.cnf.xml") == "SEP001B2C3D4E5F.cnf.xml"
    assert text.clean("Téléphone 7965 — ☎") == "Téléphone 7965 — ☎"


def test_length_is_bounded_and_marked():
    out = text.clean("x" * 10_000, 50)
    assert len(out) == 50 and out.endswith("...")
    assert text.clean("x" * 50, 50) == "x" * 50


@pytest.mark.parametrize("value,cell", [("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"),
                                         ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'?x"),
                                         ("\r=1", "'?=1"), ("SCCP45.8-5-2S", "SCCP45.8-5-2S"), (12.5, 12.5),
                                         (None, None)])
def test_csv_cells_never_start_a_formula(value, cell):
    assert text.csv_cell(value) == cell


def test_nested_data_is_cleaned_keys_too():
    got = text.cleaned({"file\x1b": [HOSTILE, {"x": "\u202e"}], "n": 3, "ok": True})
    assert got == {"file?": [text.clean(HOSTILE), {"x": "?"}], "n": 3, "ok": True}


# ---- the sinks -----------------------------------------------------------------------------------------------
def _hostile_store(store: Store) -> None:
    populate(store)
    store.phones.upsert(MAC, hostname=HOSTILE, model="=cmd|' /C calc'!A0", diagnosis=f"asked for {HOSTILE}: missing",
                        load_before="+SUM(1)", vendor_class=HOSTILE)
    store.transfers.write([{"key": "h1", "proto": "http", "client_ip": "10.0.0.11", "mac": MAC, "file": HOSTILE,
                            "result": "running", "bytes": 1, "total": 9}])
    store.events.add("http", ev.FILE_NOT_FOUND, MAC, ip="10.0.0.11", file=HOSTILE, proto="http",
                     **{HOSTILE: [HOSTILE]})
    store.services.error("tftp", f"request for {HOSTILE} failed")


def test_api_views_serve_no_control_or_bidi_character(station_env):
    cfg = make_cfg(station_env, APPLIANCE_API_TOKEN=TOKEN)
    store = Store(cfg.db_path)
    _hostile_store(store)
    c = create_app(cfg, store).test_client()
    for path in ("/api/v1/phones", f"/api/v1/phones/{MAC}", "/api/v1/transfers", "/api/v1/leases",
                 "/api/v1/report?format=json"):
        r = c.get(path)
        assert r.status_code == 200, path
        body = json.dumps(r.json, ensure_ascii=False)
        assert _safe(body), (path, body[:300])
        assert "gpj.exe" in body or path == "/api/v1/leases", path          # cleaned, not dropped
    doc = c.get(f"/api/v1/phones/{MAC}").json
    assert doc["hostname"] == text.clean(HOSTILE) and doc["transfer"]["file"] == text.clean(HOSTILE)
    assert any(e["data"].get("file") == text.clean(HOSTILE) for e in doc["timeline"])
    csv_body = c.get("/api/v1/report?format=csv").get_data(as_text=True)
    assert _safe_but_lines(csv_body)
    row = next(r for r in csv.DictReader(io.StringIO(csv_body)) if r["mac"] == MAC)
    assert row["model"].startswith("'=") and row["load_before"] == "'+SUM(1)"


def test_views_clean_the_fields_a_phone_controls():
    row = {"mac": MAC, "first_seen": 1.0, "last_seen": 2.0, "hostname": HOSTILE, "diagnosis": "d" * 5000,
           "plan": [HOSTILE], "state": "seen"}
    got = views.phone(row)
    assert got["hostname"] == text.clean(HOSTILE) and got["plan"] == [text.clean(HOSTILE)]
    assert len(got["diagnosis"]) == views.MAX_DIAGNOSIS
    assert views.event({"id": 1, "ts": 1.0, "source": "http", "kind": "file.request", "mac": MAC,
                        "data": json.dumps({"file": HOSTILE})})["data"] == {"file": text.clean(HOSTILE)}


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=60)


def test_status_and_report_print_no_control_and_escape_formulas(station_env):
    store = Store(config.load(environ=station_env).db_path)
    _hostile_store(store)
    status = _run(station_env, "status")
    assert "gpj.exe" in status.stdout and "last error: request for SEP?2J?gpj.exe" in status.stdout, status.stdout
    assert _safe_but_lines(status.stdout) and "forged line" not in status.stdout.splitlines()[0]
    assert not any(line.startswith("forged line") for line in status.stdout.splitlines())
    assert _safe_but_lines(_run(station_env, "status", "--json").stdout)
    report = _run(station_env, "report")
    assert report.returncode == 0, report.stderr
    assert _safe_but_lines(report.stdout)
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert len(rows) == 2
    row = next(r for r in rows if r["mac"] == MAC)
    assert row["model"] == "'=cmd|' /C calc'!A0" and row["load_before"] == "'+SUM(1)"
    assert row["diagnosis"] == text.clean(f"asked for {HOSTILE}: missing")
    assert _safe_but_lines(_run(station_env, "report", "--format", "json").stdout)


def test_log_lines_carry_no_control_from_an_argument(capsys):
    logs.setup("text", "INFO")
    try:
        log = logging.getLogger("hygiene-test")
        log.warning("GET %s from %s: %d bytes, %.1f s, %r", HOSTILE, "10.0.0.11", 12, 0.5, ValueError(HOSTILE))
        try:
            raise OSError(HOSTILE)
        except OSError:
            log.exception("failed on %s", HOSTILE)
        logs.setup("json", "INFO")
        logging.getLogger("hygiene-test").warning("GET %s", HOSTILE)
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers[:] = []
    lines = out.splitlines()
    assert "12 bytes, 0.5 s" in lines[0] and "gpj.exe" in lines[0]
    assert _safe("".join(lines)) and not any(line.startswith("forged line") for line in lines), out
    assert json.loads(lines[-1])["msg"] == f"GET {text.clean(HOSTILE)}"
