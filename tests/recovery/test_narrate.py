"""appliance/recovery/narrate.py: the INFO lines per phone event, each once, from the core's facts and outputs.

A real run (the station under supervisor, model phones) is in tests/test_logs.py."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from appliance.recovery.facts import FileSent, Lease, LoadLearned, PhoneChanged, PhoneState
from appliance.recovery.narrate import Narrator, amount

MAC, IP = "001e7a650001", "10.79.1.1"
STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S"


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "recovery" and r.levelno == logging.INFO]


def changed(ts: float, state: PhoneState) -> PhoneChanged:
    return PhoneChanged(ts, MAC, state, None)  # type: ignore[arg-type]   # no note: the line has no words


def test_a_phone_through_the_stone_says_each_event_once(caplog):
    caplog.set_level(logging.INFO)
    phone = SimpleNamespace(plan=[STONE, TARGET], ip="", model="CP-7965G", step_load=STONE)
    n = Narrator({MAC: phone})
    n.fact(Lease(1.0, MAC, None, acked=False, model="CP-7965G"))        # DISCOVER: no lease line
    n.output(changed(1.0, PhoneState.SEEN))
    phone.ip = IP
    for ts in (2.0, 1802.0):                                            # the renewal of the same address: once
        n.fact(Lease(ts, MAC.upper(), IP, model="CP-7965G"))
    n.output(changed(3.0, PhoneState.CONFIGURED))
    n.output(changed(4.0, PhoneState.DOWNLOADING))
    n.output(changed(4.5, PhoneState.DOWNLOADING))                       # the same state again: no line
    for ts, size in ((4.2, 1000), (5.0, 2_000_000), (6.0, 3_000_000)):
        n.fact(FileSent(ts, IP, "x.sbn", bytes=size))
    n.fact(FileSent(6.5, IP, "y.sbn", result="timeout", bytes=99))      # not a download
    n.fact(FileSent(6.6, "10.79.1.9", "z.sbn", bytes=7))                 # another address's
    n.output(changed(7.0, PhoneState.REBOOTING))
    n.output(LoadLearned(9.0, MAC, STONE, "step"))
    n.output(LoadLearned(9.5, MAC, STONE, "web"))
    phone.plan = [TARGET]
    n.output(changed(10.0, PhoneState.CONFIGURED))
    n.output(changed(20.0, PhoneState.DONE))
    assert lines(caplog) == [
        f"phone {MAC} seen",
        f"phone {MAC} plan: {STONE} (stepping stone), then {TARGET} (target)",
        f"phone {MAC} leased {IP} (CP-7965G)",
        f"phone {MAC} configured",
        f"phone {MAC} downloading",
        f"phone {MAC} downloaded {STONE}: 3 files, 5.0 MB in 2.0 s (2.5 MB/s)",
        f"phone {MAC} rebooting",
        f"phone {MAC} installed {STONE}",
        f"phone {MAC} runs {STONE} (web)",
        f"phone {MAC} configured",
        f"phone {MAC} plan: {TARGET} (target)",
        f"phone {MAC} done",
    ]
    assert not n.downloads and not n.by_ip


def test_not_a_phone_and_a_refused_load_say_nothing_extra(caplog):
    caplog.set_level(logging.INFO)
    phone = SimpleNamespace(plan=[], ip=IP, model="", step_load=None)
    n = Narrator({MAC: phone})
    n.fact(Lease(1.0, "00aabbccddee", "10.79.1.50"))                     # a laptop: the core has no phone
    n.output(changed(2.0, PhoneState.DOWNLOADING))
    n.output(changed(3.0, PhoneState.STUCK))                              # fetched nothing: no download line
    assert lines(caplog) == [f"phone {MAC} downloading", f"phone {MAC} stuck"]


def test_amounts():
    assert [amount(n) for n in (0, 950, 90_400, 12_345_678)] == ["0 B", "950 B", "90 kB", "12.3 MB"]
