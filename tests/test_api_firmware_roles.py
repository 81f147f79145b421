"""The firmware panel's stone and target per model (appliance/api/firmware.py roles), asked of the recovery core."""
from __future__ import annotations

import dataclasses

import pytest

from appliance import config
from appliance.api.firmware import roles
from appliance.firmware import synth
from appliance.firmware.catalog import Catalog


@pytest.fixture
def library(station_env, tmp_path):
    root = tmp_path / "firmware"
    for load in ("SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "SIP45.9-4-2SR4-3S", "sip88xx.14-2-1-0001-22"):
        synth.write_load(root, load, size_bytes=20_000, components=2)
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    return cat, config.load(environ=station_env)


def by_key(rows):
    return {(r["model"], r["protocol"]): r for r in rows}


@pytest.mark.parametrize("strategy", ["stepwise", "direct"])
def test_stone_target_and_what_is_missing_per_model_and_protocol(library, strategy):
    """A direct strategy offers the target first and the stone after a refusal: the panel shows the stone alike."""
    cat, cfg = library
    cfg = dataclasses.replace(cfg, upgrade=dataclasses.replace(cfg.upgrade, strategy=strategy))
    rows = by_key(roles(cat, cfg))
    sccp = rows[("CP-7965G", "sccp")]
    assert (sccp["stones"], sccp["target"], sccp["missing"]) == (["SCCP45.8-5-2S"], "SCCP45.9-4-2SR4-3S", None)
    sip = rows[("CP-7945G", "sip")]
    assert sip["stones"] == [] and sip["target"] == "SIP45.9-4-2SR4-3S"
    assert sip["missing"] == ("add the SIP 8.3(3) to 8.5(2) load for CP-7945G (not 8.5(2)SR1) to the firmware "
                              "library (its cmterm zip)"), sip
    m88 = rows[("CP-8841", "sip")]
    assert (m88["stones"], m88["target"], m88["missing"]) == ([], "sip88xx.14-2-1-0001-22", None)
    assert all("?" not in (r["missing"] or "") and "§" not in (r["missing"] or "") for r in rows.values())
