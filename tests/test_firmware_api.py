"""The API's firmware panel over a real catalog of synthetic loads."""
from __future__ import annotations

from pathlib import Path

from appliance import config
from appliance.api.app import create_app
from appliance.firmware import synth
from appliance.store import Store


def test_firmware_panel_lists_loads_and_names_missing(station_env):
    env = dict(station_env, APPLIANCE_API_TOKEN="t0ken")
    cfg = config.load(environ=env)
    root = Path(cfg.tftp.root)
    synth.write_zip(root, "SCCP45.9-4-2SR4-3S", size_bytes=20_000)
    files = synth.write_load(root, "SCCP45.8-5-2S", size_bytes=20_000)
    c = create_app(cfg, Store(cfg.db_path)).test_client()
    doc = c.get("/api/v1/firmware").json
    assert doc["available"] is True and doc["incomplete"] == []
    names = [load["name"] for load in doc["loads"]]
    assert "SCCP45.8-5-2S" in names and "SCCP45.9-4-2SR4-3S" in names
    stone = next(load for load in doc["loads"] if load["name"] == "SCCP45.8-5-2S")
    assert stone == {"name": "SCCP45.8-5-2S", "protocol": "sccp", "models": ["CP-7945G", "CP-7965G"], "complete": True,
                     "missing": [], "files": 5, "source": "root",
                     "terms_missing": ["term45.default.loads", "term65.default.loads"]}   # loose files, no --term
    files[3].unlink()
    r = c.post("/api/v1/firmware/rescan", headers={"Authorization": "Bearer t0ken"})
    assert r.status_code == 202 and r.json["incomplete"] == ["SCCP45.8-5-2S"]
    stone = next(load for load in r.json["loads"] if load["name"] == "SCCP45.8-5-2S")
    assert stone["missing"] == [files[3].name] and stone["complete"] is False
