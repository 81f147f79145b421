"""A newcomer's path without Docker (issue 25): a fresh clone, the README's commands, nothing else.

Why: every other test runs the station from this working tree with the test's own settings; a newcomer
gets a clone, `config/appliance.toml` as shipped and the README.  This test clones the repository's
committed HEAD, installs it with the Makefile (`make venv`, outside any namespace: pip needs the package
index), then runs `make run` as the README says, inside a namespace that stands in for the bench (its NIC
`lan0`, named by `APPLIANCE_NETWORK_INTERFACE`, the one override the README tells a newcomer to make).
With `firmware/` as cloned (only its README) the station must be red where a newcomer looks (the start-up
log, `appliance status`, /api/v1/health, the healthcheck) and say what to copy where; once the loads are
copied into the clone's `firmware/` it turns green without a restart, and a 7965 on 8.3(2) (the
independent phone model) is walked through the stepping stone to its target.

The container half of the same path is tests/test_image.py (podman-compose, the kit profile).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool, wait_for

REPO = Path(__file__).resolve().parent.parent
from bench.dhcp_lab import IFACE, PYTHON, Lab  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root(), needs_tool("ip", "curl", "git", "make")]

SUBNET = "10.75.0"
STATION = f"{SUBNET}.1"
OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"


def stop(run: subprocess.Popen, clone: Path) -> None:
    """TERM to the group this test started (`make` and `appliance run`, which stops supervisord's programs),
    then SIGKILL to what is left of the services this station recorded, each checked to be this clone's."""
    pids: list[int] = []
    db = clone / "state" / "station.db"
    if db.exists():
        import sqlite3
        conn = sqlite3.connect(db, timeout=5)
        try:
            pids = [r[0] for r in conn.execute("SELECT pid FROM services WHERE pid IS NOT NULL")]
        except sqlite3.OperationalError:
            pass
        finally:
            conn.close()
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGTERM)
        try:
            run.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
    for pid in pids:
        try:
            if str(clone).encode() in Path(f"/proc/{pid}/cmdline").read_bytes() or \
                    Path(f"/proc/{pid}/cwd").resolve() == clone:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_fresh_clone_with_the_readme_commands_red_without_firmware_then_recovers_a_phone(tmp_path):
    clone = tmp_path / "station"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert sorted(p.name for p in (clone / "firmware").iterdir()) == ["README.md"]     # nothing to serve yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(["make", "venv"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    appliance = clone / ".venv" / "bin" / "appliance"
    env["APPLIANCE_NETWORK_INTERFACE"] = IFACE
    log_path = tmp_path / "make-run.log"
    with Lab("nc", subnet=SUBNET) as lab:
        lab.add("srv", STATION)
        lab.add("ph")
        with open(log_path, "w") as log:
            run = lab.popen("srv", "make", "run", env=env, cwd=str(clone), stdout=log, stderr=subprocess.STDOUT)
        try:
            def health() -> tuple[str, dict]:
                out = lab.run("srv", "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                              f"http://{STATION}:8080/api/v1/health", timeout=15).stdout
                body, _, code = out.rpartition("\n")
                try:
                    return code, json.loads(body)
                except ValueError:
                    return code, {}

            def cli(*args: str) -> subprocess.CompletedProcess:
                """A command of the clone's, run from the clone on the bench (as the README's are)."""
                return subprocess.run(["ip", "netns", "exec", lab.members["srv"], *args], cwd=clone, env=env,
                                      capture_output=True, text=True, timeout=60)

            # -- as cloned: red everywhere, saying what to copy where
            code, doc = wait_for(lambda: (lambda h: h if h[0] not in ("", "000") else None)(health()), 120,
                                 "the API to answer", every=1)
            assert code == "503" and doc["ok"] is False, (code, doc)
            empty = next((p for p in doc["problems"] if p["code"] == "no-firmware"), None)
            assert empty and empty["severity"] == "red", doc["problems"]
            assert str(clone / "firmware") in empty["what"] and "cmterm-7945_7965-sccp.8-5-2.zip" in empty["do"], empty
            status = cli(str(appliance), "status")
            assert status.returncode == 1 and "CANNOT DO ITS JOB" in status.stdout, status.stdout + status.stderr
            assert str(clone / "firmware") in status.stdout, status.stdout
            check = cli(str(clone / ".venv" / "bin" / "python"), "-m", "appliance.api.healthcheck")
            assert check.returncode == 1 and "unhealthy" in check.stdout, check.stdout
            started = log_path.read_text(errors="replace")
            assert any("station cannot do its job" in line and "WARNING" in line for line in started.splitlines()), \
                started[-3000:]
            assert f"http://{STATION}:8080/" in started, started[-3000:]       # the dashboard at its real address

            # -- the newcomer copies the loads in, as firmware/README.md says: green without a restart
            from appliance.firmware import synth
            staging = tmp_path / "download"
            for load in (STONE, TARGET):
                synth.write_load(staging, load, size_bytes=60_000, components=2)
            for f in staging.iterdir():
                shutil.copy2(f, clone / "firmware" / f.name)
            wait_for(lambda: (lambda h: h[0] == "200" and h[1].get("ok"))(health()), 90,
                     "health green once firmware is in", every=1)
            status = cli(str(appliance), "status")
            assert status.returncode == 0 and status.stdout.startswith("station OK"), status.stdout + status.stderr

            # -- and a phone is recovered: a 7965 on 8.3(2) through the stone to its target
            phone = lab.popen("ph", PYTHON, "-m", "tools.phonesim", "--interface", IFACE, "--model", "CP-7965G",
                              "--load", OLD, "--first-mac", "001e7a750000", "--no-web", "--reboot-seconds", "2",
                              "--deadline", "150", cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
            out, _ = phone.communicate(timeout=200)
            results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            assert results and results[-1].get("load") == TARGET and STONE in results[-1]["installed"], out[-3000:]

            def recovered() -> dict | None:
                r = cli(str(appliance), "report", "--format", "json")
                rows = json.loads(r.stdout)["phones"] if r.returncode == 0 else []
                return next((row for row in rows if row["mac"] == "001e7a750001" and row["result"] == "recovered"),
                            None)
            row = wait_for(recovered, 30, "the report to show the phone recovered", every=1)
            assert row["load_after"] == TARGET, row        # (its load before is unknown: no web page, no CDP here)
        finally:
            stop(run, clone)
