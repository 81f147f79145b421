"""appliance/recovery/words.py: every note reads as plain words, with no citation and no hole."""
from __future__ import annotations

import pytest

from appliance.recovery.diagnosis import Code, Need, Note, Why
from appliance.recovery.facts import PhoneState
from appliance.recovery.words import STATE_WORDS, need, say

NEED = Need("stone", "CP-7965G", "sccp", "8.3(3)", "8.5(2)", ("8.5(2)SR1",), source="qsolved 2010 §5.1")
EXAMPLES = {
    Code.SEEN: (), Code.ON_LOAD: ("S",), Code.STEP: (1, 2, "S"), Code.DOWNLOADING: ("S.loads", 1, 5),
    Code.INSTALLING: ("S",), Code.FLASHING_LOADER: ("P.sbn",), Code.REJECTED_NEXT: ("S", Why.KEY_CHANGE, 2, "T"),
    Code.REJECTED_STUCK: ("S", Why.STONE_REFUSED, NEED), Code.TERM_LOOP: ("term65.default.loads", "T", NEED),
    Code.TERM_MISSING: ("term65.default.loads", "S"), Code.FILE_MISSING: ("x.sbn",), Code.NO_LOAD: (NEED,),
    Code.NOT_UPGRADABLE: ("CP-7937G", ".bin"), Code.OLD_APP: ("P",), Code.RESTART_TO_GO_ON: ("S", "T"),
    Code.STALLED: ("S", 1, 5), Code.NO_RETURN: ("S", 5), Code.TRUST_LIST: ("**#",), Code.RETRIED: ("api",),
    Code.RESTORED: ("old words",), Code.CONVERT_REFUSED: (Need("licence", "CP-7841", "mpp", low="00562B043615.lic"),),
}


@pytest.mark.parametrize("code", list(Code))
def test_every_code_has_words_without_citations_or_holes(code):
    text = say(Note(code, EXAMPLES[code]))
    assert text != code.value or code == Code.SEEN
    assert "§" not in text and "qsolved" not in text and "None" not in text and "?" not in text


def test_a_need_names_what_to_add_and_a_bad_note_falls_back_to_its_code():
    assert need(NEED) == ("add the SCCP 8.3(3) to 8.5(2) load for CP-7965G (not 8.5(2)SR1) to the firmware library "
                          "(its cmterm zip)")
    assert say(Note(Code.STEP, ())) == "step"
    assert say(None) == ""


def test_notes_survive_their_memory_form():
    note = Note(Code.REJECTED_STUCK, ("S", Why.KEY_CHANGE, NEED))
    assert Note.from_list(note.as_list()) == note
    assert Note.from_list(["nope"]) is None and Note.from_list(5) is None


def test_every_state_has_words():
    assert set(STATE_WORDS) == {s.value for s in PhoneState}
