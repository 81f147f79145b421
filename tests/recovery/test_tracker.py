"""The recovery core (appliance/recovery/tracker.py) driven through `handle` with events and a clock.

No catalog, no store, no sockets: the Library is a dict of plans.  What real phones do is tested over
a real catalog in test_phone_behaviours.py; this file tests the core's own promises: only a lease
holder's requests are facts about it, the answer table follows every change, timers come from
`next_deadline`, and bad input is dropped, never a crash.
"""
from __future__ import annotations

from dataclasses import dataclass

from appliance.recovery import actions
from appliance.recovery.diagnosis import Code
from appliance.recovery.facts import (
    Answers,
    CatalogChanged,
    Dropped,
    FileAsked,
    FileMissing,
    FileSent,
    Forget,
    Lease,
    LoadLearned,
    LoadReported,
    OtherRead,
    PhoneChanged,
    PollPage,
    Restored,
    Retry,
    Timer,
)
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.library import Library
from appliance.recovery.phone import Phone
from appliance.recovery.plan import Plan
from appliance.recovery.tracker import Tracker

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
MAC, IP, LAPTOP = "001b2c3d4e5f", "10.9.0.50", "10.9.0.200"
OTHER_MAC, OTHER_IP = "001b2c3d4e60", "10.9.0.51"
CONFIG = f"SEP{MAC.upper()}.cnf.xml"


def planner(model, current, hint, rejected, floor=None):
    if not model:
        return Plan([])
    if current == TARGET:
        return Plan([TARGET])
    if current == STONE:
        return Plan([TARGET])
    steps = [s for s in (STONE, TARGET) if s not in rejected]
    return Plan(steps)


LIB = Library(planner=planner, components_of=lambda load: 2 if load else 0, models=lambda: ["CP-7965G"],
              term_of=lambda model: "term65.default.loads" if model == "CP-7965G" else None)


@dataclass
class Clock:
    now: float = 1000.0


def core() -> tuple[Tracker, Clock]:
    return Tracker(LIB, lease_s=3600.0), Clock()


def feed(t: Tracker, c: Clock, event, dt: float = 1.0) -> list:
    c.now += dt
    return t.handle(event, c.now)


def lease(t, c, mac=MAC, ip=IP):
    return feed(t, c, Lease(c.now + 1, mac, ip, True, "CP-7965G"))


def ask(t, c, ip=IP, name=CONFIG, mac=MAC):
    row = t.answer(mac)
    return feed(t, c, FileAsked(c.now + 1, ip, name, served=row.config if row else None))


def install(t, c, load, ip=IP):
    for name in (f"{load}.loads", f"{load}-a.sbn", f"{load}-b.sbn"):
        feed(t, c, FileSent(c.now + 1, ip, name))


def kinds(out: list) -> list[type]:
    """The outputs' types, without the answer-table changes (the first event of a core also sends its defaults)."""
    return [type(o) for o in out if not isinstance(o, Answers)]


def snapshot(p: Phone) -> tuple:
    return (p.state, p.note, p.ip, p.current, p.before, tuple(p.plan), p.step, frozenset(p.rejected))


def test_a_lease_makes_a_phone_and_its_answer_row_and_asks_for_its_page():
    t, c = core()
    out = lease(t, c)
    assert t.phones[MAC].ip == IP
    assert any(isinstance(o, PollPage) and o.ip == IP for o in out)
    answers = [o for o in out if isinstance(o, Answers)]
    assert answers and answers[-1].rows[0].config == STONE and answers[-1].rows[0].ip == IP
    assert answers[-1].defaults == (("CP-7965G", STONE),)


def test_the_answer_row_already_names_what_the_next_config_will():
    t, c = core()
    lease(t, c)
    ask(t, c)
    install(t, c, STONE)
    assert t.phones[MAC].state == S.REBOOTING
    assert t.answer(MAC).config == TARGET          # precomputed: asking now would find the stone installed
    lease(t, c)
    ask(t, c)
    assert t.phones[MAC].current == STONE and t.phones[MAC].boot.offered == TARGET


