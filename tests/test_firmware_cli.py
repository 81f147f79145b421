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


def test_list_says_versions_roles_and_which_copy_is_served(env, tmp_path):
    """Two packages of one family each bring term45/term65.default.loads; a tech also dropped one component loose."""
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    incoming = tmp_path / "incoming"
    for load_id in ("SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"):
        r = run(env, "firmware", "synth", str(incoming), load_id, "--zip", "--size", "30000")
        assert r.returncode == 0, r.stderr
    r = run(env, "firmware", "synth", str(root), "P0030801SR02", "--size", "3000", "--components", "2")
    assert r.returncode == 0, r.stderr
    stone = "cmterm-7945_7965-sccp.8-5-2.zip"
    target = "cmterm-7945_7965-sccp.9-4-2SR4-3.zip"
    for name in (stone, target):
        (incoming / name).rename(root / name)
    with zipfile.ZipFile(root / stone) as zf:
        (root / "dsp45.8-5-2.sbn").write_bytes(zf.read("dsp45.8-5-2.sbn"))

    r = run(env, "firmware", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"firmware under {root}: 3 load(s), 4 term file(s)"
    assert lines[1].split() == ["LOAD", "VERSION", "PROTOCOL", "STATE", "FILES", "BYTES", "MODELS", "FROM"]
    versions = {line.split()[0]: line.split()[1] for line in lines[2:] if not line.startswith((" ", "term"))}
    assert versions == {"P0030801SR02": "8.1(2)SR2", "SCCP45.8-5-2S": "8.5(2)", "SCCP45.9-4-2SR4-3S": "9.4(2)SR4-3"}
    assert "    manifest   SCCP45.8-5-2S.loads" in lines and "    component  jar45sccp.8-5-2.sbn" in lines
    assert (f"    component  dsp45.8-5-2.sbn (found 2 times: the copy loose in the firmware folder is served; "
            f"also in {stone})") in lines
    terms = {(line.split()[0], line.split()[2]): line for line in lines if line.startswith("    term")}
    assert terms[("term45.default.loads", stone)].endswith("to a factory-reset 7945G")
    assert terms[("term65.default.loads", stone)].endswith("to a factory-reset 7965G")
    assert terms[("term45.default.loads", target)].split()[1] == "SCCP45.9-4-2SR4-3S"
    assert terms[("term45.default.loads", target)].endswith("only to a phone whose plan starts with the load it lists")

    doc = json.loads(run(env, "firmware", "list", "--json").stdout)
    assert {load["id"]: load["version"] for load in doc["loads"]} == versions
    stone_load = next(load for load in doc["loads"] if load["id"] == "SCCP45.8-5-2S")
    assert [f["role"] for f in stone_load["contents"]] == ["manifest"] + ["component"] * 5
    dsp = next(f for f in stone_load["contents"] if f["name"] == "dsp45.8-5-2.sbn")
    assert dsp["copies"] == {"served": "root", "others": [stone]}
    served = {(t["manifest"], t["source"]): (t["version"], t["lists"], t["served_to"], t["contents"][0]["role"])
              for t in doc["terms"]}
    assert served == {("term45.default.loads", stone): (None, "SCCP45.8-5-2S", ["CP-7945G"], "term file"),
                      ("term65.default.loads", stone): (None, "SCCP45.8-5-2S", ["CP-7965G"], "term file"),
                      ("term45.default.loads", target): (None, "SCCP45.9-4-2SR4-3S", [], "term file"),
                      ("term65.default.loads", target): (None, "SCCP45.9-4-2SR4-3S", [], "term file")}


def test_human_versions_read_back_as_the_same_version():
    from appliance.firmware.cli import human_version
    from appliance.firmware.versions import version_key

    for load_id, text in [("SCCP45.8-5-2S", "8.5(2)"), ("SIP45.8-5-2SR1S", "8.5(2)SR1"), ("P00308010100", "8.1(1)"),
                          ("P0030801SR02", "8.1(2)SR2"), ("sip88xx.12-5-1SR3-74", "12.5(1)SR3-74"),
                          ("CP7925G-1.4.1SR1", "1.4(1)SR1")]:
        assert human_version(version_key(load_id)) == text
        assert version_key(text) == version_key(load_id)
    assert human_version(version_key("P0030802SR05")) == "8.2 SR5"     # maintenance release unknown: not guessed
    assert human_version(None) is None


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-9] ^= 0x5A
    path.write_bytes(bytes(data))


