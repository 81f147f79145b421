"""Shared fixtures: a station config on loopback pointing at temporary directories."""
from __future__ import annotations

import os
import shutil
import sqlite3
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


def phone_rows(state: Path) -> dict[str, dict]:
    """The station's phones table (`state`/station.db) by MAC, read as a tech's sqlite3 would: no product code."""
    conn = sqlite3.connect(state / "station.db", timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return {r["mac"]: dict(r) for r in conn.execute("SELECT * FROM phones")}
    finally:
        conn.close()


def settled(row: dict) -> bool:
    """A phone row the station is done with, either way."""
    return row.get("state") in ("done", "stuck")


def wait_rows(state: Path, macs: list[str], ok=settled, until: float = 0.0) -> dict[str, dict]:
    """The phone rows once `ok(row)` holds for every MAC in `macs`, polled each second until the wall clock
    passes `until`; then the rows as they are (the test's asserts say what is missing)."""
    rows: dict[str, dict] = {}
    while time.time() < until:
        rows = phone_rows(state)
        if all(ok(rows.get(m) or {}) for m in macs):
            break
        time.sleep(1)
    return rows