def test_reads_from_an_address_without_a_lease_change_nothing():
    t, c = core()
    lease(t, c)
    ask(t, c)
    install(t, c, STONE)
    before = snapshot(t.phones[MAC])
    for event in (FileAsked(c.now, LAPTOP, CONFIG), FileSent(c.now, LAPTOP, CONFIG),
                  FileAsked(c.now, LAPTOP, f"{STONE}.loads"), FileSent(c.now, LAPTOP, f"SEP{MAC}.x.sbn"),
                  FileMissing(c.now, LAPTOP, f"SEP{MAC}.anything.sbn"), FileMissing(c.now, LAPTOP, "term65.default.loads")):
        out = feed(t, c, event)
        assert kinds(out) == [OtherRead] and out[0].why == "no lease"
    assert snapshot(t.phones[MAC]) == before and t.counters["other reads"] == 6
    feed(t, c, Timer(c.now + 30))                  # and nothing a read started runs out later
    assert t.phones[MAC].state == S.REBOOTING


def test_a_name_carrying_another_phones_mac_is_not_that_phones_fact():
    t, c = core()
    lease(t, c)
    lease(t, c, OTHER_MAC, OTHER_IP)
    ask(t, c)
    before = snapshot(t.phones[MAC])
    out = feed(t, c, FileAsked(c.now, OTHER_IP, CONFIG, served=TARGET))
    assert kinds(out) == [OtherRead] and out[0].why == "not its MAC"
    out = feed(t, c, FileMissing(c.now, OTHER_IP, f"SEP{MAC.upper()}.cnf.xml.sgn"))
    assert kinds(out) == [OtherRead]
    assert snapshot(t.phones[MAC]) == before and t.phones[OTHER_MAC].state == S.SEEN


def test_a_lease_for_an_address_already_held_moves_it():
    t, c = core()
    lease(t, c)
    lease(t, c, OTHER_MAC, IP)                     # DHCP gave the address to another MAC: it is the authority
    assert t.phones[MAC].ip == "" and t.phones[OTHER_MAC].ip == IP
    assert t.answer(MAC).ip is None and t.answer(OTHER_MAC).ip == IP
    out = ask(t, c, name=CONFIG)
    assert kinds(out) == [OtherRead]   # the old holder's config asked from its old address


def test_a_discover_binds_no_address_and_an_expired_or_forgotten_lease_speaks_for_nobody():
    t, c = core()
    feed(t, c, Lease(c.now, MAC, IP, False, "CP-7965G"))
    assert MAC in t.phones and t.identity.holder(IP, c.now) is None
    feed(t, c, Lease(c.now, MAC, IP, True, "CP-7965G", expires=c.now + 10))
    assert t.identity.holder(IP, c.now) is not None
    c.now += 20
    assert kinds(ask(t, c)) == [OtherRead]
    lease(t, c)
    feed(t, c, Forget(c.now, MAC))
    assert kinds(ask(t, c)) == [OtherRead] and t.answer(MAC).ip is None


def test_a_file_fact_changes_its_phone_only_after_the_lease():
    """A phone whose lease the station lost is re-identified by its next DHCP exchange, never by a file name."""
    t, c = core()
    out = feed(t, c, FileAsked(c.now, IP, CONFIG))
    assert kinds(out) == [OtherRead] and MAC not in t.phones
    lease(t, c)
    out = ask(t, c)
    assert any(isinstance(o, PhoneChanged) and o.state == S.CONFIGURED for o in out)


def test_unknown_events_and_reports_for_strangers_are_dropped():
    t, c = core()
    assert kinds(feed(t, c, object())) == [Dropped]
    assert kinds(feed(t, c, "lease")) == [Dropped]
    assert kinds(feed(t, c, LoadReported(c.now, MAC, STONE, STONE, "web"))) == [Dropped]
    assert kinds(feed(t, c, Retry(c.now, MAC))) == [Dropped]
    assert t.phones == {} and t.counters["dropped"] == 4


