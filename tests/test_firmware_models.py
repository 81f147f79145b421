"""Load-ID ordering and the model table, on real IDs and strings from the reference (cisco-phones.md §1.3, §3.4, §4)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.firmware import models, versions
from appliance.firmware.models import by_name, model_from_vendor_class, models_for_load, normalize_model
from appliance.firmware.versions import family, version_key

ORDERED = [
    ["SCCP45.8-5-2S", "SCCP45.8-5-2SR1S", "SCCP45.9-3-1SR1-1S", "SCCP45.9-4-2SR4-3S"],
    ["P00303010102", "P00305000500", "P00308000900", "P00308010100", "P00308010200", "P0030801SR02"],
    ["P0S3-07-2-00", "P0S3-8-12-00"],
    ["SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR3"],
    ["sip78xx.10-1-1SR1-4", "sip78xx.11-0-1-11"],
    ["sip88xx.12-0-1MN-113", "sip88xx.12-5-1SR3-74"],
    ["CP7921G-1.4.1SR1", "CP7921G-1.4.6.3"],
    ["SCCP11.9-4-2SR1-1S", "SCCP11.9-4-2SR3-1S"],
]


@pytest.mark.parametrize("ids", ORDERED, ids=lambda ids: ids[0])
def test_orders_real_load_ids(ids):
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ids
    assert all(version_key(a) < version_key(b) for a, b in zip(ids, ids[1:], strict=False))


def test_load_ids_share_the_human_version_scale():
    assert version_key("SCCP45.8-5-2S") == version_key("8.5(2)")
    assert version_key("SCCP45.8-5-2SR1S") == version_key("8.5(2)SR1")
    assert version_key("P00308010100") == version_key("8.1(1)")
    assert version_key("8.3(3)") <= version_key("SCCP42.8-5-2S") <= version_key("8.5(2)") < version_key("SCCP42.8-5-2SR1S")
    assert version_key("SCCP45.9-4-2SR4-3S.loads") == version_key("SCCP45.9-4-2SR4-3S")


def test_sr_form_known_and_inferred():
    """§0.0 item 8: P0030801SR02 is 8.1(2)SR2; an SR-form ID with no entry in versions.toml sorts after
    every numbered maintenance release of its minor version (the documented inference)."""
    assert version_key("P0030801SR02") == version_key("8.1(2)SR2") > version_key("P00308010200")
    assert version_key("P0030801SR02") < version_key("8.1(3)")
    assert version_key("P0030901SR01") == (9, 1, versions.SR_FORM_MAINT, 1, 0) > version_key("P00309010900")


@pytest.mark.parametrize("text", ["", "garbage", "SCCP45", "term65.default", "\u00e9SCCP45.9-4-2", "x" * 200, None])
def test_unparseable_is_none(text):
    assert version_key(text) is None


@pytest.mark.parametrize("load,fam", [
    ("SCCP45.9-4-2SR4-3S", "SCCP45"), ("SCCP42.8-5-2S", "SCCP42"), ("SCCP41.9-4-2SR3-1S", "SCCP41"),
    ("SCCP11.9-4-2SR1-1S", "SCCP11"), ("SCCP70.9-4-2SR3-1S", "SCCP70"), ("SCCP75.9-4-2SR3-1S", "SCCP75"),
    ("P00308010100", "P003"), ("P0030801SR02", "P003"), ("P0S3-8-12-00", "P0S3"), ("sip78xx.11-0-1-11", "sip78xx"),
    ("sip88xx.12-0-1MN-113", "sip88xx"), ("SCCP69xx.9-4-1-3SR3", "SCCP69xx"), ("SCCP8941_8945.9-4-1-9", "SCCP8941_8945"),
    ("CP7925G-1.4.1SR1", "CP7925G"), ("apps37sccp.1-4-5-7", "apps37sccp"), ("term65.default.loads", "term65"),
])
def test_family(load, fam):
    assert family(load) == fam


@pytest.mark.parametrize("load,expected", [
    ("SCCP45.9-4-2SR4-3S", {"CP-7945G", "CP-7965G"}),
    ("SCCP42.9-4-2SR3-1S", {"CP-7942G", "CP-7962G"}),
    ("SCCP11.9-4-2SR1-1S", {"CP-7906G", "CP-7911G"}),
    ("SCCP70.9-4-2SR3-1S", {"CP-7970G", "CP-7971G-GE"}),
    ("P0030801SR02", {"CP-7940G", "CP-7960G"}),
    ("P0S3-8-12-00", {"CP-7940G", "CP-7960G"}),
    ("SIP894x.9-4-2SR1-2", {"CP-8941", "CP-8945"}),
    ("SCCP894x.9-4-2SR1-2", {"CP-8941", "CP-8945"}),
    ("sip88xx.12-5-1SR3-74", {"CP-8811", "CP-8841", "CP-8851", "CP-8851NR", "CP-8861"}),
    ("sip8845_65.12-5-1SR2-2", {"CP-8845", "CP-8865", "CP-8865NR"}),
    ("sip7832.14-4-1-0301-6", {"CP-7832"}),
    ("sip8832.14-0-1-0201-171", {"CP-8832", "CP-8832NR"}),
    ("sip78xx.11-0-1-11", {"CP-7811", "CP-7821", "CP-7841", "CP-7861"}),
    ("SCCP69xx.9-4-1-3SR3", {"CP-6921", "CP-6941", "CP-6961"}),
    ("CP7925G-1.4.1SR1", {"CP-7925G"}),
    ("garbage", set()),
])
def test_models_for_load(load, expected):
    assert set(models_for_load(load)) == expected


@pytest.mark.parametrize("text,model", [
    ("7965", "CP-7965G"), ("CP-7965G", "CP-7965G"), ("cp-7965", "CP-7965G"), ("Cisco 7965", "CP-7965G"),
    ("7941G-GE", "CP-7941G-GE"), ("7941", "CP-7941G"), ("7971", "CP-7971G-GE"), ("8841", "CP-8841"), ("unknown", "unknown"),
])
def test_normalize_model(text, model):
    assert normalize_model(text) == model


@pytest.mark.parametrize("opt60,model", [
    ("Cisco Systems, Inc. IP Phone CP-7965G\x00", "CP-7965G"),
    ("Cisco Systems, Inc. IP Phone CP-7965G", "CP-7965G"),
    ("Cisco Systems, Inc. IP Phone CP-7940G\x00", "CP-7940G"),
    ("Cisco Systems, Inc. IP Phone CP-7940\x00", "CP-7940G"),
    ("Cisco Systems, Inc. IP Phone CP-7941G-GE\x00", "CP-7941G-GE"),
    ("Cisco Systems, Inc. IP Phone 7905", "CP-7905G"),
    ("Cisco Systems Inc. Wireless Phone 7921", "CP-7921G"),
    ("Cisco Systems, Inc. IP Phone CP-8841", "CP-8841"),
    ("Cisco Systems, Inc. IP Phone CP-8945", "CP-8945"),
    (b"Cisco Systems, Inc. IP Phone CP-7962G\x00", "CP-7962G"),
    ("Cisco Systems, Inc. IP Phone\x00", None),
    ("MSFT 5.0", None), ("", None), (None, None), ("PXEClient:Arch:00000", None),
])
def test_vendor_class(opt60, model):
    assert model_from_vendor_class(opt60) == model


def test_table_is_consistent_and_says_where_sources_disagree():
    names = [m.name for m in models.MODELS]
    assert len(names) == len(set(names))
    assert by_name("7965").device_type == 436 and by_name("7965").term == "term65.default.loads"
    assert by_name("7940").device_type == 8 and by_name("7960").device_type == 7 and by_name("7940").is_7940
    assert by_name("8841").device_type == 683
    for name in ("6921", "6941"):
        m = by_name(name)
        assert "disagree" in m.note and m.device_type_alt, name
    assert set(by_name("6921").device_types) == set(by_name("6941").device_types) == {495, 496}
    assert "123456789*0#" in by_name("7965").reset
    for m in models.MODELS:
        for fam in m.families:
            assert fam == fam.strip() and fam
        for s in m.option60:
            assert model_from_vendor_class(s + "\x00") == m.name, s
    assert versions.SR_FORM_MAINT > 9


def test_models_without_manifest_are_flagged():
    """§0.0 item 10: 7937 (.bin) and 7902/7905/7912 (.sbin/.zup) loads have no .loads manifest."""
    flagged = {m.name for m in models.MODELS if not m.manifest}
    assert flagged == {"CP-7937G", "CP-7902G", "CP-7905G", "CP-7912G"}
    assert by_name("7937").images == ".bin" and by_name("7965").manifest and by_name("7965").images is None


ID_ALPHABET = "SCIPsip0123456789.-_xRSTERMtermP"


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(alphabet=ID_ALPHABET, max_size=30)))
def test_version_key_and_family_never_raise_and_keys_compare(text):
    k = version_key(text)
    assert k is None or (len(k) == 5 and all(isinstance(x, int) and x >= 0 for x in k))
    fam = family(text)
    assert fam is None or (fam and fam.isascii())
    keys = [x for x in (k, version_key("SCCP45.8-5-2S"), version_key("P0030801SR02")) if x is not None]
    sorted(keys)
    models_for_load(text)
    normalize_model(text)
    model_from_vendor_class(text)


# 7800/8800 load IDs (reference phone-families.md §2.1; 14.0(1)SR2 = 14-0-1-0201-169 from Cisco's 7800 upgrade
# guide, 14.4(1)SR3 = 14-4-1-0301-6 from the 7821 lab write-up [F18]): all three forms on one scale
ORDERED_5TH = ["sip78xx.10-1-1SR1-4", "sip78xx.10-3-1-12", "sip78xx.11-0-1-11", "sip78xx.12-5-1SR1-4",
               "sip78xx.12-5-1SR3-74", "sip78xx.14-0-1-0001-135", "sip78xx.14-0-1-0201-169", "sip78xx.14-4-1-0301-6"]


def test_orders_5th_generation_load_ids_and_shares_the_human_scale():
    shuffled = ORDERED_5TH[:]
    random.Random(5).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ORDERED_5TH
    assert version_key("sip78xx.14-0-1-0001-135")[:4] == version_key("14.0(1)")[:4]
    assert version_key("sip78xx.14-0-1-0201-169")[:4] == version_key("14.0(1)SR2")[:4]
    assert version_key("sip78xx.14-4-1-0301-6")[:4] == version_key("14.4(1)SR3")[:4]
    assert version_key("sip88xx.12-5-1SR3-74") == version_key("12.5(1)SR3-74")
    assert version_key("14.0(1)SR2") <= version_key("sip78xx.14-0-1-0201-169") < version_key("14.0(1)SR3")
    for load_id, fam in (("sip8845_65.12-8-1-0001-455", "sip8845_65"), ("sip7832.14-4-1-0301-6", "sip7832"),
                         ("sip8832.14-0-1-0201-171", "sip8832"), ("sip88xx.12-8-1-0001-455", "sip88xx")):
        assert family(load_id) == fam and versions.protocol(load_id) == "sip"


@pytest.mark.parametrize("text,model", [("8851NR", "CP-8851NR"), ("CP-8851", "CP-8851"), ("8865NR", "CP-8865NR"),
                                        ("CP-8832NR", "CP-8832NR"), ("7832", "CP-7832"), ("7811", "CP-7811")])
def test_no_radio_variants_are_their_own_models(text, model):
    assert normalize_model(text) == model and by_name(model).source


def test_every_7800_8800_row_names_its_source():
    for m in models.MODELS:
        if any(f.lower() in ("sip78xx", "sip88xx", "sip8845_65", "sip7832", "sip8832") for f in m.families):
            assert m.source and "§2.5" in m.source, m.name
