"""The catalog reads a real-layout library completely, from every package kind, and survives bad files.

Every file here is byte-faithful to Cisco's (tests/test_firmware_signed.py pins synth.py against the
facts): padded headers of several lengths, tag 14 = the file's own name, CRLF manifests at the header
length, zips flat, COP tars with the firmware at their top level and an install script, locale COPs
keeping their folder.
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.generated import Generated
from appliance.firmware.signed import parse_signed_header
from tests.conftest import fixed_table

from .test_firmware_catalog import age, lib, snapshot  # noqa: F401  (lib is a fixture)

STONE, TARGET, OLD, SIP = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "P0030801SR02", "SIP42.9-4-2SR3-1S"


def settled(root: Path) -> None:
    age(root)
    for p in root.rglob("*"):
        os.utime(p, (time.time() - 60,) * 2)


def test_every_package_kind_is_read_completely(lib):
    root, cache = lib
    synth.write_load(root, STONE, size_bytes=20_000, term=True)
    synth.write_zip(root, TARGET, size_bytes=20_000)
    synth.write_cop(root, OLD, size_bytes=20_000)
    synth.write_cop(root, SIP, size_bytes=20_000, kind="sha512")
    settled(root)
    before = snapshot(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert cat.problems == [] and snapshot(root) == before
    by_id = {load.id: load for load in cat.loads}
    assert set(by_id) == {STONE, TARGET, OLD, SIP}
    assert all(load.complete and load.signed and not load.refused for load in by_id.values())
    assert by_id[SIP].source == "cmterm-7942_7962-sip.9-4-2SR3-1.cop.sha512" and by_id[SIP].protocol == "sip"
    assert by_id[TARGET].protocol == "sccp" and by_id[OLD].protocol == "sccp"
    lengths = {parse_signed_header(cat.resolve(f"{i}.loads").read_bytes()).length for i in by_id}
    assert len(lengths) > 1 and all(n % 4 == 0 for n in lengths)       # several header lengths, all padded
    # term files from every source, each signed with its own name, each listing its own load
    assert {(t.id, t.source) for t in cat.terms} >= {("term45.default", "root"), ("term65.default", "root"),
                                                     ("term45.default", "cmterm-7945_7965-sccp.9-4-2SR4-3.zip"),
                                                     ("term42.default", "cmterm-7942_7962-sip.9-4-2SR3-1.cop.sha512")}
    assert cat.resolve("install.sh") is None


def test_cop_with_files_under_the_cucm_tftp_folder_is_read_too(lib):
    """Which layout firmware COPs use inside is UNCONFIRMED (reference §4.1): both are read."""
    root, _ = lib
    files = synth.load_files(TARGET, size_bytes=8_000, term=True)
    (root / "cmterm-7945_7965-sccp.9-4-2SR4-3.cop.sgn").write_bytes(
        synth.cop_bytes(files, filename="cmterm-7945_7965-sccp.9-4-2SR4-3.cop.sgn", prefix="usr/local/cm/tftp/"))
    cat = Catalog(root, lib[1])
    cat.scan()
    assert cat.problems == [] and cat.load(TARGET).complete and not cat.load(TARGET).terms_missing


def test_locale_cop_keeps_its_folder_and_never_answers_for_another_language(lib):
    root, cache = lib
    synth.write_locale_cop(root, "English_United_Kingdom", {"mk-sccp.jar": b"en-GB jar", "g3-tones.xml": b"<t/>"})
    synth.write_locale_cop(root, "German_Germany", {"mk-sccp.jar": b"de-DE jar"})
    settled(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert cat.problems == []
    assert cat.resolve("English_United_Kingdom/mk-sccp.jar").read_bytes() == b"en-GB jar"
    assert cat.resolve("/german_germany/MK-SCCP.JAR").read_bytes() == b"de-DE jar"
    assert cat.resolve("French_France/mk-sccp.jar") is None
    assert cat.resolve("French_France/g3-tones.xml") is None
    served = {name for name, _, _ in cat.files()}
    assert {"English_United_Kingdom/mk-sccp.jar", "German_Germany/mk-sccp.jar"} <= served


def test_stone_without_term_file_is_never_served_under_the_term_name(lib, station_config):
    """A package with no term65.default.loads: say so; never answer with the stone's own manifest."""
    root, cache = lib
    synth.write_load(root, STONE, size_bytes=8_000, term=False)
    cat = Catalog(root, cache)
    cat.scan()
    load = cat.load(STONE)
    assert load.complete and load.terms_missing == ["term45.default.loads", "term65.default.loads"]
    gen = Generated(station_config, cat, fixed_table(STONE))   # names the stone: the only load
    assert gen.render("term65.default.loads") is None
    synth.write_load(root, STONE, size_bytes=8_000, term=True)
    cat.scan()
    assert cat.load(STONE).terms_missing == []
    body = gen.render("TERM65.DEFAULT.LOADS")
    assert parse_signed_header(body).filename == "term65.default.loads"