def test_a_neighbour_claim_waits_for_the_lease_and_never_outranks_the_phone():
    t, c = core()
    feed(t, c, LoadReported(c.now, MAC, STONE, STONE, "cdp"))
    assert MAC not in t.phones                      # a claim never creates a phone
    lease(t, c)
    assert t.phones[MAC].current == STONE and t.answer(MAC).config == TARGET
    ask(t, c)
    install(t, c, TARGET)
    lease(t, c)
    ask(t, c)
    assert t.phones[MAC].current == TARGET and t.phones[MAC].state == S.DONE
    feed(t, c, LoadReported(c.now, MAC, STONE, STONE, "cdp"))      # a stale announcement: the install outranks it
    assert t.phones[MAC].current == TARGET


def test_next_deadline_drives_the_timers():
    t, c = core()
    assert t.next_deadline() is None
    lease(t, c)
    ask(t, c)
    assert t.next_deadline() == c.now + actions.SETTLE_S
    feed(t, c, Timer(c.now), dt=actions.SETTLE_S - 2)
    assert t.phones[MAC].state == S.CONFIGURED
    c.now = t.next_deadline()
    t.handle(Timer(c.now), c.now)
    assert t.phones[MAC].state == S.WAITING and t.phones[MAC].note.code == Code.RESTART_TO_GO_ON
    assert t.next_deadline() is None


def test_a_stale_answer_is_recorded_as_what_the_phone_got():
    t, c = core()
    lease(t, c)
    feed(t, c, FileAsked(c.now, IP, CONFIG, served=TARGET))   # a worker a moment behind served the target
    assert t.phones[MAC].boot.offered == TARGET


def test_restart_restores_phones_and_leases_through_handle():
    t, c = core()
    lease(t, c)
    ask(t, c)
    install(t, c, STONE)
    again = Tracker(LIB)
    out = again.handle(Restored(c.now, (t.phones[MAC],), (Lease(c.now, MAC, IP, True, "CP-7965G", expires=c.now + 60),)),
                       c.now)
    assert any(isinstance(o, Answers) and o.rows and o.rows[0].config == TARGET for o in out)
    assert again.identity.holder(IP, c.now).mac == MAC
    again.handle(FileAsked(c.now + 1, IP, CONFIG, served=TARGET), c.now + 1)
    assert again.phones[MAC].current == STONE


def test_catalog_change_recomputes_every_answer():
    plans = {"steps": [STONE, TARGET]}
    lib = Library(planner=lambda *a: Plan(list(plans["steps"])), models=lambda: ["CP-7965G"])
    t = Tracker(lib)
    t.handle(Lease(1.0, MAC, IP, True, "CP-7965G"), 1.0)
    assert t.answer(MAC).config == STONE
    plans["steps"] = [TARGET]
    out = t.handle(CatalogChanged(2.0), 2.0)
    change = [o for o in out if isinstance(o, Answers)][0]
    assert change.defaults == (("CP-7965G", TARGET),)


def test_a_retry_starts_the_plan_again():
    t, c = core()
    lease(t, c)
    ask(t, c)
    feed(t, c, FileSent(c.now, IP, f"{STONE}.loads"))
    feed(t, c, Timer(c.now), dt=actions.MANIFEST_WAIT_S + 1)
    assert STONE in t.phones[MAC].rejected
    feed(t, c, Retry(c.now, MAC, "tech"))
    p = t.phones[MAC]
    assert p.state == S.SEEN and not p.rejected and p.note.args == ("tech",)


