"""The core and 7800/8800 phones: hardware floors, the VID from the page, platforms, HTTP and TFTP alike.

Driven through `handle` with a dict library (no catalog, no disk, no sockets).  The library's planner is
plan.fit_floor over a list of loads, as plan_phone applies it for a model no stepping-stone rule covers; its
floors are the V20 7841's two readings (phone-families.md §1.4: 14.0(1) per RN 14.0(1) and FN70546, 14.0(1)SR3
per RN 14.0(1)SR3) and the model's highest documented floor for an unknown VID.
"""
from __future__ import annotations

from dataclasses import dataclass

from appliance.recovery.diagnosis import Code, Need, Note, Why
from appliance.recovery.facts import FileAsked, FileSent, Lease, LoadReported, PollPage, Restored, Timer
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.identify import hardware, vid_text
from appliance.recovery.library import Library
from appliance.recovery.memory import from_row, to_row
from appliance.recovery.plan import HardwareFloor, Plan, fit_floor
from appliance.recovery.rules import version_key
from appliance.recovery.tracker import Tracker
from appliance.recovery.words import say

OLD, A, B = "sip78xx.11-0-1-11", "sip78xx.14-0-1-0001-135", "sip78xx.14-2-1-0101-26"
RUNS = "sip78xx.14-0-1-0201-169"          # 14.0(1)SR2: what a V20 7841 on the shelf runs in these tests
MAC, IP = "001e7a784101", "10.78.1.5"
CONFIG = f"SEP{MAC.upper()}.cnf.xml"
FLOORS = {"V20": ("14.0(1)", "14.0(1)SR3"), None: ("14.0(1)SR2", "14.0(1)SR3")}


def files(load: str, platform: int) -> tuple[str, ...]:
    ver = load.split(".", 1)[1]
    mid = "" if platform == 1 else "2."
    return tuple(f"{role}{mid}78xx.{ver}.sbn" for role in ("sboot", "kern", "rootfs"))


def library(loads: list[str], pin: str | None = None) -> Library:
    def planner(model, current, hint, rejected, floor=None):
        ids = sorted(loads, key=lambda x: version_key(x) or ())
        target = pin or ids[-1]
        if floor is not None:
            fitted = fit_floor(floor, model, "sip", target, ids, rejected)
            if isinstance(fitted, Need):
                return Plan([], missing=fitted)
            target = fitted
        if current and (version_key(current) or ()) >= (version_key(target) or ()):
            return Plan([])
        if target in rejected:
            return Plan([], missing=Need("other", model, "sip", refused=tuple(sorted(rejected))))
        return Plan([target])

    return Library(planner=planner, components_of=lambda load: 6 if load else 0,
                   platforms_of=lambda load: (tuple(f.lower() for f in files(load, 1)),
                                              tuple(f.lower() for f in files(load, 2))) if load else (),
                   floor=lambda model, vid: FLOORS.get(vid) if model == "CP-7841" else None,
                   has_stones=lambda model: False,                 # no stepping-stone rule names a 7841
                   models=lambda: ["CP-7841"])


@dataclass
class Clock:
    now: float = 1000.0


def core(loads: list[str], pin: str | None = None) -> tuple[Tracker, Clock]:
    return Tracker(library(loads, pin), lease_s=3600.0), Clock()


def feed(t: Tracker, c: Clock, event, dt: float = 1.0) -> list:
    c.now += dt
    return t.handle(event, c.now)


def lease(t, c):
    return feed(t, c, Lease(c.now + 1, MAC, IP, True, "CP-7841"))


def ask(t, c):
    """The phone asks its config; returns the load it names (as the worker's table said)."""
    row = t.answer(MAC)
    served = row.config if row else None
    feed(t, c, FileAsked(c.now + 1, IP, CONFIG, proto="http", served=served))
    return served


def sent(t, c, name, proto="http"):
    return feed(t, c, FileSent(c.now + 1, IP, name, proto=proto))


def page(t, c, load=RUNS, vid="V20"):
    return feed(t, c, LoadReported(c.now + 1, MAC, load, load or "", "web", vid, "1.0"))