def test_manifest_signed_under_another_name_is_a_problem_not_a_load(lib):
    root, cache = lib
    synth.write_load(root, TARGET, size_bytes=8_000)
    files = synth.load_files(STONE, size_bytes=8_000)
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / f"{STONE}.loads").rename(root / "SCCP45.8-5-2SR1S.loads")     # renamed by hand: signed name disagrees
    cat = Catalog(root, cache)
    cat.scan()
    assert [load.id for load in cat.loads] == [TARGET]
    [problem] = cat.problems
    assert "SCCP45.8-5-2SR1S.loads" in problem and "signed as 'SCCP45.8-5-2S.loads'" in problem


def test_component_signed_under_another_name_makes_the_load_incomplete(lib):
    root, cache = lib
    synth.write_load(root, TARGET, size_bytes=8_000)
    jar = root / "jar45sccp.9-4-2SR4-3.sbn"
    jar.write_bytes(synth.signature_header("jar45sccp.9-3-1.sbn") + b"x" * 100)
    cat = Catalog(root, cache)
    cat.scan()
    load = cat.load(TARGET)
    assert not load.complete and load.refused == ["jar45sccp.9-4-2SR4-3.sbn: signed as 'jar45sccp.9-3-1.sbn', "
                                                  "not 'jar45sccp.9-4-2SR4-3.sbn'"]
    assert any(f"{TARGET}.loads" in p and "jar45sccp" in p for p in cat.problems)


def _broken_cop(root: Path) -> None:
    good = synth.cop_bytes(synth.load_files(OLD, size_bytes=8_000), filename="broken.cop.sgn")
    header = parse_signed_header(good).length
    gz = bytearray(good[header:])
    gz[len(gz) // 2:len(gz) // 2 + 64] = b"\0" * 64
    (root / "broken.cop.sgn").write_bytes(good[:header] + bytes(gz))


@pytest.mark.parametrize("name,make,words", [
    ("SCCP45.1-0-0S.loads", lambda: synth.signature_header("SCCP45.1-0-0S.loads")[:300], "truncated"),
    ("SCCP45.1-0-1S.loads",
     lambda: (lambda h: h[:8] + b"\x02\x00" + h[10:])(synth.signature_header("SCCP45.1-0-1S.loads")) + b"#\r\nx.sbn\r\n",
     "header length 512"),                                                       # padding run past the end
    ("SCCP45.1-0-2S.loads", lambda: synth.manifest_bytes("SCCP45.1-0-2S", ["a.sbn"], filename="other.loads"),
     "signed as 'other.loads'"),
    ("truncated.cop.sgn", lambda: synth.signature_header("truncated.cop.sgn")[:40], "bad signature header"),
    ("broken.cop.sgn", None, "broken gzip tar"),
])
def test_bad_files_are_named_and_the_rest_is_still_served(lib, name, make, words):
    root, cache = lib
    synth.write_zip(root, TARGET, size_bytes=8_000)
    if make is None:
        _broken_cop(root)
    else:
        (root / name).write_bytes(make())
    settled(root)
    before = snapshot(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert snapshot(root) == before                           # nothing written to the firmware volume
    assert [load.id for load in cat.loads] == [TARGET] and cat.load(TARGET).complete
    assert cat.resolve("cnu45.9-4-2SR4-3.sbn") is not None
    bad = [p for p in cat.problems if name in p]
    assert bad and words in bad[0], cat.problems
    assert not list(cache.glob(".tmp-*"))


def test_gzip_of_a_real_layout_cop_is_exactly_after_the_header(lib):
    root, _ = lib
    [path] = synth.write_cop(root, TARGET, size_bytes=8_000)
    data = path.read_bytes()
    h = parse_signed_header(data)
    assert h.filename == path.name and data[h.length:h.length + 2] == b"\x1f\x8b"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data[h.length:]))) as tf:
        names = tf.getnames()
    assert "install.sh" in names and f"{TARGET}.loads" in names and all("/" not in n for n in names)


