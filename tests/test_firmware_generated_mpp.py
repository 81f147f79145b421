"""Multiplatform (3PCC) flat profiles from appliance/firmware/generated.py, named by the core's answer table.

What a profile says (phone-families.md §3.1, §3.4): `<Upgrade_Rule>` names a `.loads` URL over the scheme the phone
used; for a conversion `<Trans_Auth_Rule>` names `$MAU.lic` and `<Trans_Auth_Type>` is Classic.  Parsed with
xml.etree, as a phone's XML reader would.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from appliance.firmware.generated import Generated, mpp_default_key, per_phone
from appliance.firmware.licences import Licences
from appliance.recovery.answers import AnswerTable
from appliance.recovery.facts import Answer, Answers

MPP_OLD, MPP_NEW = "sip88xx.11-3-1MPP0001-100", "sip88xx.11-3-3MPP0001-377"
ENT = "sip88xx.12-5-1SR3-74"
A, B = "00562b043615", "00562b043616"     # an 8851 at .51 and an 8841 at .41


def station(tmp_path, rows=(), defaults=None, licences=()):
    (tmp_path / "licences").mkdir(parents=True, exist_ok=True)
    for mac in licences:
        (tmp_path / "licences" / f"{mac.upper()}.lic").write_bytes(b"licence\n")
    table = AnswerTable()
    table.apply(Answers(1, tuple(rows), defaults if defaults is not None else (("CP-8851-3PCC", MPP_NEW),)))
    cfg = SimpleNamespace(network=SimpleNamespace(address="10.9.0.1"), tftp=SimpleNamespace(http_port=6970))
    return Generated(cfg, None, table, licences=Licences(tmp_path))


def parse(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "flat-profile"
    return {e.tag: e.text or "" for e in root}


def test_the_lease_holder_gets_its_own_load_over_the_scheme_it_used(tmp_path):
    gen = station(tmp_path, [Answer(A, "10.9.0.51", "CP-8851", MPP_OLD, MPP_OLD, None)])
    body, load = gen.render_named("8851-3PCC.xml", "10.9.0.51", proto="tftp")
    assert load == MPP_OLD and parse(body) == {"Upgrade_Rule": f"tftp://10.9.0.1/{MPP_OLD}.loads"}
    body, _ = gen.render_named(f"/Cisco/CP-8851-3PCC/{A}.cfg", "10.9.0.51", proto="http")
    assert parse(body)["Upgrade_Rule"] == f"http://10.9.0.1:6970/{MPP_OLD}.loads"


def test_a_stranger_gets_the_models_default_and_never_a_licence(tmp_path):
    gen = station(tmp_path, [Answer(A, "10.9.0.51", "CP-8851", MPP_OLD, MPP_OLD, None)], licences=[A])
    for ip, name in (("10.9.0.99", "8851-3PCC.xml"), (None, "8851-3PCC.xml"),
                     ("10.9.0.51", f"Cisco/CP-8851-3PCC/{B}.cfg"),    # another MAC's name from A's address
                     ("10.9.0.51", "8841-3PCC.xml")):                 # another model's name
        body, load = gen.render_named(name, ip)
        if name.startswith("8841"):
            assert body is None and load is None      # no default for the 8841 in this table: not found
            continue
        assert load == MPP_NEW and "Trans_Auth_Rule" not in parse(body), (ip, name)


def test_a_licence_present_for_the_holder_adds_the_transition_rule(tmp_path):
    gen = station(tmp_path, [Answer(A, "10.9.0.51", "CP-8851", MPP_NEW, MPP_NEW, None)], licences=[A])
    got = parse(gen.render_named("8851-3PCC.xml", "10.9.0.51", proto="http")[0])
    assert got == {"Upgrade_Rule": f"http://10.9.0.1:6970/{MPP_NEW}.loads",
                   "Trans_Auth_Rule": "http://10.9.0.1:6970/$MAU.lic", "Trans_Auth_Type": "Classic"}


def test_an_enterprise_load_is_named_only_for_a_licensed_conversion(tmp_path):
    """The core names an Enterprise load for an MPP phone only when converting it back; without its licence the
    profile never hands an MPP phone an Enterprise load (it would refuse it, or worse)."""
    rows = [Answer(A, "10.9.0.51", "CP-8851", ENT, ENT, None)]
    assert station(tmp_path / "a", rows).render_named("8851-3PCC.xml", "10.9.0.51")[1] == MPP_NEW
    gen = station(tmp_path / "b", rows, licences=[A])
    body, load = gen.render_named("8851-3PCC.xml", "10.9.0.51")
    assert load == ENT and parse(body)["Trans_Auth_Type"] == "Classic"


def test_values_are_escaped_and_a_row_naming_no_mpp_load_gets_the_default(tmp_path):
    gen = station(tmp_path, [Answer(A, "10.9.0.51", "CP-8851", 'sip88xx.11-3-3MPP0001-1"<x>&', None, None)])
    gen.address = 'station&<x>"'
    body, load = gen.render_named("8851-3PCC.xml", "10.9.0.51")
    assert load == MPP_NEW and b"<x>" not in body
    assert parse(body)["Upgrade_Rule"] == f'tftp://station&<x>"/{MPP_NEW}.loads'


def test_no_load_no_profile_and_profiles_are_per_phone(tmp_path):
    gen = station(tmp_path, defaults=())
    assert gen.render_named("8851-3PCC.xml", "10.9.0.51") == (None, None)
    assert per_phone("8851-3PCC.xml") and per_phone("Cisco/CP-8851-3PCC/00562b043615.cfg")
    assert per_phone("AB123456DE78.lic") and not per_phone("XMLDefault.cnf.xml")
    assert mpp_default_key("8851") == "CP-8851-3PCC"


@pytest.mark.parametrize("load", [MPP_NEW, "sip78xx.TLexE2M-11-2-3C-12"])
def test_xmldefault_never_names_a_multiplatform_or_transition_load(tmp_path, load):
    gen = station(tmp_path, defaults=(("CP-8851", load), ("CP-6851", "sip68xx.12-0-7MPP0301-92"),
                                      ("CP-8841", ENT)))
    assert [x[2] for x in gen.default_loads()] == [ENT]
