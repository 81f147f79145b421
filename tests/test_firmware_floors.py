"""Hardware-revision floors: the table's rows against the reference's §1.4, both readings, and bad tables named."""
from __future__ import annotations

import pytest

from appliance.firmware import floors
from appliance.firmware.floors import FloorsError, floor_for, highest_floor, load_rows, parse_vid
from appliance.firmware.versions import version_key

# (model, VID, minimum, safe): phone-families.md §1.4, written down by hand
CASES = [
    ("7841", "V02", "10.1(1)SR1", "10.1(1)SR1"),          # RN 10.1(1)SR1
    ("CP-7841", "V03", None, "10.1(1)SR1"),               # "original" hardware: no floor of its own
    ("7841", "V04", "10.3(1)", "10.3(1)"),                # admin guide: current hardware
    ("7811", "V01", "10.3(1)", "10.3(1)"),
    ("7821", "V03", "10.3(1)", "10.3(1)"),
    ("7861", "V03", "10.3(1)", "10.3(1)"),
    ("7841", "V18", "14.0(1)SR2", "14.0(1)SR2"),          # RN 14.0(1)SR2
    ("7841", "V19", "10.3(1)", "14.0(1)SR2"),             # named by no source: floors only rise
    ("7841", "V20", "14.0(1)", "14.0(1)SR3"),             # RN 14.0(1) / FN70546 vs RN 14.0(1)SR3
    ("7821", "v21", "14.0(1)", "14.0(1)SR3"),
    ("7861", 20, "14.0(1)", "14.0(1)SR3"),
    ("8811", "V08", "11.7(1)", "11.7(1)"),                # RN 11.7(1)
    ("8851NR", "V08", "11.7(1)", "11.7(1)"),
    ("8841", "V15", "12.6(1)", "12.6(1)"),                # FN70546
    ("8861", "V15", "12.6(1)", "12.6(1)"),
    ("8861", "V08", None, None),                          # "no 8861 change" in 11.7(1)
    ("7821", "V01", None, None),                          # original hardware, no floor written
    ("7965", "V04", None, None),                          # 79xx: no Cisco text found
    ("7841", None, None, None), ("7841", "1.0", None, None), ("7841", "", None, None),
]


@pytest.mark.parametrize("model,vid,minimum,safe", CASES)
def test_floor_for(model, vid, minimum, safe):
    f = floor_for(model, vid)
    if minimum is None and safe is None:
        assert f is None
        return
    assert f is not None and f.minimum == minimum and f.safe == safe and f.sources
    assert f.minimum_key == (version_key(minimum) if minimum else None) and f.safe_key == version_key(safe)


def test_load_ids_against_a_v20_7841():
    f = floor_for("CP-7841", "V20")
    assert not f.allows(version_key("sip78xx.11-0-1-11")) and not f.allows(version_key("sip78xx.12-5-1SR3-74"))
    assert f.allows(version_key("sip78xx.14-0-1-0001-135")) and not f.safe_for(version_key("sip78xx.14-0-1-0001-135"))
    assert f.allows(version_key("sip78xx.14-0-1-0201-169")) and not f.safe_for(version_key("sip78xx.14-0-1-0201-169"))
    assert f.safe_for(version_key("sip78xx.14-4-1-0301-6")) and not f.allows(None)
    v18 = floor_for("7841", "V18")
    assert v18.allows(version_key("sip78xx.14-0-1-0201-169")) and not v18.allows(version_key("sip78xx.14-0-1-0001-135"))


def test_mpp_floors_are_apart():
    assert floor_for("8841", "V15", "mpp").minimum == "11.3(3)"
    assert floor_for("7841", "V20", "mpp") is None


def test_highest_floor_for_an_unknown_vid():
    assert highest_floor("7841").safe == "14.0(1)SR3" and highest_floor("8851").safe == "12.6(1)"
    assert highest_floor("8851NR").safe == "11.7(1)" and highest_floor("7965") is None


def test_every_row_has_a_source_and_a_cisco_url():
    assert len(floors.ROWS) >= 9
    for row in floors.ROWS:
        assert "cisco.com" in row.source


@pytest.mark.parametrize("vid,expected", [("V04", 4), ("v4", 4), ("04", 4), (" V20 ", 20), (15, 15), ("V0", None),
                                          ("V100", None), ("1.0", None), (None, None), (True, None), ("V2\x1b", None)])
def test_parse_vid(vid, expected):
    assert parse_vid(vid) == expected


ROW = '[[floor]]\nmodels = ["CP-7841"]\nvid_from = 20\nfirmware = "enterprise"\nminimum = "14.0(1)"\nsource = "x"\n'


@pytest.mark.parametrize("text,words", [
    (ROW + "colour = 1\n", "floor 1: unknown key colour"),
    (ROW.replace('"CP-7841"', '"7841"'), "'7841' is not a canonical model name"),
    (ROW.replace('"CP-7841"', '"CP-9999"'), "'CP-9999' is not a canonical model name"),
    (ROW.replace("vid_from = 20", "vid_from = 0"), "floor 1: vid_from must be"),
    (ROW + "vid_to = 3\n", "floor 1: vid_to must be"),
    (ROW.replace('"enterprise"', '"cloud"'), "floor 1: firmware must be one of"),
    (ROW.replace('"14.0(1)"', '"14.0"'), "floor 1: minimum = '14.0' is not a release"),
    (ROW + 'stricter = "10.3(1)"\n', "stricter 10.3(1) is not above minimum 14.0(1)"),
    (ROW.replace('source = "x"', 'source = " "'), "floor 1: source is missing"),
    (ROW + ROW.replace("20", "x"), "not TOML"),
    (ROW + ROW.replace("models = [\"CP-7841\"]\n", ""), "floor 2: models must be"),
])
def test_bad_tables_name_row_and_key(text, words):
    with pytest.raises(FloorsError) as exc:
        load_rows(text)
    assert words in str(exc.value)
