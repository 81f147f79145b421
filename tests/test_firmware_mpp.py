"""Multiplatform (MPP, 3PCC) names, load IDs and User-Agents (appliance/firmware/mpp.py, names.py, versions.py).

Shapes from phone-families.md §3.1-3.4: profile requests `8851-3PCC.xml`, `/Cisco/CP-8851-3PCC/001234ab45de.cfg`;
loads `sip88xx.11-3-3MPP0001-377`, `sip8845_65.11-3-3MPP0001-377`, `sip68xx.12-0-7MPP0301-92`, `sip88xx.11-2-3MPP-398`,
transition `sip78xx.TLexE2M-11-2-3C-12`; User-Agent `Cisco-CP-8841-3PCC/11.0 (00562b043615)`; licence `AB123456DE78.lic`.
"""
from __future__ import annotations

import pytest

from appliance.firmware import mpp
from appliance.firmware.models import by_name, model_from_vendor_class, models_for_load, normalize_model
from appliance.firmware.names import Kind, classify
from appliance.firmware.versions import family, firmware_type, protocol, version_key


@pytest.mark.parametrize("asked,model,mac", [
    ("8851-3PCC.xml", "CP-8851", None), ("/8851-3PCC.xml", "CP-8851", None), ("6821-3pcc.XML", "CP-6821", None),
    ("/Cisco/CP-8851-3PCC/001234ab45de.cfg", "CP-8851", "001234ab45de"),
    ("cisco/cp-7841-3pcc/001234AB45DE.CFG", "CP-7841", "001234ab45de"),
    ("\\Cisco\\CP-8865NR-3PCC\\001234ab45de.cfg", "CP-8865NR", "001234ab45de"),
])
def test_profile_requests_any_case(asked, model, mac):
    name = classify(asked)
    assert name.kind is Kind.PROFILE and name.model == model and name.mac == mac


@pytest.mark.parametrize("asked", [
    "../8851-3PCC.xml", "Cisco/../8851-3PCC.xml", "x/8851-3PCC.xml", "88512-3PCC.xml", "8851-3PCC.xml.bak",
    "Cisco/CP-8851-3PCC/001234ab45d.cfg", "Cisco/CP-8851-3PCC/001234ab45dg.cfg", "Cisco/CP-8851-3PCC/../x.cfg",
    "Cisco/CP-8851-3PCC/001234ab45de.cfg/x", "8851-3PCC" + "x" * 200 + ".xml", "８８５１-3PCC.xml",
])
def test_what_is_not_a_profile(asked):
    assert classify(asked).kind is not Kind.PROFILE


def test_a_licence_name_carries_its_mac_and_every_lic_is_a_licence():
    assert mpp.licence_name("ab:12:34:56:de:78") == "AB123456DE78.lic" == mpp.licence_name("ab123456de78")
    assert classify("AB123456DE78.lic").kind is Kind.LICENCE and classify("AB123456DE78.lic").mac == "ab123456de78"
    assert classify("/licences/ab123456de78.LIC").mac == "ab123456de78"
    assert classify("secret.lic").kind is Kind.LICENCE and classify("secret.lic").mac is None
    with pytest.raises(ValueError):
        mpp.licence_name("nonsense")


@pytest.mark.parametrize("load,kind,key,fam", [
    ("sip88xx.11-3-3MPP0001-377", "mpp", (11, 3, 3, 0, 377), "sip88xx"),
    ("sip8845_65.11-3-3MPP0001-377.loads", "mpp", (11, 3, 3, 0, 377), "sip8845_65"),
    ("sip78xx.11-3-5MPP0001-10", "mpp", (11, 3, 5, 0, 10), "sip78xx"),
    ("sip68xx.12-0-7MPP0301-92", "mpp", (12, 0, 7, 3, 92), "sip68xx"),
    ("sip88xx.11-2-3MPP-398", "mpp", (11, 2, 3, 0, 398), "sip88xx"),
    ("sip78xx.TLexE2M-11-2-3C-12", "transition", (11, 2, 3, 0, 12), "sip78xx"),
    ("sip8845_65.TLexE2M-11-2-3C-12", "transition", (11, 2, 3, 0, 12), "sip8845_65"),
    ("sip78xx.14-0-1-0001-135", "enterprise", (14, 0, 1, 0, 135), "sip78xx"),
    ("SCCP45.9-4-2SR4-3S", "enterprise", (9, 4, 2, 4, 3), "SCCP45"),
])
def test_firmware_type_version_and_family(load, kind, key, fam):
    assert firmware_type(load) == kind and version_key(load) == key and family(load) == fam
    assert protocol(load) == {"mpp": "mpp", "transition": "transition"}.get(kind, protocol(load))


