"""Conversion licences in the firmware volume (appliance/firmware/licences.py): found by MAC in any case, judged,
kept out of the firmware library."""
from __future__ import annotations

import os

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.licences import Licences

MAC = "ab123456de78"


def test_a_licence_is_found_by_its_mac_in_any_spelling(tmp_path):
    (tmp_path / "licences").mkdir()
    (tmp_path / "licences" / "AB123456DE78.lic").write_bytes(b"licence for AB:12:34:56:DE:78\n")
    lic = Licences(tmp_path)
    assert lic.present(MAC) and lic.present("AB:12:34:56:DE:78") and lic.present("ab-12-34-56-de-78")
    assert lic.read(MAC) == b"licence for AB:12:34:56:DE:78\n"
    assert not lic.present("ab123456de79") and not lic.present(None) and not lic.present("nonsense")


def test_the_other_spelling_of_the_folder_and_a_lower_case_file_name(tmp_path):
    (tmp_path / "Licenses").mkdir()
    (tmp_path / "Licenses" / "ab123456de78.LIC").write_bytes(b"x")
    assert Licences(tmp_path).present(MAC)


def test_what_cannot_be_a_licence_is_absent_and_said_so(tmp_path):
    folder = tmp_path / "licences"
    folder.mkdir()
    lic = Licences(tmp_path)
    (folder / "AB123456DE78.lic").write_bytes(b"")
    assert not lic.present(MAC) and lic.problems() == {MAC: "empty"}
    (folder / "AB123456DE78.lic").write_bytes(b"MAC=001122334455 signed ...")
    assert not lic.present(MAC) and "another phone" in lic.problems()[MAC]
    (folder / "AB123456DE78.lic").write_bytes(b"x" * (65 * 1024))
    assert not lic.present(MAC) and "larger" in lic.problems()[MAC]
    (folder / "AB123456DE78.lic").unlink()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not a licence")
    os.symlink(secret, folder / "AB123456DE78.lic")
    assert not lic.present(MAC)
    (folder / "AB123456DE78.lic").unlink()
    # 12 hex digits by chance inside signed content are not a MAC; its own MAC among others is accepted
    (folder / "AB123456DE78.lic").write_bytes(b"sig: zz0a1b2c3d4e5fzz mac ab:12:34:56:de:78, 00-11-22-33-44-55")
    assert lic.present(MAC) and MAC not in lic.problems()
    assert all(b"sig" not in v.encode() for v in lic.problems().values())


def test_licences_are_never_part_of_the_firmware_library(tmp_path):
    root = tmp_path / "fw"
    synth.write_zip(root, "sip88xx.11-3-3MPP0001-377", size_bytes=4000)
    (root / "licences").mkdir()
    (root / "licences" / "AB123456DE78.lic").write_bytes(b"licence")
    cat = Catalog(root, tmp_path / "state")
    cat.scan()
    assert cat.resolve("AB123456DE78.lic") is None and cat.resolve("licences/AB123456DE78.lic") is None
    assert not [f for f in cat.files() if f[0].lower().endswith(".lic")]
    assert cat.newest_complete("CP-8851", "mpp").id == "sip88xx.11-3-3MPP0001-377"
