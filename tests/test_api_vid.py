"""The phone's hardware version (VID) in the API's phone view, the report and its CSV (appliance/api/views.py).

The core keeps the VID its page gave in the row's memory (recovery/memory.py); the views show it as the core
would keep it ("V20") or not at all: anything else in the row (a phone's page is the phone's to write) is null.
"""
from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

from appliance.api import views

ROW = {"mac": "001e7a782001", "model": "CP-7841", "first_seen": 1.0, "last_seen": 5.0, "state": "stuck",
       "current_load": "sip78xx.14-0-1-0001-135", "target_load": "sip78xx.14-0-1-0001-135", "plan": [],
       "diagnosis": "rejected sip78xx.11-0-1-11: ...", "hints": {"memory": {"vid": "V20", "how": "web"}}}


def test_the_phone_view_carries_the_vid_and_nothing_a_phone_could_smuggle():
    assert views.phone(ROW)["vid"] == "V20"
    assert views.phone({**ROW, "hints": json.dumps({"memory": {"vid": "v4"}})})["vid"] == "V04"
    for bad in ("=cmd|' /C calc'!A0", "V20\x1b[2J", "1.0", 20, None, "V" + "9" * 300):
        assert views.phone({**ROW, "hints": {"memory": {"vid": bad}}})["vid"] is None, bad
    assert views.phone({**ROW, "hints": "not json"})["vid"] is None
    assert views.phone({k: v for k, v in ROW.items() if k != "hints"})["vid"] is None


def test_the_report_and_its_csv_have_a_vid_column():
    store = SimpleNamespace(phones=SimpleNamespace(all=lambda: [ROW, {**ROW, "mac": "001e7a784101", "hints": None}]))
    rows = views.report(store)
    assert [r["vid"] for r in rows] == ["V20", None] and rows[0]["result"] == "failed"
    assert views.REPORT_FIELDS.index("vid") == views.REPORT_FIELDS.index("model") + 1
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=views.REPORT_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["vid"] for r in parsed] == ["V20", ""]
