"""Catalog over a real directory: loose files, cmterm zips, .cop.sgn packages, hostile archives, polling."""
from __future__ import annotations

import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.firmware import catalog as catalog_mod
from appliance.firmware import synth
from appliance.firmware.catalog import Catalog

STONE, TARGET, OLD = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "P0030801SR02"


def age(root: Path, seconds: float = 60.0) -> None:
    """Make packages look settled (copied a while ago): young unreadable ones are retried rather than refused."""
    past = time.time() - seconds
    for p in root.iterdir():
        os.utime(p, (past, past))


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "fw"
    root.mkdir()
    return root, tmp_path / "state" / "cache" / "firmware"


def test_loose_zip_and_cop_union_without_writing_into_root(lib):
    root, cache = lib
    synth.write_load(root, STONE, size_bytes=40_000)
    synth.write_zip(root, TARGET, size_bytes=60_000)
    synth.write_cop(root, OLD, size_bytes=30_000)
    before = snapshot(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert snapshot(root) == before
    by_id = {load.id: load for load in cat.loads}
    for load_id, source in ((STONE, "root"), (TARGET, "cmterm-7945_7965-sccp.9-4-2SR4-3.zip"),
                            (OLD, "cmterm-7940_7960-sccp.0801SR02.cop.sgn")):
        load = by_id[load_id]
        assert load.complete and not load.missing and load.source == source and load.signed
        assert len(load.components) == len(synth.component_names(load_id))
    assert set(by_id[TARGET].models) == {"CP-7945G", "CP-7965G"}
    assert cat.newest_complete("7965").id == TARGET and cat.newest_complete("CP-7940G").id == OLD
    assert [load.id for load in cat.loads_for_model("7945")] == [STONE, TARGET]
    assert cat.problems == []
    # the cop's install script is not served, its TFTP files are, flat
    assert cat.resolve("install.sh") is None
    served = cat.resolve("/p0030801sr02.SB2")
    assert served and served.name == "P0030801SR02.sb2" and cache.resolve() in served.parents
    # a package's own term files, matched to its load
    term = cat.term_file_for(TARGET, "term65.default.loads")
    assert term is not None and cache.resolve() in term.resolve().parents
    assert cat.term_file_for(STONE, "term65.default.loads") is None
    d = by_id[TARGET].as_dict()
    assert d["name"] == TARGET and d["complete"] is True and d["files"] == 5 and d["version"] == [9, 4, 2, 4, 3]


def test_missing_component_case_insensitive_and_refresh(lib):
    root, cache = lib
    files = synth.write_load(root, TARGET, size_bytes=20_000)
    cat = Catalog(root, cache, poll_interval=0.0)
    cat.scan()
    assert cat.load(TARGET).complete
    victim = files[2]
    victim.rename(victim.with_name(victim.name.upper()))
    assert cat.refresh() is True and cat.load(TARGET).complete
    victim.with_name(victim.name.upper()).unlink()
    assert cat.refresh() is True
    assert cat.load(TARGET).missing == [victim.name] and not cat.load(TARGET).complete
    assert cat.refresh() is False
    assert cat.newest_complete("7965") is None


def test_refresh_is_throttled(lib):
    root, cache = lib
    cat = Catalog(root, cache, poll_interval=30.0)
    cat.scan()
    synth.write_load(root, STONE, size_bytes=5_000)
    assert cat.refresh() is False and cat.loads == []
    cat.poll_interval = 0.0
    assert cat.refresh() is True and [load.id for load in cat.loads] == [STONE]


def test_removed_package_leaves_the_cache(lib, monkeypatch):
    root, cache = lib
    (pkg,) = synth.write_zip(root, TARGET, size_bytes=10_000)
    cat = Catalog(root, cache, poll_interval=0.0)
    cat.scan()
    assert cat.load(TARGET) and any(cache.iterdir())
    pkg.unlink()
    assert cat.refresh() and cat.load(TARGET) is None
    assert cat.resolve("jar45sccp.9-4-2SR4-3.sbn") is None
    assert [p for p in cache.iterdir()] != []        # young: another process may still serve from it
    monkeypatch.setattr(catalog_mod, "PRUNE_GRACE", 0.0)
    cat.scan()
    assert [p for p in cache.iterdir()] == []


def test_two_catalogs_share_one_cache(lib):
    """The file service workers and the API each keep a Catalog on the same cache directory."""
    root, cache = lib
    a, b = Catalog(root, cache, poll_interval=0.0), Catalog(root, cache, poll_interval=0.0)
    a.scan()
    b.scan()
    synth.write_zip(root, TARGET, size_bytes=10_000)
    assert b.refresh() is True                       # b unpacks; a has not looked yet
    a.scan()
    assert a.load(TARGET).complete and b.load(TARGET).complete
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    served_a, served_b = a.resolve("JAR45SCCP.9-4-2SR4-3.SBN"), b.resolve("jar45sccp.9-4-2SR4-3.sbn")
    assert served_a == served_b and served_a.is_file()


def test_resolve_heals_when_a_file_vanishes(lib):
    root, cache = lib
    files = synth.write_load(root, STONE, size_bytes=5_000)
    cat = Catalog(root, cache, poll_interval=3600.0)
    cat.scan()
    files[1].unlink()
    assert cat.resolve(files[1].name) is None
    assert cat.load(STONE).missing == [files[1].name]


def test_malformed_manifests_are_reported(lib):
    root, cache = lib
    synth.write_load(root, TARGET, size_bytes=5_000)
    good = (root / f"{TARGET}.loads").read_bytes()
    (root / "SCCP42.9-4-2SR3-1S.loads").write_bytes(good[:150])
    (root / "SIP45.9-4-2SR4-3S.loads").write_bytes(b"\x01\xff\xff")
    (root / "sip88xx.12-5-1SR3-74.loads").write_bytes(b"../../../etc/shadow\r\n")
    cat = Catalog(root, cache)
    cat.scan()
    assert [load.id for load in cat.loads] == [TARGET]
    text = "\n".join(cat.problems)
    assert "SCCP42.9-4-2SR3-1S.loads: malformed manifest: truncated" in text
    assert "SIP45.9-4-2SR4-3S.loads: malformed manifest" in text
    assert "sip88xx.12-5-1SR3-74.loads: malformed manifest: line 1: unsafe" in text


def _zip(path: Path, members: list[tuple[str, bytes]], symlink: str | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")


def test_hostile_archives_are_refused_and_reported(lib, tmp_path):
    root, cache = lib
    files = synth.load_files(STONE, size_bytes=5_000)
    _zip(root / "cmterm-slip.zip", [("../../evil.sbn", b"x"), *files.items()])
    _zip(root / "cmterm-abs.zip", [("/etc/cron.d/evil", b"x")])
    _zip(root / "cmterm-link.zip", list(files.items()), symlink="passwd.sbn")
    with zipfile.ZipFile(root / "cmterm-bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.sbn", "w") as out:
            for _ in range(64):
                out.write(b"\0" * (1 << 20))
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    # tar traversal and a symlink member inside a .cop.sgn
    evil = tarfile.TarInfo("usr/local/cm/tftp/../../../../../tmp/evil")
    evil.size = 4
    (root / "evil.cop.sgn").write_bytes(synth.cop_bytes({"a.sbn": b"data"}, [evil]))
    link = tarfile.TarInfo("usr/local/cm/tftp/shadow.sbn")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    (root / "link.cop.sgn").write_bytes(synth.cop_bytes({"b.sbn": b"data"}, [link]))
    (root / "trunc.cop.sgn").write_bytes(synth.cop_bytes({"c.sbn": b"data" * 1000})[:600])
    age(root)
    before = snapshot(root)
    cat = Catalog(root, cache, max_unpack=32 << 20)
    cat.scan()
    assert snapshot(root) == before
    text = "\n".join(cat.problems)
    assert "cmterm-slip.zip: refused: member '../../evil.sbn' points outside the archive" in text
    assert "cmterm-abs.zip: refused" in text and "outside" in text
    assert "cmterm-link.zip: skipped 'passwd.sbn': not a regular file" in text
    assert "cmterm-bomb.zip: refused" in text and "bomb" in text
    assert "broken.zip: refused: not a readable zip" in text
    assert "evil.cop.sgn: refused" in text and "path traversal" in text
    assert "link.cop.sgn: skipped" in text
    assert "trunc.cop.sgn: refused" in text
    assert not (tmp_path / "evil.sbn").exists() and not Path("/tmp/evil").exists()
    assert cat.resolve("passwd.sbn") is None and cat.resolve("shadow.sbn") is None and cat.resolve("big.sbn") is None
    assert cat.resolve("b.sbn") is not None
    # the link zip's real files still count; refusals are remembered, not retried on every scan
    assert cat.load(STONE) and cat.load(STONE).complete
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith(".refused"))
    cat.scan()
    assert "\n".join(cat.problems) == text


def test_resolve_never_leaves_root_or_cache(lib, tmp_path):
    root, cache = lib
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    (root / "out.sbn").symlink_to(secret)
    (root / "sub").mkdir()
    (root / "sub" / "English_United_Kingdom").mkdir()
    (root / "sub" / "English_United_Kingdom" / "mk-sccp.jar").write_bytes(b"j")
    (root / "in.sbn").write_bytes(b"i")
    (root / "alias.sbn").symlink_to(root / "in.sbn")
    cat = Catalog(root, cache)
    cat.scan()
    assert cat.resolve("out.sbn") is None
    assert any("out.sbn: symlink pointing outside" in p for p in cat.problems)
    assert cat.resolve("ALIAS.SBN") == (root / "in.sbn").resolve()
    assert cat.resolve("/sub/english_united_kingdom/MK-SCCP.JAR") is not None
    assert cat.resolve("English_United_Kingdom/mk-sccp.jar") is not None
    for bad in ("../secret.txt", "/../secret.txt", "sub/../../secret.txt", "", "/", "..", "\\..\\secret.txt"):
        assert cat.resolve(bad) is None, bad


def test_missing_root_is_a_problem_not_a_crash(tmp_path):
    cat = Catalog(tmp_path / "nope", tmp_path / "cache")
    cat.scan()
    assert cat.loads == [] and "not readable" in cat.problems[0]
    assert cat.resolve("x") is None and cat.refresh() is False


def test_from_config_puts_the_cache_under_state(station_config):
    cfg = station_config
    cat = Catalog.from_config(cfg)
    assert cat.root == Path(cfg.tftp.root) and Path(cfg.state.dir) in cat.cache_dir.parents


def test_cop_bomb_is_refused(lib):
    root, cache = lib
    zeros = tarfile.TarInfo("usr/local/cm/tftp/zeros.sbn")
    zeros.size = 48 << 20
    (root / "bomb.cop.sgn").write_bytes(synth.cop_bytes({}, [zeros]))
    assert (root / "bomb.cop.sgn").stat().st_size < 1 << 20
    age(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert any(p.startswith("bomb.cop.sgn: refused") and "bomb" in p for p in cat.problems)
    assert cat.resolve("zeros.sbn") is None and not any(p.is_dir() for p in cache.iterdir())


def test_dropped_package_shows_up_on_the_next_poll(lib):
    """What the file service does: refresh() on every request; a new package appears after at most one poll interval."""
    root, cache = lib
    cat = Catalog(root, cache)           # default poll interval
    cat.scan()
    synth.write_cop(root, TARGET, size_bytes=10_000)
    deadline = time.monotonic() + 10
    while cat.load(TARGET) is None and time.monotonic() < deadline:
        cat.refresh()
        time.sleep(0.05)
    assert cat.load(TARGET) is not None and cat.load(TARGET).complete


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["x.zip", "x.cop.sgn", "x.tar.gz", "SCCP45.9-4-2SR4-3S.loads"]), st.binary(max_size=3000),
       st.sampled_from([b"", b"PK\x03\x04", b"\x1f\x8b\x08", synth.signature_header("x.cop.sgn")]))