def test_7800_8800_packages_k3_cop_sgn_and_k4_cop_sha512(lib):
    """CUCM packages of 7800/8800 loads (reference phone-families.md §2.1): cmterm-88xx-sip.<v>.k3.cop.sgn,
    cmterm-78xx.<v>.k4.cop.sha512, cmterm-8845_65.<v>.zip; each load complete with both platforms."""
    root, cache = lib
    (k3,) = synth.write_cop(root, "sip88xx.12-8-1-0001-455", size_bytes=40_000)
    (k4,) = synth.write_cop(root, "sip78xx.14-4-1-0301-6", size_bytes=40_000, kind="sha512")
    (z,) = synth.write_zip(root, "sip8845_65.12-8-1-0001-455", size_bytes=40_000)
    assert (k3.name, k4.name, z.name) == ("cmterm-88xx-sip.12-8-1-0001-455.k3.cop.sgn",
                                          "cmterm-78xx.14-4-1-0301-6.k4.cop.sha512", "cmterm-8845_65.12-8-1-0001-455.zip")
    settled(root)
    cat = Catalog(root, cache)
    cat.scan()
    by_id = {load.id: load for load in cat.loads}
    assert set(by_id) == {"sip88xx.12-8-1-0001-455", "sip78xx.14-4-1-0301-6", "sip8845_65.12-8-1-0001-455"}
    for load, pkg in ((by_id["sip88xx.12-8-1-0001-455"], k3.name), (by_id["sip78xx.14-4-1-0301-6"], k4.name),
                      (by_id["sip8845_65.12-8-1-0001-455"], z.name)):
        assert load.complete and load.source == pkg and [p["complete"] for p in load.platforms] == [True, True]
    assert by_id["sip8845_65.12-8-1-0001-455"].models == ["CP-8845", "CP-8865NR", "CP-8865"]
    assert cat.problems == []


@pytest.mark.parametrize("wrap", ["container5", "unknown 428-byte header"])
def test_cop_behind_another_header_is_read(lib, wrap):
    """The header of a .k3/.k4 COP is UNCONFIRMED: a 5th-generation container, or one no parser knows (the gzip
    data is then found by its magic, as a field note does with dd)."""
    root, cache = lib
    name = "cmterm-78xx.14-4-1-0301-6.k4.cop.sha512"
    tgz = synth.cop_bytes(synth.load_files("sip78xx.14-4-1-0301-6", size_bytes=30_000), filename=name)
    tgz = tgz[parse_signed_header(tgz).length:]
    data = synth.gen5_file(name, tgz) if wrap == "container5" else b"\x55" * 428 + tgz
    (root / name).write_bytes(data)
    settled(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert cat.load("sip78xx.14-4-1-0301-6").complete and cat.problems == []


def test_cop_with_a_damaged_container_header_is_refused(lib):
    root, cache = lib
    name = "cmterm-78xx.14-4-1-0301-6.k4.cop.sha512"
    tgz = synth.cop_bytes(synth.load_files("sip78xx.14-4-1-0301-6", size_bytes=30_000), filename=name)
    data = synth.gen5_file(name, tgz[parse_signed_header(tgz).length:])
    (root / name).write_bytes(data[:-10])
    settled(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert cat.loads == [] and any("bad 5th-generation header: truncated" in p for p in cat.problems)