# ---- platforms, HTTP and TFTP ----------------------------------------------------------------------------------

def test_a_phone_taking_only_platform_2s_files_installs_the_load_whatever_carried_them():
    t, c = core([OLD, B])
    lease(t, c)
    assert ask(t, c) == B
    sent(t, c, f"{B}.loads", "http")                 # manifest over HTTP :6970 ...
    for name in files(B, 2)[:2]:
        sent(t, c, name, "tftp")                      # ... components over TFTP: one boot all the same
    p = t.phones[MAC]
    assert p.state == S.DOWNLOADING and p.note == Note(Code.DOWNLOADING, (files(B, 2)[1], 2, 3))
    sent(t, c, files(B, 2)[2], "tftp")
    assert p.state == S.REBOOTING and p.note == Note(Code.INSTALLING, (B,))
    lease(t, c)
    assert ask(t, c) == B
    assert p.state == S.DONE and p.current == B and p.how == "step"


def test_a_platform_download_that_stops_is_counted_against_its_own_platform():
    t, c = core([OLD, B])
    lease(t, c)
    ask(t, c)
    sent(t, c, f"{B}.loads")
    sent(t, c, files(B, 1)[0])
    feed(t, c, Timer(c.now + 100), dt=100)
    p = t.phones[MAC]
    assert p.state == S.STUCK and p.note == Note(Code.STALLED, (B, 1, 3))


def test_the_whole_platform_taken_before_the_timer_is_installing_not_stalled():
    t, c = core([OLD, B])
    lease(t, c)
    ask(t, c)
    sent(t, c, f"{B}.loads")
    for name in files(B, 1):
        sent(t, c, name)
    feed(t, c, Timer(c.now + 400), dt=400)            # a real 7841 writes its flash for minutes
    assert t.phones[MAC].state == S.STUCK and t.phones[MAC].note.code == Code.NO_RETURN


# ---- the VID -------------------------------------------------------------------------------------------------

def test_the_page_gives_the_vid_which_survives_a_restart():
    t, c = core([OLD, B])
    lease(t, c)
    page(t, c, load=None, vid="V04")
    p = t.phones[MAC]
    assert p.vid == "V04" and p.hardware_revision == "1.0"
    row = to_row(p)
    again = from_row({**row, "mac": MAC})
    assert again.vid == "V04" and again.hardware_revision == "1.0"
    assert from_row({**row, "mac": MAC, "hints": {"memory": {"vid": "1.0"}}}).vid is None   # not a VID: not kept
    t2, c2 = core([OLD, B])
    feed(t2, c2, Restored(c2.now, (again,), ()))
    assert t2.phones[MAC].vid == "V04"


def test_a_vid_mid_download_is_kept_though_the_stale_load_is_not():
    t, c = core([OLD, B])
    lease(t, c)
    ask(t, c)
    sent(t, c, f"{B}.loads")
    page(t, c, load=OLD, vid="V20")
    p = t.phones[MAC]
    assert p.state == S.DOWNLOADING and p.vid == "V20" and p.current is None


def test_udi_lines_give_the_vid_and_nothing_else_does():
    udi = "phone Cisco IP Phone CP-7841 CP-7841 V20 FCH7a784101"      # the page's line breaks became spaces
    assert hardware({"udi": udi, "hardwarerevision": "1.0"}) == ("V20", "1.0")
    assert hardware({"udi": "phone Cisco IP Phone 7841 CP-7841 V04 FCH123"}) == ("V04", None)
    assert hardware({"udi": "phone V01 V02"}) == (None, None)           # two candidates and no PID: unknown
    assert hardware({"udi": "phone CP-7841 1.0 FCH1"}) == (None, None)
    assert hardware({"hardwarerevision": "1.0; rm -rf /"}) == (None, None)
    assert hardware({"udi": "x" * 300 + " CP-7841 V20"}) == (None, None)  # longer than any UDI: not read
    assert hardware("not a mapping") == (None, None)                      # type: ignore[arg-type]
    assert [vid_text(v) for v in ("v4", "V04", "V100", "1.0", 20, None)] == ["V04", "V04", None, None, None, None]


