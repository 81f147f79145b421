"""appliance/recovery/state.py: the transition table references real actions, and docs/tracker.md is current."""
from __future__ import annotations

from pathlib import Path

from appliance.recovery import actions, state
from appliance.recovery.signals import Signal

REPO = Path(__file__).resolve().parents[2]


def test_table_references_action_functions_and_the_doc_is_current():
    for (st, sig), t in state.TABLE.items():
        assert getattr(actions, t.action.__name__) is t.action, t.action
        assert t.targets and isinstance(sig, Signal), (st, sig)
    assert (REPO / "docs" / "tracker.md").read_text() == state.diagram()


def test_every_signal_has_a_row():
    assert {sig for _, sig in state.TABLE} == set(Signal)