def test_7800_zip_listed_by_platform_and_a_damaged_copy_named_by_verify(env, tmp_path):
    """Issue 26's done-when, as a tech sees it: platforms listed complete, the damaged file named, verify exits 1."""
    from appliance.firmware import synth
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    (zip78,) = synth.write_zip(root, "sip78xx.11-0-1-11", size_bytes=90_000)
    synth.write_load(root, "SCCP69xx.9-4-1-3SR3", size_bytes=20_000)
    synth.write_zip(root, "SCCP894x.9-4-2SR1-2", size_bytes=30_000)
    r = run(env, "firmware", "verify")
    assert r.returncode == 0 and r.stdout.startswith("ok: 3 loads"), r.stdout + r.stderr
    with zipfile.ZipFile(zip78) as zf:
        (root / "rootfs2.78xx.11-0-1-11.sbn").write_bytes(zf.read("rootfs2.78xx.11-0-1-11.sbn"))
    _damage(root / "rootfs2.78xx.11-0-1-11.sbn")
    r = run(env, "firmware", "list")
    assert r.returncode == 0 and "INCOMPLETE" not in r.stdout
    assert "PLATFORM_1: complete (sboot78xx.11-0-1-11.sbn, kern78xx.11-0-1-11.sbn, rootfs78xx.11-0-1-11.sbn)" in r.stdout
    assert "PLATFORM_2: complete" in r.stdout and "hwcompat=0x00000003" in r.stdout and "not enforced" in r.stdout
    assert "problem: rootfs2.78xx.11-0-1-11.sbn: not served: the payload's SHA-256" in r.stderr
    doc = json.loads(run(env, "firmware", "list", "--json").stdout)
    load = next(d for d in doc["loads"] if d["id"] == "sip78xx.11-0-1-11")
    assert load["format"] == "container5" and [p["complete"] for p in load["platforms"]] == [True, True]
    assert load["version"] == "11.0(1)" and load["evidence"]["hwcompat"] == "0x00000003"
    r = run(env, "firmware", "verify")
    assert r.returncode == 1 and "rootfs2.78xx.11-0-1-11.sbn: not served: the payload's SHA-256" in r.stdout
    assert "copy it again" in r.stdout
    # with the zip gone the damaged copy is the only one: its platform is incomplete, the other still complete
    zip78.unlink()
    for name, data in synth.load_files("sip78xx.11-0-1-11", size_bytes=90_000).items():
        if name != "rootfs2.78xx.11-0-1-11.sbn":
            (root / name).write_bytes(data)
    r = run(env, "firmware", "verify")
    assert r.returncode == 1
    assert "sip78xx.11-0-1-11 PLATFORM_2: INCOMPLETE, not usable: rootfs2.78xx.11-0-1-11.sbn: not served" in r.stdout
    assert "PLATFORM_1" not in r.stdout


def test_verify_shows_hashing_progress_on_a_terminal(env):
    import pty

    from appliance.firmware import synth
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    synth.write_load(root, "sip88xx.12-8-1-0001-455", size_bytes=3 << 20)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([str(APPLIANCE), "firmware", "verify"], env={**os.environ, **env}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0, proc.stdout
    assert b"checking firmware: 3/3 MiB (100%)" in shown, shown


def test_verify_fails_on_an_empty_library_saying_what_to_copy_where(env):
    """An empty folder recovers no phone: exit 1 with the station's "no-firmware" words (appliance/problems.py)."""
    root = env["APPLIANCE_TFTP_ROOT"]
    r = run(env, "firmware", "verify")
    assert r.returncode == 1 and not r.stdout.startswith("ok:"), r.stdout
    assert f"The firmware folder {root} holds no phone firmware" in r.stdout
    assert f"into {root}" in r.stdout and "cmterm-" in r.stdout
    from appliance.firmware import synth

    synth.write_load(root, "SCCP45.9-4-2SR4-3S", 4096, term=True)
    r = run(env, "firmware", "verify")
    assert r.returncode == 0 and r.stdout.startswith("ok: 1 loads"), r.stdout
