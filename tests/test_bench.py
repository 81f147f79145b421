"""`make bench --quick` runs end to end and writes a well-formed document; the bench's own measuring tools are right.

Speed is never asserted here (that is what docs/benchmarks.md is for); these
tests check that the bench runs, measures what it says, and that the committed
document is exactly what the script renders from its JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_root, needs_tool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench import report  # noqa: E402
from bench.common import CpuGroup, speed_ratio, summary, tree_cpu  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable


@pytest.mark.netns
@pytest.mark.timeout(400)
@needs_root()
@needs_tool("ip", "dnsmasq", "perfdhcp", "curl")
def test_quick_bench_runs_end_to_end_and_writes_md_and_json(tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([PYTHON, "-m", "bench.run", "--quick", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert time.monotonic() - started < 300
    doc = json.loads((out / "benchmarks.json").read_text())
    md = (out / "benchmarks.md").read_text()
    assert doc["quick"] is True and doc["machine"]["cpus"] and doc["command"].startswith("python -m bench.run")
    assert {sc["section"] for sc in doc["scenarios"]} == {"tftp", "dhcp", "fleet", "footprint"}
    assert md == report.render(doc)
    ran = [sc for sc in doc["scenarios"] if sc["status"] == "ok"]
    assert any(sc["section"] == "dhcp" for sc in ran), "DHCP has every part it needs and must have run"
    for sc in doc["scenarios"]:
        assert sc["name"] in md
        if sc["status"] == "not available":
            assert sc["reason"] and f"not available: {sc['reason']}" in md
            continue
        if sc["status"] == "failed":   # the station ran and never completed: said so, with the reason
            assert sc["results"]["station"]["median"] is None and f"failed: {sc['reason']}" in md
            continue
        assert sc["status"] == "ok"
        station = sc["results"]["station"]
        assert station["runs"] >= 1 and station["median"] is not None, sc
        assert station["min"] <= station["median"] <= station["max"]
        ratios = [r for r in sc["ratios"].values() if r is not None]
        assert ratios, f"no ratio for {sc['name']}: {sc['results']}"
        row = next(line for line in md.splitlines() if line.startswith(f"| {sc['name']} |"))
        assert report.fmt(station["median"]) in row and "×" in row
    tftp = [sc for sc in ran if sc["section"] == "tftp"]
    for sc in tftp:
        assert sum(sc["failures"].values()) == 0, sc["failures"]


@needs_root()
def test_cpu_group_counts_children_reaped_with_sigchld_ignored():
    """tftpd-hpa's children vanish from /proc/<pid>/stat accounting; the cgroup must still count them."""
    burn = ("import os, signal, time\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "if os.fork() == 0:\n"
            "    end = time.process_time() + 0.4\n"
            "    while time.process_time() < end: pass\n"
            "    os._exit(0)\n"
            "time.sleep(3)\n")
    group = CpuGroup("test")
    if group.path is None:
        pytest.skip("no writable cgroup v2 hierarchy on this machine")
    proc = subprocess.Popen(group.wrap([sys.executable, "-c", burn]))
    try:
        time.sleep(1.5)
        assert proc.poll() is None
        assert group.seconds(proc.pid) >= 0.35
        assert tree_cpu(proc.pid) < 0.2
    finally:
        proc.kill()
        proc.wait()
        group.close()
    assert not group.path.exists()


def test_ratios_say_how_many_times_better_the_station_is():
    assert speed_ratio(200.0, 100.0, higher_is_better=True) == 2.0
    assert speed_ratio(1.0, 4.0, higher_is_better=False) == 4.0
    assert speed_ratio(None, 4.0, True) is None and speed_ratio(3.0, 0.0, True) is None
    s = summary([3.0, None, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["runs"], s["missing"]) == (2.0, 1.0, 3.0, 4, 1)


def test_render_reports_missed_targets_by_how_much_and_why():
    stats = lambda v: summary([v, v, v])  # noqa: E731
    doc = {"command": "python -m bench.run", "date": "d", "quick": False, "runs": 3, "duration_s": 1.0,
           "machine": {"cpu": "x", "cpus": 2, "memory_mib": 1, "os": "o", "kernel": "k", "python": "3",
                       "peers": {"dnsmasq": "Dnsmasq version 2.90  Copyright"}},
           "scenarios": [
               {"section": "tftp", "name": "single", "metric": "throughput", "unit": "MiB/s", "higher_is_better": True,
                "status": "ok", "results": {"station": stats(8.0), "dnsmasq": stats(16.0)},
                "ratios": {"dnsmasq": 0.5}, "cpu_us_per_block": {"station": stats(40.0), "dnsmasq": stats(16.0)},
                "user_us_per_block": {"station": stats(30.0), "dnsmasq": stats(2.0)}},
               {"section": "fleet", "name": "fleet", "status": "not available", "reason": "synth not landed",
                "results": {}, "ratios": {}}]}
    md = report.render(doc)
    assert "| single | MiB/s ↑ | 8.00 (8.00–8.00) | 16.0 (16.0–16.0) | **0.50×** |" in md
    assert "**missed** (**0.50×**, 50% slower); the station spends 40.0 µs" in md
    assert "(2.5×): 30.0 µs in user space (the Python interpreter) against 2.00, 10.0 µs in the kernel against 14.0" in md
    assert "Of which in user space (outside the kernel), µs per block" in md
    assert "fleet: not available: synth not landed" in md and "dnsmasq 2.90" in md


def test_committed_document_is_rendered_from_its_json():
    md, js = REPO / "docs" / "benchmarks.md", REPO / "docs" / "benchmarks.json"
    if not js.exists():
        pytest.skip("no committed benchmark run yet")
    assert md.read_text() == report.render(json.loads(js.read_text()))
