"""Plans: stepping-stone rules from the reference (cisco-phones.md §0.0 items 6 and 8, §5), SCCP and SIP kept apart."""
from types import SimpleNamespace

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.recovery.plan import make_plan, plan_for
from appliance.recovery.rules import all_rules, builtin_rules, parse_rule, version_key
from appliance.recovery.words import need

R = all_rules()
LIB = ["SCCP45.8-5-2S", "SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"]
# both protocols of both phones side by side, as a tech's library holds them
BOTH = ["P00307020300", "P00308010100", "P0030801SR02", "P0S3-8-12-00",
        "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S",
        "SIP45.8-3-2S", "SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"]


def cfg(**upgrade):
    return SimpleNamespace(upgrade=SimpleNamespace(**{"strategy": "stepwise", "targets": {}, "convert": {},
                                                      "rules": [], **upgrade}))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """A real catalog over byte-faithful synthetic loads of both protocols."""
    return catalog_of(tmp_path_factory.mktemp("both"), BOTH)


def catalog_of(tmp, ids):
    root = tmp / "fw"
    root.mkdir()
    for load_id in ids:
        synth.write_load(root, load_id, size_bytes=2_000)
    cat = Catalog(root, tmp / "cache")
    cat.scan()
    assert {load.id for load in cat.loads} == set(ids) and cat.problems == []
    return cat


def test_version_order():
    assert version_key("8.5(2)") < version_key("SCCP45.8-5-2SR1S") < version_key("8.5(3)")
    assert version_key("P00308010100") == version_key("8.1(1)")
    assert version_key("garbage") is None


def test_sr_form_is_81_2_sr2():
    """§0.0 item 8: P0030801SR02 is 8.1(2)SR2, so it is after 8.1(2) and before 8.1(3)."""
    assert version_key("P0030801SR02") == version_key("8.1(2)SR2")
    assert version_key("P00308010200") < version_key("P0030801SR02") < version_key("8.1(3)")


def test_7965_on_832_goes_through_852_not_sr1():
    p = make_plan("CP-7965G", "SCCP45.8-3-2S", "SCCP45.9-4-2SR4-3S", LIB, R)
    assert p.steps == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"] and p.missing is None


def test_852_sr1_target_needs_the_stone():
    """§0.0 item 6: SR1 is signed with the new key, so an 8.3(2) phone needs 8.5(2) first, and SR1 is no stone."""
    p = make_plan("7965", "SCCP45.8-3-2S", "SCCP45.8-5-2SR1S", LIB, R)
    assert p.steps == ["SCCP45.8-5-2S", "SCCP45.8-5-2SR1S"]
    assert make_plan("7965", "SCCP45.8-3-2S", "SCCP45.8-5-2S", LIB, R).steps == ["SCCP45.8-5-2S"]
    only_sr1 = make_plan("7965", "SCCP45.8-3-2S", "SCCP45.9-4-2SR4-3S", ["SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"], R)
    assert only_sr1.steps == ["SCCP45.9-4-2SR4-3S"] and "not 8.5(2)SR1" in need(only_sr1.missing)


