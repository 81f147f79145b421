"""Shared fixtures: a station config on loopback pointing at temporary directories."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config" / "appliance.toml"


@pytest.fixture
def station_env(tmp_path: Path) -> dict[str, str]:
    """Environment overrides that make the shipped config valid on loopback in a temp dir."""
    root = tmp_path / "firmware"
    root.mkdir()
    return {
        "APPLIANCE_CONFIG": str(SHIPPED_CONFIG),
        "APPLIANCE_NETWORK_INTERFACE": "lo",
        "APPLIANCE_TFTP_ROOT": str(root),
        "APPLIANCE_STATE_DIR": str(tmp_path / "state"),
    }


@pytest.fixture
def station_config(station_env):
    from appliance import config

    return config.load(environ=station_env)


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


def needs_tool(*names: str):
    missing = [n for n in names if shutil.which(n) is None]
    return pytest.mark.skipif(bool(missing), reason=f"missing tools: {', '.join(missing)} (make test installs them)")


def wait_for(pred, timeout: float, what: str, every: float = 0.3):
    """pred()'s first truthy value, polled until `timeout` seconds; else fail naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def fixed_table(load: str, macs: tuple[tuple[str, str, str], ...] = (),
                models: tuple[str, ...] = ("CP-7965G", "CP-7945G", "CP-7940G")):
    """An AnswerTable (what the recovery core pushes to the file workers) naming `load` for every phone and model:
    `macs` are (mac, ip, model) rows."""
    from appliance.recovery.answers import AnswerTable
    from appliance.recovery.facts import Answer, Answers
    table = AnswerTable()
    table.apply(Answers(1, tuple(Answer(mac, ip, model, load, load, load) for mac, ip, model in macs),
                        tuple((m, load) for m in models)))
    return table
