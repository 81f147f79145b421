"""`appliance firmware ...` as a tech runs it: real subprocesses of the installed entry point."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APPLIANCE = REPO / ".venv" / "bin" / "appliance"


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(APPLIANCE), *args], env={**os.environ, **env}, cwd=REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def env(station_env):
    if not APPLIANCE.exists():
        pytest.skip(f"{APPLIANCE} not installed (make venv)")
    return station_env


def test_zip_and_cop_dropped_in_are_listed_complete_then_verify_names_a_missing_file(env, tmp_path):
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    incoming = tmp_path / "incoming"
    r = run(env, "firmware", "synth", str(incoming), "SCCP45.9-4-2SR4-3S", "--zip", "--size", "50000")
    assert r.returncode == 0, r.stderr
    zip_path = Path(r.stdout.strip())
    r = run(env, "firmware", "synth", str(incoming), "P00308010100", "--cop", "--size", "30000")
    assert r.returncode == 0, r.stderr
    cop_path = Path(r.stdout.strip())
    assert zip_path.name.startswith("cmterm-") and cop_path.name.endswith(".cop.sgn")
    zip_path.rename(root / zip_path.name)
    cop_path.rename(root / cop_path.name)

    r = run(env, "firmware", "list", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    loads = {load["id"]: load for load in doc["loads"]}
    assert loads["SCCP45.9-4-2SR4-3S"]["complete"] and loads["P00308010100"]["complete"]
    assert loads["SCCP45.9-4-2SR4-3S"]["source"] == zip_path.name and doc["problems"] == []
    assert {t["id"] for t in doc["terms"]} == {"term45.default", "term65.default"}
    r = run(env, "firmware", "list")
    assert r.returncode == 0 and "SCCP45.9-4-2SR4-3S" in r.stdout and "INCOMPLETE" not in r.stdout
    r = run(env, "firmware", "verify")
    assert r.returncode == 0 and r.stdout.startswith("ok:"), r.stdout

    # the tech replaces the zip by a loose copy with one component left out
    with zipfile.ZipFile(root / zip_path.name) as zf:
        names = zf.namelist()
        victim = next(n for n in names if n.startswith("dsp45"))
        for n in names:
            if n != victim:
                (root / n).write_bytes(zf.read(n))
    (root / zip_path.name).unlink()
    r = run(env, "firmware", "verify")
    assert r.returncode == 1
    assert f"SCCP45.9-4-2SR4-3S: missing {victim}" in r.stdout
    assert "P00308010100" not in r.stdout


def test_verify_reports_a_malformed_manifest(env):
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    (root / "SCCP42.9-4-2SR3-1S.loads").write_bytes(b"\x01\x00\x02\x01\x01\x02\x00\x02\x40\x00")
    r = run(env, "firmware", "verify")
    assert r.returncode == 1 and "SCCP42.9-4-2SR3-1S.loads: malformed manifest: truncated" in r.stdout


def test_manifest_lists_every_file_with_size_and_sha256(env, tmp_path):
    kit = tmp_path / "kit"
    assert run(env, "firmware", "synth", str(kit), "sip88xx.12-5-1SR3-74", "--size", "20000").returncode == 0
    (kit / "sub").mkdir()
    (kit / "sub" / "notes.txt").write_text("hello")
    r = run({}, "firmware", "manifest", "--root", str(kit))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    files = {f["path"]: f for f in doc["files"]}
    on_disk = sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file())
    assert sorted(files) == on_disk
    for rel, f in files.items():
        data = (kit / rel).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["loads"][0]["id"] == "sip88xx.12-5-1SR3-74" and doc["loads"][0]["complete"]
    assert sorted(p.name for p in kit.iterdir()) == sorted({Path(k).parts[0] for k in files})   # nothing written into it
    assert run({}, "firmware", "manifest", "--root", str(tmp_path / "nope")).returncode == 2


def test_synth_variants_and_bad_input(env, tmp_path):
    r = run(env, "firmware", "synth", str(tmp_path / "a"), "SCCP45.8-5-2S", "--term", "--components", "3", "--unsigned")
    assert r.returncode == 0
    written = [Path(p).name for p in r.stdout.split()]
    assert written[0] == "SCCP45.8-5-2S.loads" and "term65.default.loads" in written and len(written) == 1 + 2 + 3
    assert not (tmp_path / "a" / "SCCP45.8-5-2S.loads").read_bytes().startswith(b"\x01")
    r = run(env, "firmware", "synth", str(tmp_path / "b"), "not-a-load")
    assert r.returncode == 2 and "not a load ID" in r.stderr
    r = run({**env, "APPLIANCE_TFTP_PORT": "nope"}, "firmware", "list")
    assert r.returncode == 2 and "bad config" in r.stderr