def test_past_stone_goes_direct_and_on_target_is_empty():
    assert make_plan("7965", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", LIB, R).steps == ["SCCP45.9-4-2SR4-3S"]
    assert make_plan("7965", "SCCP45.9-4-2SR4-3S", "SCCP45.9-4-2SR4-3S", LIB, R).steps == []


def test_unknown_load_strategy():
    assert make_plan("7965", None, "SCCP45.9-4-2SR4-3S", LIB, R).steps[0] == "SCCP45.8-5-2S"
    assert make_plan("7965", None, "SCCP45.9-4-2SR4-3S", LIB, R, "direct").steps == ["SCCP45.9-4-2SR4-3S"]


def test_missing_stone_named():
    p = make_plan("7965", "8.3(2)", "SCCP45.9-4-2SR4-3S", ["SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"], R)
    assert p.missing and "8.3(3) to 8.5(2)" in need(p.missing) and "7965" in need(p.missing) and "SCCP" in need(p.missing)


def test_7940():
    p = make_plan("7940", "P00307020300", "P00308010200", ["P00308010100", "P00308010200"], R)
    assert p.steps == ["P00308010100", "P00308010200"]


def test_stone_is_of_the_targets_protocol():
    """A SIP phone is never sent through an SCCP stone, however well it fits the rule's versions."""
    p = make_plan("7965", "SIP45.8-3-2S", "SIP45.9-4-2SR4-3S", ["SCCP45.8-5-2S", "SIP45.9-4-2SR4-3S"], R)
    assert p.steps == ["SIP45.9-4-2SR4-3S"] and "add the SIP 8.3(3) to 8.5(2) load" in need(p.missing)


def test_7940_rule_is_sccp_only():
    rule = next(r for r in builtin_rules() if "7940" in r.models)
    assert rule.protocols == ("sccp",)
    assert make_plan("7940", "P0S3-07-2-00", "P0S3-8-12-00", ["P00308010100", "P0S3-8-12-00"], R).steps == ["P0S3-8-12-00"]


def test_builtin_rules_name_their_protocols():
    key_change = next(r for r in builtin_rules() if "7965" in r.models)
    assert key_change.protocols == ("sccp", "sip")
    assert key_change.before == version_key("8.5(2)SR1") and not key_change.is_stone(version_key("8.5(2)SR1"))
    assert all(r.protocols for r in builtin_rules())


@pytest.mark.parametrize("value", ["sccp", ["skinny"], [], [1]])
def test_rule_protocols_validated_naming_the_key(value):
    with pytest.raises(ValueError, match=r"^r\.protocols: "):
        parse_rule({"models": ["7965"], "via_min": "8.3(3)", "via_max": "8.5(2)", "protocols": value}, "r")


def test_user_rule():
    rules = all_rules([{"models": ["7912"], "below": "5.0(0)", "before": "6.0(0)", "via_min": "5.0(0)", "via_max": "5.9(9)"}])
    assert make_plan("7912", "4.0(1)", "6.0(1)", ["5.3(0)", "6.0(1)"], rules).steps == ["5.3(0)", "6.0(1)"]


def test_sccp_7940_stays_sccp_with_sip_in_the_library(both):
    """The old code took P0S3-8-12-00 (8.12 > 8.1) as the newest 7940 load and converted every 7940 to SIP."""
    assert plan_for(both, cfg(), "CP-7940G", "P00307020300").steps == ["P00308010100", "P0030801SR02"]
    assert plan_for(both, cfg(), "CP-7940G", "P0030801SR02").steps == []


def test_sip_7940_stays_sip(both):
    assert plan_for(both, cfg(), "CP-7940G", "P0S3-07-2-00").steps == ["P0S3-8-12-00"]


def test_sccp_7965_on_832_takes_the_sccp_852_stone_never_sr1(both):
    p = plan_for(both, cfg(), "CP-7965G", "SCCP45.8-3-2S")
    assert p.steps == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"] and p.missing is None


def test_sip_7965_stays_sip(both):
    assert plan_for(both, cfg(), "CP-7965G", "SIP45.8-3-2S").steps == ["SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"]
    assert plan_for(both, cfg(), "CP-7965G", "SIP45.9-4-2SR4-3S").steps == []


def test_unknown_load_prefers_sccp_when_both_and_the_only_one_otherwise(both, tmp_path):
    assert plan_for(both, cfg(), "CP-7965G", None).steps == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"]
    assert plan_for(both, cfg(), "CP-7940G", None).steps == ["P00308010100", "P0030801SR02"]
    sip_only = catalog_of(tmp_path, ["SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"])
    assert plan_for(sip_only, cfg(), "CP-7965G", None).steps == ["SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"]


def test_convert_key_converts(both):
    c = cfg(convert={"7965": "sip", "CP-7940G": "sip"})
    # the key change covers both protocols: an SCCP 8.3(2) phone still needs an 8.5(2) stone, a SIP one
    assert plan_for(both, c, "CP-7965G", "SCCP45.8-3-2S").steps == ["SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"]
    assert plan_for(both, c, "CP-7965G", "SCCP45.9-4-2SR4-3S").steps == ["SIP45.9-4-2SR4-3S"]
    assert plan_for(both, c, "CP-7940G", "P0030801SR02").steps == ["P0S3-8-12-00"]
    assert plan_for(both, c, "CP-7965G", None).steps == ["SIP45.8-5-2S", "SIP45.9-4-2SR4-3S"]
    assert plan_for(both, cfg(convert={"7965": "sccp"}), "CP-7965G", "SIP45.9-4-2SR4-3S").steps == ["SCCP45.9-4-2SR4-3S"]


def test_configured_target_of_the_other_protocol_does_not_convert(both):
    c = cfg(targets={"7965": "SIP45.8-5-2S"})
    assert plan_for(both, c, "CP-7965G", "SCCP45.8-3-2S").steps == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"]
    assert plan_for(both, c, "CP-7965G", "SIP45.8-3-2S").steps == ["SIP45.8-5-2S"]