def test_mpp_and_enterprise_are_separate_products_and_order_within_mpp():
    assert protocol("sip88xx.12-5-1SR3-74") == "sip" and protocol("sip88xx.11-3-3MPP0001-377") == "mpp"
    ordered = ["sip88xx.11-2-3MPP-398", "sip88xx.11-3-3MPP0001-377", "sip88xx.11-3-5MPP0001-1", "sip88xx.12-0-1MPP0001-9"]
    assert sorted(reversed(ordered), key=lambda x: version_key(x) or ()) == ordered
    assert firmware_type("nonsense") is None and firmware_type(None) is None and firmware_type("x" * 200) is None


def test_6800_models_are_mpp_only_and_3pcc_spellings_are_the_model():
    assert models_for_load("sip68xx.12-0-7MPP0301-92") == ["CP-6841", "CP-6851", "CP-6861", "CP-6871"]
    assert models_for_load("sip6821.12-0-7MPP0301-92") == ["CP-6821"]
    assert all(by_name(m).mpp_only and by_name(m).source for m in ("6821", "6841", "6851", "6861", "6871"))
    assert not by_name("8851").mpp_only
    assert normalize_model("CP-8851-3PCC") == "CP-8851" and normalize_model("8865NR-3PCC") == "CP-8865NR"
    assert model_from_vendor_class("Cisco Systems, Inc. IP Phone CP-6871-3PCC\x00") == "CP-6871"
    assert mpp.is_mpp_vendor_class("Cisco Systems, Inc. IP Phone CP-8851-3PCC\x00")
    assert not mpp.is_mpp_vendor_class("Cisco Systems, Inc. IP Phone CP-8851")
    assert models_for_load("sip78xx.TLexE2M-11-2-3C-12") == ["CP-7811", "CP-7821", "CP-7841", "CP-7861"]


def test_user_agent_model_version_mac():
    ua = mpp.parse_user_agent("Cisco-CP-8841-3PCC/11.0 (00562b043615)")
    assert ua == mpp.UserAgent("CP-8841", "11.0", "00562b043615")
    assert mpp.parse_user_agent(b"Cisco-CP-6821-3PCC/12.0.3_a1 (00562B043615) extra").mac == "00562b043615"


@pytest.mark.parametrize("hostile", [
    None, "", "curl/8.0", "Cisco-CP-8841-3PCC/11.0", "Cisco-CP-8841-3PCC/11.0 (00562b04361)",
    "Cisco-CP-8841-3PCC/11.0 (00562b04361z)", "Cisco-CP-8841-3PCC/11.0\x1b[2J (00562b043615)",
    "Cisco-CP-8841-3PCC/" + "1" * 41 + " (00562b043615)", "Cisco-CP-8841-3PCC/11.0 (00562b043615)" + "x" * 300,
    "Cisco-CP-8841-3PCC/11.0 (00562b043615)\n", "Cisco-CP-8841-3PCC/1é (00562b043615)", b"\xff\xfe",
    "Cisco-CP-88411-3PCC/11.0 (00562b043615)", "Cisco-CP-8841-3PCC/<script> (00562b043615)",
])
def test_hostile_user_agents_are_refused(hostile):
    assert mpp.parse_user_agent(hostile) is None


def test_a_reported_version_matches_its_load_on_every_number_it_gives():
    key = version_key("sip88xx.11-3-3MPP0001-377")
    assert mpp.reports("11.3.3", key) and mpp.reports("11.3", key) and mpp.reports("11.3(3)", key)
    assert not mpp.reports("11.0", key) and not mpp.reports("11", key) and not mpp.reports("", key)
    assert not mpp.reports("11.3.3", None)