# ---- floors in planning ----------------------------------------------------------------------------------------

def test_a_known_v20_is_never_offered_a_load_under_its_floor_and_is_told_what_to_add():
    t, c = core([OLD])
    lease(t, c)
    page(t, c)                                         # its page before its config: V20, on 14.0(1)SR2
    p = t.phones[MAC]
    assert ask(t, c) == RUNS                           # its own load, never the one under its floor
    assert p.state == S.STUCK and p.note.code == Code.NO_LOAD
    need = p.note.args[0]
    assert (need.kind, need.vid, need.low, need.high, need.newest) == ("floor", "V20", "14.0(1)", "14.0(1)SR3", OLD)
    words = say(p.note)
    assert words.startswith("this 7841 is V20: it needs 14.0(1) or later (14.0(1)SR3 or later")
    assert "the library's newest is 11.0(1)" in words and "add a 7841 load of 14.0(1)SR3 or later" in words
    for _ in range(5):                                 # however often it asks, its config names its own load
        assert ask(t, c) == RUNS
        assert p.state == S.STUCK


def test_a_v20_is_offered_a_load_at_or_above_its_floor_even_with_the_target_pinned_below():
    t, c = core([OLD, A, B], pin=OLD)
    lease(t, c)
    page(t, c, load=None)                              # VID known, running load not
    assert ask(t, c) == B                              # at or above the stricter reading, preferred
    t, c = core([OLD, A], pin=OLD)
    lease(t, c)
    page(t, c, load=None)
    assert ask(t, c) == A                              # the library has nothing at 14.0(1)SR3: 14.0(1) it is


def test_a_v20_refusing_a_load_over_the_lower_reading_moves_to_the_stricter_one():
    t, c = core([OLD, A, B])
    t.lib.planner("CP-7841", None, None, frozenset(), None)
    lease(t, c)
    page(t, c, load=None)
    t2, c2 = core([OLD, A], pin=OLD)                   # library: 14.0(1) and no load at 14.0(1)SR3
    lease(t2, c2)
    page(t2, c2, load=None)
    assert ask(t2, c2) == A
    sent(t2, c2, f"{A}.loads")
    assert ask(t2, c2) is None                         # refused (its floor is the SR3 reading): nothing else to name
    p = t2.phones[MAC]
    assert p.state == S.STUCK and p.note.code == Code.REJECTED_STUCK and p.note.args[1] == Why.BELOW_FLOOR
    need = p.note.args[2]
    assert need.kind == "floor" and need.low == "14.0(1)SR3" and A in need.refused
    assert "it needs 14.0(1)SR3 or later" in say(p.note)


def test_fit_floor_keeps_both_readings():
    floor = HardwareFloor("V20", "14.0(1)", "14.0(1)SR3")
    assert fit_floor(floor, "CP-7841", "sip", B, [OLD, A, B], frozenset()) == B
    assert fit_floor(floor, "CP-7841", "sip", OLD, [OLD, A, B], frozenset()) == B
    assert fit_floor(floor, "CP-7841", "sip", A, [OLD, A, B], frozenset()) == B      # A is under the stricter one
    assert fit_floor(floor, "CP-7841", "sip", A, [OLD, A], frozenset()) == A
    no_minimum = HardwareFloor("V03", "", "10.1(1)SR1")                              # a VID no row names
    assert fit_floor(no_minimum, "CP-7841", "sip", OLD, [OLD], frozenset()) == OLD
    need = fit_floor(floor, "CP-7841", "sip", OLD, [OLD], frozenset({OLD}))
    assert isinstance(need, Need) and (need.low, need.newest, need.refused) == ("14.0(1)", OLD, (OLD,))


# ---- a refusal with no stepping stone in play ------------------------------------------------------------------