def test_random_packages_never_break_a_scan(tmp_path_factory, name, data, prefix):
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "fw"
    root.mkdir()
    (root / name).write_bytes(prefix + data)
    cat = Catalog(root, base / "cache")
    cat.scan()
    assert all(isinstance(p, str) for p in cat.problems)
    assert not [p for p in root.iterdir() if p.name != name]


def test_wireless_upper_case_manifest_with_claimed_sizes(lib):
    root, cache = lib
    body = b"A" * 1000
    (root / "TNUXH-1.4.1SR1.SBN").write_bytes(body)
    (root / "jsysh-1.4.1sr1.sbn").write_bytes(b"B" * 10)
    (root / "CP7925G-1.4.1SR1.LOADS").write_bytes(
        b"#? HW_REV 0-2.*\r\nTNUXH-1.4.1SR1.SBN\t1000\tEBDEF11A57898C6D805DFB86904106FB\r\n"
        b"#+ JSYSH-1.4.1SR1.SBN  708556 9606784631D3C06F2398CC6371B0AA60\r\nGUIH-1.4.1SR1.SBN\r\n")
    cat = Catalog(root, cache)
    cat.scan()
    (load,) = cat.loads
    assert load.id == "CP7925G-1.4.1SR1" and load.models == ["CP-7925G"] and load.version == (1, 4, 1, 1, 0)
    assert load.missing == ["GUIH-1.4.1SR1.SBN"] and load.mismatched == ["JSYSH-1.4.1SR1.SBN"]
    assert load.size == 1010 and not load.signed
    served = {name: size for name, _, size in cat.files()}
    assert served == {"TNUXH-1.4.1SR1.SBN": 1000, "jsysh-1.4.1sr1.sbn": 10, "CP7925G-1.4.1SR1.LOADS": len(
        (root / "CP7925G-1.4.1SR1.LOADS").read_bytes())}


def test_package_still_being_copied_is_retried_not_refused(lib):
    root, cache = lib
    (pkg,) = synth.write_zip(tmp := root.parent / "incoming", TARGET, size_bytes=50_000)
    data = pkg.read_bytes()
    dest = root / pkg.name
    dest.write_bytes(data[: len(data) // 2])
    cat = Catalog(root, cache, poll_interval=0.0)
    cat.scan()
    assert cat.load(TARGET) is None
    assert any("still being copied" in p for p in cat.problems)
    assert not any(p.name.endswith(".refused") for p in cache.iterdir())
    with open(dest, "ab") as f:
        f.write(data[len(data) // 2:])
    assert cat.refresh() is True
    assert cat.load(TARGET).complete and cat.problems == []
    assert tmp.exists()
