"""appliance/recovery/answers.py: the workers' copy of what each phone's config names, and its wire form."""
from __future__ import annotations

import json

import pytest

from appliance.recovery import answers
from appliance.recovery.answers import AnswerTable
from appliance.recovery.facts import Answer, Answers

A = Answer("001b2c3d4e5f", "10.0.0.5", "CP-7965G", "S1", "S1", "S1")


def test_rows_by_mac_and_address_follow_changes_in_order():
    t = AnswerTable()
    t.apply(Answers(1, (A,), (("CP-7965G", "S1"),)))
    assert t.at("10.0.0.5") == A and t.of_mac("001B2C3D4E5F") == A and t.default("CP-7965G") == "S1"
    moved = Answer(A.mac, "10.0.0.9", A.model, "S2", "S2", "S2")
    t.apply(Answers(2, (moved,)))
    assert t.at("10.0.0.5") is None and t.at("10.0.0.9").config == "S2" and t.default("CP-7965G") == "S1"
    t.apply(Answers(1, (A,)))                    # older than the table: ignored
    assert t.of_mac(A.mac).config == "S2"
    gone = Answer(A.mac, None, A.model, "S2", "S2", "S2")
    t.apply(Answers(3, (gone,)))
    assert t.at("10.0.0.9") is None and t.of_mac(A.mac) == gone


def test_wire_round_trip_and_malformed_messages_raise():
    change = Answers(7, (A,), (("CP-7965G", "S1"),))
    doc = json.loads(answers.to_wire(change))["answers"]
    assert answers.from_wire(doc) == change
    assert answers.from_wire(json.loads(answers.to_wire(Answers(8, ())))["answers"]) == Answers(8, (), None)
    for bad in ({}, {"v": "1", "rows": []}, {"v": 1, "rows": [[1, 2]]}, {"v": 1, "rows": [["a", None, "m", 5, None, None]]},
                {"v": 1, "rows": [], "defaults": [["m"]]}):
        with pytest.raises(ValueError):
            answers.from_wire(bad)