def test_a_refusal_with_no_stone_and_the_vid_unknown_is_read_as_hardware_and_the_page_read_again():
    t, c = core([OLD])
    lease(t, c)
    assert ask(t, c) == OLD
    sent(t, c, f"{OLD}.loads")
    row = t.answer(MAC)
    out = feed(t, c, FileAsked(c.now + 1, IP, CONFIG, proto="http", served=row.config if row else None))
    p = t.phones[MAC]
    assert p.state == S.STUCK and p.note.code == Code.REJECTED_STUCK and p.note.args[1] == Why.HARDWARE
    words = say(p.note)
    assert "the highest documented floor for the 7841 is 14.0(1)SR2 (14.0(1)SR3 or later" in words, words
    assert "stepping stone" not in words and "signing key that load uses" not in words, words
    assert any(isinstance(o, PollPage) and o.ip == IP for o in out)    # its web server is on now: read its VID
    page(t, c)                                          # ... which says V20, on 14.0(1)SR2
    assert p.state == S.STUCK and p.note.args[1] == Why.BELOW_FLOOR
    words = say(p.note)
    assert "this 7841 is V20: it needs 14.0(1) or later" in words and "the library's newest is 11.0(1)" in words
    assert ask(t, c) == RUNS


def test_the_same_load_is_never_offered_in_a_loop():
    """A phone under its floor asks its config every few seconds after a refusal (the model's retry): the
    manifest is named once, and the station concludes at the first sign, whatever arrives when."""
    for page_first in (False, True):
        t, c = core([OLD])
        lease(t, c)
        manifests = 0
        for round_ in range(12):
            if page_first and round_ == 1:
                page(t, c)
            named = ask(t, c)
            if named == OLD:
                manifests += 1
                sent(t, c, f"{OLD}.loads")
            feed(t, c, Timer(c.now + 5), dt=5)
        p = t.phones[MAC]
        assert manifests == 1 and p.state == S.STUCK, (page_first, manifests, p.state, p.note)
        assert OLD in say(p.note) and "14.0(1)" in say(p.note)


def test_a_need_recorded_before_floors_still_reads_and_a_floor_need_round_trips():
    old = Note.from_list(["rejected, stuck", OLD, {"why": "refused"},
                          {"need": ["other", "CP-7841", "sip", "", "", [], [OLD], ""]}])
    assert old is not None and old.args[2] == Need("other", "CP-7841", "sip", refused=(OLD,))
    floor = Note(Code.NO_LOAD, (Need("floor", "CP-7841", "sip", "14.0(1)", "14.0(1)SR3", vid="V20", newest=OLD),))
    assert Note.from_list(floor.as_list()) == floor
    assert Note.from_list(["rejected, stuck", OLD, {"why": "no such reason"}, None]).args[1] == Why.REFUSED


def test_a_v20_already_past_the_load_over_its_floor_settles_on_its_own_after_refusing_the_pinned_one():
    t, c = core([OLD, A], pin=OLD)
    lease(t, c)
    assert ask(t, c) == OLD                            # nothing known yet: the pinned target
    sent(t, c, f"{OLD}.loads")
    page(t, c, load=B)                                 # mid-download: V20 (kept), on 14.2(1) (stale: not taken)
    assert ask(t, c) == A                              # the refusal is read at this config, which names A
    p = t.phones[MAC]
    assert p.vid == "V20" and OLD in p.rejected and p.state == S.CONFIGURED
    assert p.note.code == Code.REJECTED_NEXT and p.note.args[1] == Why.BELOW_FLOOR
    page(t, c, load=B)                                 # its page again, now believed: past A, nothing to offer
    assert p.state == S.DONE and p.current == B, (p.state, say(p.note))
    assert ask(t, c) == B


def test_a_refusal_of_a_load_over_every_documented_floor_is_not_blamed_on_the_hardware():
    t, c = core([OLD, B])
    lease(t, c)
    assert ask(t, c) == B                              # 14.2(1): over the 7841's highest floor (14.0(1)SR3)
    sent(t, c, f"{B}.loads")
    ask(t, c)
    p = t.phones[MAC]
    assert p.state == S.STUCK and p.note.code == Code.REJECTED_STUCK and p.note.args[1] == Why.REFUSED
    assert p.note.args[2].kind == "newer" and "add a newer one" in say(p.note), say(p.note)
    assert OLD not in p.rejected                       # and never a downgrade to try instead
