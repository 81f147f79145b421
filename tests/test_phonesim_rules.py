"""The product's stepping-stone rules checked against the independent phone model.

Whatever appliance/recovery/rules.toml says (read through appliance.recovery.rules),
the plan the product makes for a phone must be a path the phone model walks: every
load offered is one the phone running the previous step can verify, and the stone
a rule names is accepted from below the rule and leads to the target.  The phone
model's truth table (tools/phonesim/truth.py) is written from the reference, not
from rules.toml, so a wrong rule fails here.
"""
from __future__ import annotations

import itertools

import pytest

from appliance.recovery.plan import make_plan
from appliance.recovery.rules import builtin_rules, version_key
from tools.phonesim import truth
from tools.phonesim.loadid import parse_load
from tools.phonesim.models import MODELS, P79XX, TNP

TNP_VERSIONS = ("8-0-3", "8-2-2", "8-3-1", "8-3-2", "8-3-2SR1", "8-3-3", "8-4-4", "8-5-2", "8-5-2SR1", "8-5-3",
                "9-0-3", "9-2-3", "9-4-2SR3-1", "9-4-2SR4-3")
P003_LOADS = ("P00305000500", "P00307020300", "P00308000400", "P00308000500", "P00308010100", "P00308010200",
              "P0030801SR02")
P0S3_LOADS = ("P0S3-4-2-00", "P0S3-4-4-00", "P0S3-5-3-00", "P0S3-6-0-00", "P0S3-7-5-00", "P0S3-8-12-00")


def loads(m, protocol: str) -> list[str]:
    """A library of loads of one protocol for model `m`, oldest first."""
    if m.family == TNP:
        return [f"{protocol.upper()}{m.loads}.{v}S" for v in TNP_VERSIONS]
    return list(P003_LOADS if protocol == "sccp" else P0S3_LOADS)


def older_newer(lib: list[str]):
    return [(a, b) for a, b in itertools.combinations(lib, 2)]


def walk(m, current: str, steps: list[str]) -> str | None:
    """None if the phone model takes every step in order, else why it stops."""
    running = parse_load(current)
    for step in steps:
        offered = parse_load(step)
        v = truth.verdict(m, running, offered)
        if not v.accepted:
            return f"{m.name} on {running.text} shown {step}: {v.screen} ({v.why}); plan {steps}"
        running = offered
    return None


def grid(protocols_for):
    """(model, current, target, library) for every simulated model and protocol pair `protocols_for` yields."""
    for m in MODELS.values():
        for cur_proto, tgt_proto in protocols_for(m):
            lib = loads(m, tgt_proto)
            currents = loads(m, cur_proto)
            for current in currents:
                for target in lib:
                    # upgrades only: going back from a new-key load is refused by the model too, but
                    # that is UNCONFIRMED (truth.py) and no plan of the product's goes backwards
                    if currents.index(current) > lib.index(target) or (cur_proto == tgt_proto and current == target):
                        continue
                    yield m, current, target, lib


def _same_protocol(m):
    return [("sccp", "sccp"), ("sip", "sip")] if m.family == TNP else [("sccp", "sccp")]


def _tnp_conversions(m):
    return [("sccp", "sip"), ("sip", "sccp")] if m.family == TNP else []


def plan_failures(rules, protocols_for) -> list[str]:
    failures = []
    for m, current, target, lib in grid(protocols_for):
        plan = make_plan(m.name, current, target, lib, rules, "stepwise")
        if plan.missing:
            failures.append(f"{m.name} {current} -> {target}: product says a stone is missing from a full library: "
                            f"{plan.missing}")
            continue
        if plan.steps[-1:] != [target]:
            failures.append(f"{m.name} {current} -> {target}: plan does not end on the target: {plan.steps}")
            continue
        why = walk(m, current, plan.steps)
        if why:
            failures.append(why)
    return failures


@pytest.mark.parametrize("protocols_for", [_same_protocol, _tnp_conversions], ids=["same protocol", "79x1 conversions"])
def test_product_plans_are_paths_the_phone_model_walks(protocols_for):
    failures = plan_failures(builtin_rules(), protocols_for)
    assert not failures, f"{len(failures)} plans the phone model refuses, e.g.:\n" + "\n".join(failures[:15])


