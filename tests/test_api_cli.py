"""`appliance status` and `appliance report` read the store directly."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from appliance import config
from appliance.store import Store
from tests.test_api import populate, with_firmware


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=60)


def test_status_and_report(station_env):
    with_firmware(station_env)
    store = Store(config.load(environ=station_env).db_path)
    populate(store)
    out = run(station_env, "status")
    assert out.returncode == 0, out.stderr
    assert "station OK" in out.stdout and "001b2c3d4e5f" in out.stdout and "step 2/2" in out.stdout
    doc = json.loads(run(station_env, "status", "--json").stdout)
    assert doc["health"]["ok"] and len(doc["phones"]) == 2
    with store._db.transaction() as conn:
        conn.execute("UPDATE services SET heartbeat = heartbeat - 60 WHERE name = 'dns'")
    degraded = run(station_env, "status")
    assert degraded.returncode == 1 and "CANNOT DO ITS JOB" in degraded.stdout and "dns service" in degraded.stdout
    rows = list(csv.DictReader(io.StringIO(run(station_env, "report").stdout)))
    assert {r["mac"]: r["result"] for r in rows} == {"001b2c3d4e5f": "in progress", "00aabbccddee": "recovered"}
    assert json.loads(run(station_env, "report", "--format", "json").stdout)["phones"][1]["load_after"] \
        == "sip88xx.14-2-1-0001-22"
