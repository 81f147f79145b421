"""Cisco's conversion path per release (appliance/recovery/plan.py conversion_plan, phone-families.md §3.1, §3.5),
over a real synthetic catalog."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.recovery.plan import conversion_plan, plan_phone

ENT12, ENT14, ENT141, OLD = "sip78xx.12-5-1SR1-4", "sip78xx.14-0-1-0001-135", "sip78xx.14-1-1-0001-10", "sip78xx.11-0-1-11"
TL, MPP_LOW, MPP = "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.11-3-3MPP0001-5", "sip78xx.11-3-5MPP0001-10"
CFG = SimpleNamespace(upgrade=SimpleNamespace(strategy="stepwise", targets={}, convert={}, rules=[]))


def catalog(tmp_path, loads):
    for load in loads:
        synth.write_zip(tmp_path / "fw", load, size_bytes=4000)
    cat = Catalog(tmp_path / "fw", tmp_path / "st")
    cat.scan()
    return cat


@pytest.mark.parametrize("current,steps", [
    (ENT12, [TL, MPP]),                    # 12.5(1) <= release < 14.0(1): the transition load
    (ENT14, [TL, MPP]),                    # 14.0(1): "14.(1)" read as 14.1(1) too, and a transition load is here
    (ENT141, [MPP]),                       # 14.1(1): direct under both readings
    (OLD, [ENT141, MPP]),                  # below 12.5(1): its newest Enterprise load first (14.1(1): direct)
    (None, [TL, MPP]),                     # release unknown: the transition load (any release from 12.5(1))
    (TL, [MPP]),                           # on the transition load: the MPP load
    (MPP, None),                           # already MPP: no conversion
])
def test_enterprise_to_mpp(tmp_path, current, steps):
    cat = catalog(tmp_path, (ENT12, ENT14, ENT141, OLD, TL, MPP))
    plan = conversion_plan(cat, CFG, "CP-7841", current, "mpp")
    assert (plan.steps if plan else None) == steps


def test_without_a_transition_load_14_0_goes_direct_and_12_5_is_told_what_to_add(tmp_path):
    cat = catalog(tmp_path, (ENT12, ENT14, MPP))
    assert conversion_plan(cat, CFG, "CP-7841", ENT14, "mpp").steps == [MPP]
    plan = conversion_plan(cat, CFG, "CP-7841", ENT12, "mpp")
    assert plan.steps == [] and plan.missing.kind == "transition"


def test_below_12_5_with_no_newer_enterprise_load_names_the_minimum(tmp_path):
    cat = catalog(tmp_path, (OLD, TL, MPP))
    plan = conversion_plan(cat, CFG, "CP-7841", OLD, "mpp")
    assert plan.steps == [] and plan.missing.kind == "convert minimum" and plan.missing.low == "12.5(1)"


@pytest.mark.parametrize("current,rejected,steps", [
    (MPP, frozenset(), [ENT14]),
    (None, frozenset(), [ENT14]),                   # MPP release unknown: Enterprise directly
    (None, frozenset({ENT14}), [MPP, ENT14]),       # refused: the newest MPP (>= 11.3(5)) first
    (MPP_LOW, frozenset(), [MPP, ENT14]),           # under 11.3(5): its newest MPP load first
    (MPP, frozenset({ENT14}), None),                # on 11.3(5) and refused: what to add
])
def test_mpp_to_enterprise(tmp_path, current, rejected, steps):
    cat = catalog(tmp_path, (ENT14, MPP_LOW, MPP))
    plan = conversion_plan(cat, CFG, "CP-7841", current, "sip", rejected, hint="mpp")
    assert (plan.steps or None) == steps


def test_plan_phone_converts_only_when_told(tmp_path):
    cat = catalog(tmp_path, (ENT12, TL, MPP))
    assert plan_phone(cat, CFG, "CP-7841", ENT12).steps == []            # on its newest Enterprise load: nothing
    assert plan_phone(cat, CFG, "CP-7841", ENT12, convert="mpp").steps == [TL, MPP]
    assert plan_phone(cat, CFG, "CP-7841", TL).steps == [MPP]            # a transition load carries it to MPP
