"""7800/8800 files judged by content in the catalog: intact ones served, damaged or misnamed ones named and never served.

The library of issue 26's done-when: a byte-faithful cmterm-78xx zip, 69xx and 894x loads, and one 7800
component whose SHA-256 does not match its header.  Bad input (a truncated container, a header length past
the end, a payload length that disagrees with the file, an INI with a duplicate or missing section, a platform
listing a file the library lacks, a header naming another file) is each a named problem, nothing is written to
the firmware volume, and the rest of the library is still served.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import zipfile

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.tftp.files import Files

from .test_firmware_catalog import age, snapshot
from .test_firmware_tftp import free_udp_port

L78 = "sip78xx.11-0-1-11"
L69 = "SCCP69xx.9-4-1-3SR3"
L69SIP = "SIP69xx.9-4-1-3SR3"
L894 = "SCCP894x.9-4-2SR1-2"
ROOTFS2 = "rootfs2.78xx.11-0-1-11.sbn"


def damaged(data: bytes, at: int = -7) -> bytes:
    buf = bytearray(data)
    buf[at] ^= 0x5A
    return bytes(buf)


@pytest.fixture
def shelf(tmp_path):
    """The done-when library: a cmterm-78xx zip, 69xx (SCCP loose, SIP zip), an 894x zip, a damaged loose rootfs2."""
    root = tmp_path / "fw"
    root.mkdir()
    (zip78,) = synth.write_zip(root, L78, size_bytes=120_000)
    synth.write_load(root, L69, size_bytes=30_000)
    synth.write_zip(root, L69SIP, size_bytes=30_000)
    synth.write_zip(root, L894, size_bytes=45_000)
    with zipfile.ZipFile(zip78) as zf:
        good = zf.read(ROOTFS2)
    (root / ROOTFS2).write_bytes(damaged(good))     # a loose copy would win over the zip's: it must not
    age(root)
    return root, tmp_path / "state" / "cache" / "firmware", good


def test_done_when_library_lists_every_load_complete_and_never_serves_the_damaged_file(shelf):
    root, cache, good = shelf
    assert zipfile.ZipFile(root / "cmterm-78xx.11-0-1-11.zip").namelist()[0] == f"{L78}.loads"
    before = snapshot(root)
    cat = Catalog(root, cache)
    cat.scan()
    assert snapshot(root) == before
    by_id = {load.id: load for load in cat.loads}
    assert set(by_id) == {L78, L69, L69SIP, L894}
    assert all(load.complete for load in cat.loads), [(load.id, load.missing, load.refused) for load in cat.loads]
    load = by_id[L78]
    assert load.format == "container5" and [p["name"] for p in load.platforms] == ["PLATFORM_1", "PLATFORM_2"]
    assert all(p["complete"] for p in load.platforms) and ROOTFS2 in load.platforms[1]["files"]
    assert load.evidence == {"hwcompat": "0x00000003", "swcompat": "0x00000004", "transition": "0x00000000"}
    assert set(load.models) >= {"CP-7811", "CP-7821", "CP-7841", "CP-7861"}
    assert by_id[L69].format == "tlv" and len(by_id[L894].components) == 9
    # the damaged copy is named, with what to do, and never served: the zip's intact copy is
    (problem,) = [p for p in cat.problems if ROOTFS2 in p]
    assert problem.startswith(f"{ROOTFS2}: not served: the payload's SHA-256") and "copy it again" in problem
    assert cat.corrupt() == {ROOTFS2: problem.split(": not served: ", 1)[1].split("; copy", 1)[0]}
    served = cat.resolve(ROOTFS2.upper())
    assert served is not None and served.read_bytes() == good and served != root / ROOTFS2
    assert all(path != root / ROOTFS2 for _, path, _ in cat.files())
    # the file layer TFTP and HTTP share asks the catalog, so it opens the intact copy too
    files = Files(root, cat, cache_dir=cache)
    name, source = files.open(f"/{ROOTFS2}")
    assert source is not None and source.resolved == str(served) and bytes(source.read(0, source.size)) == good
    source.close()


def test_a_damaged_only_copy_leaves_its_platform_incomplete_and_is_not_found(shelf):
    root, cache, good = shelf
    (root / "cmterm-78xx.11-0-1-11.zip").unlink()
    for name, data in synth.load_files(L78, size_bytes=120_000).items():
        (root / name).write_bytes(damaged(data) if name == ROOTFS2 else data)
    cat = Catalog(root, cache)
    cat.scan()
    load = cat.load(L78)
    p1, p2 = load.platforms
    assert p1["complete"] and not p2["complete"] and not load.complete and load.missing == []
    assert p2["refused"] and p2["refused"][0].startswith(f"{ROOTFS2}: not served: the payload's SHA-256")
    assert cat.resolve(ROOTFS2) is None and Files(root, cat, cache_dir=cache).open(ROOTFS2)[1] is None
    assert cat.resolve("kern2.78xx.11-0-1-11.sbn") is not None
    # repaired in place: judged again (size and mtime changed), served
    (root / ROOTFS2).write_bytes(good)
    os.utime(root / ROOTFS2, ns=(1, 1))
    cat.scan()
    assert cat.load(L78).complete and cat.resolve(ROOTFS2) is not None and cat.corrupt() == {}


def _container(name: str, payload: bytes) -> bytes:
    return synth.gen5_file(name, payload)


def _bad_inputs(files: dict[str, bytes]) -> dict[str, tuple[bytes, str]]:
    """{file name: (bad content, words its problem must contain)}"""
    kern = files["kern78xx.11-0-1-11.sbn"]
    ini = synth.gen5_manifest_text("sip78xx.12-5-1SR3-74", {n: 10 for _, fs in synth.gen5_platforms(
        "sip78xx.12-5-1SR3-74") for _, n in fs})
    return {
        "kern78xx.11-0-1-11.sbn": (kern[:200], "truncated"),
        "sboot78xx.11-0-1-11.sbn": (files["sboot78xx.11-0-1-11.sbn"][:-100], "the file ends after"),
        "kern2.78xx.11-0-1-11.sbn": (files["kern2.78xx.11-0-1-11.sbn"] + b"\0", "bytes after its 336-byte header"),
        "sboot2.78xx.11-0-1-11.sbn": (files["kern2.78xx.11-0-1-11.sbn"], "signed as 'kern2.78xx.11-0-1-11.sbn'"),
        "sip78xx.12-5-1SR3-74.loads": (_container("sip78xx.12-5-1SR3-74.loads",
                                                  (ini + "[PLATFORM_1]\nkern=k.sbn size=1\n").encode()),
                                       "section [PLATFORM_1] appears twice"),
        "sip78xx.12-8-1-0001-455.loads": (_container("sip78xx.12-8-1-0001-455.loads",
                                                     ini.replace("[CISCO-ID]", "[CISCO]").encode()), "no [CISCO-ID] section"),
    }


def test_bad_input_is_named_nothing_is_written_and_the_rest_is_served(tmp_path):
    root = tmp_path / "fw"
    root.mkdir()
    files = synth.load_files(L78, size_bytes=60_000)
    bad = _bad_inputs(files)
    for name, data in files.items():
        (root / name).write_bytes(bad[name][0] if name in bad else data)
    for name, (data, _) in bad.items():
        if name not in files:
            (root / name).write_bytes(data)
    synth.write_load(root, L69, size_bytes=20_000)
    # a platform listing a file the library lacks
    lacking = synth.load_files("sip88xx.12-8-1-0001-455", size_bytes=30_000)
    del lacking["rootfs2.88xx.12-8-1-0001-455.sbn"]
    for name, data in lacking.items():
        (root / name).write_bytes(data)
    before = snapshot(root)
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    assert snapshot(root) == before
    text = "\n".join(cat.problems)
    for name, (_, words) in bad.items():
        line = next((p for p in cat.problems if p.startswith(name)), "")
        assert words in line, (name, words, text)
    for name in ("kern78xx.11-0-1-11.sbn", "sboot78xx.11-0-1-11.sbn", "kern2.78xx.11-0-1-11.sbn",
                 "sboot2.78xx.11-0-1-11.sbn"):
        assert cat.resolve(name) is None, name
    load = cat.load(L78)
    assert not load.complete and not any(p["complete"] for p in load.platforms)
    l88 = cat.load("sip88xx.12-8-1-0001-455")
    assert l88.platforms[0]["complete"] and l88.platforms[1]["missing"] == ["rootfs2.88xx.12-8-1-0001-455.sbn"]
    # the rest of the library is still served
    assert cat.load(L69).complete and cat.resolve(f"{L69}.loads") is not None
    assert cat.resolve("rootfs78xx.11-0-1-11.sbn") is not None


def test_a_header_length_field_past_the_end_is_named(tmp_path):
    root = tmp_path / "fw"
    root.mkdir()
    data = bytearray(synth.load_files(L78, size_bytes=30_000)["kern78xx.11-0-1-11.sbn"])
    data[4:8] = struct.pack("<I", 4000)
    (root / "kern78xx.11-0-1-11.sbn").write_bytes(bytes(data[:3000]))
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    assert any("header length 4000 (at byte 4) runs past the end of the file at byte 3000" in p for p in cat.problems)
    assert cat.resolve("kern78xx.11-0-1-11.sbn") is None


def test_content_not_extension_decides(tmp_path):
    """A container under an unusual extension is still judged; a non-container .sbn is left alone."""
    root = tmp_path / "fw"
    root.mkdir()
    (root / "odd.name.txt").write_bytes(damaged(_container("odd.name.txt", b"x" * 500)))
    (root / "plain.sbn").write_bytes(b"\x27\x05\x19\x56" + bytes(500))
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    assert cat.resolve("odd.name.txt") is None and cat.resolve("plain.sbn") is not None
    assert list(cat.corrupt()) == ["odd.name.txt"]


def test_verdicts_are_remembered_across_catalogs_and_rehash_reads_again(shelf):
    root, cache, _ = shelf
    first = Catalog(root, cache)
    first.scan()
    assert first.integrity.hashed_bytes > 100_000
    state = cache / "integrity-v1.json"
    os.utime(state, (1, 1))                    # old: the cache pruning must still leave it alone
    second = Catalog(root, cache)
    second.scan()
    assert state.exists()
    assert second.integrity.hashed_bytes == 0 and second.corrupt() == first.corrupt()
    third = Catalog(root, cache)
    third.rehash = True
    seen = []
    third.progress = lambda done, total, name: seen.append((done, total))
    third.scan()
    assert third.integrity.hashed_bytes > 100_000 and seen[-1][0] == seen[-1][1] > 0
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


def test_real_tftp_client_gets_the_intact_copy(shelf, tmp_path):
    """tftp-hpa fetches rootfs2 through a stock tftpy server that asks only the catalog (as test_firmware_tftp)."""
    tftpy = pytest.importorskip("tftpy")
    if shutil.which("tftp") is None:
        pytest.skip("tftp-hpa missing (make test installs it)")
    root, cache, good = shelf
    cat = Catalog(root, cache)
    cat.scan()

    def answer(name, raddress=None, rport=None):
        path = cat.resolve(name)
        return open(path, "rb") if path else None

    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_udp_port()
    server = tftpy.TftpServer(str(empty), dyn_file_func=answer)
    thread = threading.Thread(target=server.listen, args=("127.0.0.1", port), daemon=True)
    thread.start()
    try:
        out = tmp_path / "got"
        r = subprocess.run(["tftp", "127.0.0.1", str(port), "-m", "binary", "-c", "get", ROOTFS2, str(out)],
                           capture_output=True, text=True, timeout=30)
        assert out.read_bytes() == good, r.stderr + r.stdout
    finally:
        server.stop(now=True)
        thread.join(5)


def test_a_manifest_renamed_is_not_a_load_and_not_served(tmp_path):
    """A 7800 manifest copied under another load's name carries the wrong signed name: a phone refuses it."""
    root = tmp_path / "fw"
    root.mkdir()
    synth.write_load(root, L78, size_bytes=30_000)
    (root / "sip78xx.12-5-1SR3-74.loads").write_bytes((root / f"{L78}.loads").read_bytes())
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    assert [load.id for load in cat.loads] == [L78] and cat.load(L78).complete
    assert cat.resolve("sip78xx.12-5-1SR3-74.loads") is None and cat.resolve(f"{L78}.loads") is not None
    (problem,) = cat.problems
    assert problem.startswith("sip78xx.12-5-1SR3-74.loads: not served: signed as 'sip78xx.11-0-1-11.loads'")