def test_the_cross_check_catches_the_old_8_5_3_boundary(tmp_path):
    """The rule as it stood before the reference's correction (§0.0 item 6): gate at 8.5(3), so 8.5(2)SR1
    is offered straight to an 8.3(2) phone, which shows Auth Fail."""
    from appliance.recovery.rules import parse_rule
    wrong = [parse_rule({"models": ["7965"], "below": "8.3(3)", "before": "8.5(3)", "via_min": "8.3(3)",
                         "via_max": "8.5(2)"})]
    failures = plan_failures(wrong, _same_protocol)
    assert any("SCCP45.8-3-2S shown SCCP45.8-5-2SR1S: Auth Fail" in f for f in failures)
    assert any(f.startswith("7942 ") for f in failures)          # and a model the rule forgot


def test_every_rule_stone_is_accepted_from_below_and_leads_to_the_gated_loads():
    rules = builtin_rules()
    checked = 0
    for rule in rules:
        protocols = getattr(rule, "protocols", ()) or ("sccp", "sip")
        for name in rule.models:
            m = next((x for x in MODELS.values() if x.name == name), None)
            assert m is not None, f"rules.toml names model {name}, which the phone model does not know"
            for proto in protocols:
                if m.family == P79XX and proto == "sip" and "sip" not in protocols:
                    continue
                lib = loads(m, proto)
                stones = [s for s in lib if rule.is_stone(version_key(s))]
                below = [c for c in lib if version_key(c) < rule.below]
                gated = [t for t in lib if version_key(t) >= rule.before]
                assert stones, f"no load of the grid is a stone of {rule.source}"
                for stone, current in itertools.product(stones, below):
                    v = truth.verdict(m, parse_load(current), parse_load(stone))
                    assert v.accepted, f"{m.name} on {current} refuses the rule's stone {stone}: {v.screen}"
                for stone, target in itertools.product(stones, gated):
                    v = truth.verdict(m, parse_load(stone), parse_load(target))
                    assert v.accepted, f"{m.name} on stone {stone} refuses {target}: {v.screen}"
                    checked += 1
                for excluded in getattr(rule, "exclude", ()):
                    for current in below:
                        hit = [t for t in lib if version_key(t) == excluded]
                        assert all(not truth.verdict(m, parse_load(current), parse_load(t)).accepted for t in hit), \
                            f"rules.toml excludes {excluded} as a stone but the phone model takes it from {current}"
    assert checked > 100


def test_every_tnp_model_of_the_phone_model_is_covered_by_a_rule():
    """A 79x1/2/5 model missing from rules.toml would be sent from 8.3(2) straight to 9.x: Auth Fail."""
    rules = builtin_rules()
    for m in MODELS.values():
        if m.family != TNP:
            continue
        old, new = f"SCCP{m.loads}.8-3-2S", f"SCCP{m.loads}.9-4-2SR4-3S"
        assert any(r.applies(m.name, version_key(old), version_key(new), "sccp") for r in rules), m.name


@pytest.mark.xfail(strict=False, reason=(
    "rules.toml has no 7940/60 SIP chain.  The reference (§5.2, Cisco CME docs [8]) says SIP images must go "
    "2.x/3.x/4.x -> 4.4 -> 5.3 -> 6.x -> 7.x ('can't jump to 7.x directly'), signed SIP 5.x+ cannot go back to "
    "unsigned, and an SCCP phone must be on 5.x before converting to SIP; the product plans those jumps directly."))
def test_7940_sip_chain_and_conversion():
    rules = builtin_rules()
    failures = []
    for m in (MODELS["7940"], MODELS["7960"]):
        pairs = [(c, t) for c, t in older_newer(list(P0S3_LOADS))]
        pairs += [(c, t) for c in P003_LOADS[:1] + ("P00304000000",) for t in P0S3_LOADS[-1:]]
        for current, target in pairs:
            lib = list(P0S3_LOADS)
            plan = make_plan(m.name, current, target, lib, rules, "stepwise")
            why = walk(m, current, plan.steps)
            if why:
                failures.append(why)
    assert not failures, "\n".join(failures[:10])
