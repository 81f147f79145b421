from appliance.recovery.plan import make_plan
from appliance.recovery.rules import all_rules, version_key

R = all_rules()
LIB = ["SCCP45.8-5-2S", "SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"]


def test_version_order():
    assert version_key("8.5(2)") < version_key("SCCP45.8-5-2SR1S") < version_key("8.5(3)")
    assert version_key("P00308010100") == version_key("8.1(1)")
    assert version_key("garbage") is None


def test_7965_on_832_goes_through_852_not_sr1():
    p = make_plan("CP-7965G", "SCCP45.8-3-2S", "SCCP45.9-4-2SR4-3S", LIB, R)
    assert p.steps == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"] and p.missing is None


def test_past_stone_goes_direct_and_on_target_is_empty():
    assert make_plan("7965", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", LIB, R).steps == ["SCCP45.9-4-2SR4-3S"]
    assert make_plan("7965", "SCCP45.9-4-2SR4-3S", "SCCP45.9-4-2SR4-3S", LIB, R).steps == []


def test_unknown_load_strategy():
    assert make_plan("7965", None, "SCCP45.9-4-2SR4-3S", LIB, R).steps[0] == "SCCP45.8-5-2S"
    assert make_plan("7965", None, "SCCP45.9-4-2SR4-3S", LIB, R, "direct").steps == ["SCCP45.9-4-2SR4-3S"]


def test_missing_stone_named():
    p = make_plan("7965", "8.3(2)", "SCCP45.9-4-2SR4-3S", ["SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"], R)
    assert p.missing and "8.3(3)–8.5(2)" in p.missing and "7965" in p.missing


def test_7940():
    p = make_plan("7940", "P00307020300", "P00308010200", ["P00308010100", "P00308010200"], R)
    assert p.steps == ["P00308010100", "P00308010200"]


def test_user_rule():
    rules = all_rules([{"models": ["7912"], "below": "5.0(0)", "before": "6.0(0)", "via_min": "5.0(0)", "via_max": "5.9(9)"}])
    assert make_plan("7912", "4.0(1)", "6.0(1)", ["5.3(0)", "6.0(1)"], rules).steps == ["5.3(0)", "6.0(1)"]