def test_a_client_that_never_behaves_as_a_phone_is_no_phone():
    """A laptop with a lease (no option 60) reading the defaults, a manual, a component: identity, no phone row."""
    t, c = core()
    LAPTOP_MAC = "3c5282aabbcc"
    out = feed(t, c, Lease(c.now, LAPTOP_MAC, LAPTOP, True, None, "MSFT 5.0"))
    assert LAPTOP_MAC not in t.phones and not [o for o in out if isinstance(o, (PhoneChanged, PollPage))]
    for name in ("XMLDefault.cnf.xml", "manual.pdf", f"{STONE}-a.sbn"):
        assert kinds(feed(t, c, FileAsked(c.now, LAPTOP, name))) == [OtherRead]
    assert t.phones == {} and t.identity.holder(LAPTOP, c.now).mac == LAPTOP_MAC


def test_a_7940_loader_without_option_60_becomes_a_phone_at_its_first_phone_file():
    t, c = core()
    feed(t, c, Lease(c.now, MAC, IP, True, None))
    assert MAC not in t.phones
    out = feed(t, c, FileAsked(c.now, IP, "OS79XX.TXT"))
    p = t.phones[MAC]
    assert p.ip == IP and p.model == actions.LOADER_7940_MODEL
    assert any(isinstance(o, PollPage) for o in out) and any(isinstance(o, PhoneChanged) for o in out)


def test_a_download_the_stations_own_restart_cut_is_not_a_refusal():
    """kill -9 of the file service while a phone had the stone's manifest and no file yet: after the restart
    its next config names the stone again, not the target, and nothing is called refused."""
    t, c = core()
    lease(t, c)
    ask(t, c)
    feed(t, c, FileSent(c.now, IP, f"{STONE}.loads"))
    assert t.phones[MAC].state == S.DOWNLOADING
    again = Tracker(LIB)
    again.handle(Restored(c.now, (t.phones[MAC],), (Lease(c.now, MAC, IP, True, "CP-7965G", expires=c.now + 600),)),
                 c.now)
    c.now += actions.MANIFEST_WAIT_S + 5
    again.handle(Timer(c.now), c.now)
    assert again.phones[MAC].state == S.CONFIGURED and not again.phones[MAC].rejected
    again.handle(FileAsked(c.now, IP, CONFIG, served=again.answer(MAC).config), c.now)
    p = again.phones[MAC]
    assert again.answer(MAC).config == STONE and not p.rejected and p.boot.offered == STONE


OLD = "SCCP45.8-3-2S"


def test_a_page_read_only_mid_download_still_names_the_load_before_never_the_current_one():
    """On a loaded station the page may be read only after the phone took its config: mid-download it still
    shows the load it ran, which is its load before this recovery, not what it runs now."""
    t, c = core()
    lease(t, c)
    ask(t, c)                                             # offered the stone, its load unknown
    feed(t, c, FileSent(c.now + 1, IP, f"{STONE}.loads"))
    p = t.phones[MAC]
    assert p.state == S.DOWNLOADING and p.before is None
    out = feed(t, c, LoadReported(c.now, MAC, OLD, OLD, "web"))
    assert (p.before, p.current, p.state) == (OLD, None, S.DOWNLOADING)
    assert [(o.load, o.how) for o in out if isinstance(o, LoadLearned)] == [(OLD, "web")]   # said, as read
    for name in (f"{STONE}-a.sbn", f"{STONE}-b.sbn"):
        feed(t, c, FileSent(c.now + 1, IP, name))
    lease(t, c)
    ask(t, c)
    assert (p.before, p.current) == (OLD, STONE)


def test_a_page_read_while_rebooting_or_naming_the_offered_load_is_not_the_load_before():
    t, c = core()
    lease(t, c)
    ask(t, c)
    feed(t, c, FileSent(c.now + 1, IP, f"{STONE}.loads"))
    feed(t, c, LoadReported(c.now, MAC, STONE, STONE, "web"))     # the load it is taking: not what it ran
    assert t.phones[MAC].before is None
    for name in (f"{STONE}-a.sbn", f"{STONE}-b.sbn"):
        feed(t, c, FileSent(c.now + 1, IP, name))
    p = t.phones[MAC]
    assert p.state == S.REBOOTING
    feed(t, c, LoadReported(c.now, MAC, STONE, STONE, "web"))     # back up already: its page is the new load's
    assert p.before is None
