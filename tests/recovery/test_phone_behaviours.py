"""The recovery core on the behaviours of real phones (reference cisco-phones.md §0.0), over a real catalog.

Each test feeds the events a phone causes in the order the station sees them: leases, its config
requests (answered from the core's own answer table, as a file worker does), files sent or missing,
page reads, the clock.  The firmware is byte-faithful synthetic firmware in a real Catalog; plans come
from the product's planner, so these are the station's decisions end to end, minus the sockets.
The core's own unit tests, with a library made of a dict, are in test_tracker.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config
from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.names import Kind, classify
from appliance.recovery import actions as tr
from appliance.recovery import memory
from appliance.recovery.facts import (
    CatalogChanged,
    FileAsked,
    FileMissing,
    FileSent,
    Lease,
    LoadLearned,
    LoadReported,
    PhoneChanged,
    Restored,
    Retry,
    Timer,
)
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.phone import Phone
from appliance.recovery.station import make_tracker
from appliance.recovery.words import say

STONE, STONE2, SR1, TARGET = "SCCP45.8-5-2S", "SCCP45.8-4-4S", "SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"
P_OLD, P_STONE, P_TARGET = "P00308000500", "P00308010100", "P0030801SR02"
MAC, IP = "001b2c3d4e5f", "10.9.0.50"
REPO = Path(__file__).resolve().parents[2]


def library(tmp_path, loads, term=True, **env):
    root = tmp_path / "fw"
    root.mkdir(exist_ok=True)
    for load in loads:
        if load.startswith("P00"):
            synth.write_load(root, load, size_bytes=2_000)
        else:
            synth.write_zip(root, load, size_bytes=4_000, term=term)
    cat = Catalog(root, tmp_path / "cache")
    cat.scan()
    environ = {"APPLIANCE_CONFIG": str(REPO / "config" / "appliance.toml"), "APPLIANCE_NETWORK_INTERFACE": "lo",
               "APPLIANCE_TFTP_ROOT": str(root), "APPLIANCE_STATE_DIR": str(tmp_path / "state"), **env}
    return cat, config.load(environ=environ)


class Bench:
    """One phone's events, fed to the core with a clock that only moves when told."""

    def __init__(self, cat, cfg, model="CP-7965G", mac=MAC, ip=IP):
        self.t, self.cat, self.mac, self.ip, self.model, self.now = make_tracker(cat, cfg), cat, mac, ip, model, 1000.0
        self.out: list = []

    def at(self, dt: float) -> "Bench":
        self.now += dt
        return self

    def feed(self, event) -> list:
        out = self.t.handle(event, self.now)
        self.out += out
        return out

    def lease(self):
        self.feed(Lease(self.at(1).now, self.mac, self.ip, True, self.model))

    def ask(self, name: str) -> str | None:
        """The phone asks a generated file: served from the core's answer table, then told as a fact."""
        row = self.t.answer(self.mac)
        kind = classify(name)
        served = None if row is None else (row.term if kind.kind == Kind.TERM else
                                           row.sip if kind.path.lower().startswith("sip") else row.config)
        self.feed(FileAsked(self.at(1).now, self.ip, name, served=served))
        return served

    def config(self, name: str | None = None) -> str | None:
        return self.ask(name or f"SEP{self.mac.upper()}.cnf.xml")

    def sent(self, *names: str, proto="tftp"):
        for n in names:
            self.feed(FileSent(self.at(0.2).now, self.ip, n, proto))

    def install(self, load: str, proto="tftp"):
        self.sent(f"{load}.loads", *synth.component_names(load), proto=proto)

    def tick(self, dt: float):
        self.feed(Timer(self.at(dt).now))

    @property
    def phone(self) -> Phone:
        return self.t.phones[self.mac]

    @property
    def detail(self) -> str:
        return say(self.phone.note)

    @property
    def diagnosis(self) -> str:
        return memory.diagnosis(self.phone) or ""

    def learned(self) -> list[tuple[str, str]]:
        return [(o.load, o.how) for o in self.out if isinstance(o, LoadLearned)]

    def states(self) -> list[str]:
        return [o.state.value for o in self.out if isinstance(o, PhoneChanged)]


def test_known_old_load_goes_through_the_stone_to_the_target(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    b.feed(LoadReported(b.at(0.5).now, MAC, "SCCP45.8-3-2S", "*SCCP45.8-3-2S*"))
    assert b.config() == STONE
    b.install(STONE)
    assert b.phone.state == S.REBOOTING
    b.lease()
    assert b.config() == TARGET
    b.install(TARGET)
    b.lease()
    assert b.config() == TARGET
    assert b.phone.state == S.DONE and b.phone.current == TARGET
    assert b.learned() == [("SCCP45.8-3-2S", "web"), (STONE, "step"), (TARGET, "step")]


def test_auth_fail_without_a_reboot_is_a_rejection_then_the_stone(tmp_path):
    """strategy direct: 8.3(2) takes the 9.x .loads, no file of it, keeps its lease, asks its config again."""
    b = Bench(*library(tmp_path, [STONE, TARGET], APPLIANCE_UPGRADE_STRATEGY="direct"))
    b.lease()
    assert b.config() == TARGET
    b.sent(f"{TARGET}.loads")
    assert b.phone.state == S.DOWNLOADING
    assert b.at(5).config() == STONE                       # same lease, no reboot: rejected, the stone now
    assert TARGET in b.phone.rejected and "signing key" in b.detail
    b.install(STONE)
    b.lease()
    assert b.config() == TARGET
    b.install(TARGET)
    b.lease()
    b.config()
    assert b.phone.state == S.DONE and b.phone.current == TARGET


def test_auth_fail_then_silence_is_a_rejection_too(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET], APPLIANCE_UPGRADE_STRATEGY="direct"))
    b.lease()
    b.config()
    b.sent(f"{TARGET}.loads")
    b.tick(tr.MANIFEST_WAIT_S + 1)
    assert b.phone.state == S.CONFIGURED and b.phone.step_load == STONE and TARGET in b.phone.rejected


def test_the_same_manifest_again_without_files_is_a_rejection(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET], APPLIANCE_UPGRADE_STRATEGY="direct"))
    b.lease()
    b.config()
    b.sent(f"{TARGET}.loads")
    b.at(3).sent(f"{TARGET}.loads")
    assert TARGET in b.phone.rejected and b.phone.step_load == STONE


def test_rejected_stone_tries_the_next_stone_then_the_target_then_names_the_file(tmp_path):
    b = Bench(*library(tmp_path, [STONE2, STONE, SR1, TARGET]))
    b.lease()
    assert b.config() == STONE                              # newest stone first; SR1 is never a stone
    b.sent(f"{STONE}.loads")
    assert b.at(4).config() == STONE2
    assert "move to" not in b.detail and STONE in b.detail
    b.sent(f"{STONE2}.loads")
    assert b.at(4).config() == TARGET                       # no stone left: it may know the new key already
    b.sent(f"{TARGET}.loads")
    b.at(4).config()
    p = b.phone
    assert p.state == S.STUCK and p.step_load is None
    assert "8.3(3) to 8.5(2)" in b.diagnosis and "(not 8.5(2)SR1)" in b.diagnosis
    assert all(x in b.diagnosis for x in (STONE, STONE2, TARGET))


def test_a_refused_stone_is_not_blamed_on_the_signing_key(tmp_path):
    """Stones are what old loads can verify (§0.0 item 6), so a phone that refuses one is not an old load
    meeting a new key; a late-production unit refuses loads too old for its hardware ("Load rejected HC",
    §5.1, §8.1).  Its load unknown (no page), stepwise: the stones, then the target, which it takes."""
    b = Bench(*library(tmp_path, [STONE2, STONE, TARGET]))
    b.lease()
    assert b.config() == STONE
    b.sent(f"{STONE}.loads")
    assert b.at(5).config() == STONE2
    detail = b.detail
    assert f"rejected {STONE}" in detail and "Load rejected HC" in detail and "predates" not in detail, detail
    b.sent(f"{STONE2}.loads")
    assert b.at(5).config() == TARGET
    assert "Load rejected HC" in b.detail and "predates" not in b.detail, b.detail
    b.install(TARGET)
    b.lease()
    b.config()
    assert b.phone.state == S.DONE and b.phone.current == TARGET


def test_factory_reset_phone_takes_the_stone_from_its_term_file_and_goes_on_without_a_power_cycle(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    assert b.ask("TERM65.DEFAULT.LOADS") == STONE
    b.sent("TERM65.DEFAULT.LOADS", *synth.component_names(STONE))
    b.lease()
    assert b.config() == TARGET                             # the term file's load booted: the next step
    assert b.learned() == [(STONE, "step")]


def test_factory_reset_phone_looping_on_a_term_file_it_cannot_verify(tmp_path):
    b = Bench(*library(tmp_path, [TARGET]))                 # no stone in the library: the 9.x term file
    b.lease()
    assert b.ask("term65.default.loads") == TARGET
    b.sent("term65.default.loads")
    b.lease()
    b.at(30).ask("term65.default.loads")
    p = b.phone
    assert p.state == S.STUCK and "term65.default.loads" in b.diagnosis and "8.3(3) to 8.5(2)" in b.diagnosis


def test_missing_term_file_names_it(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET], term=False))
    b.lease()
    b.feed(FileMissing(b.at(1).now, IP, "term65.default.loads"))
    assert b.phone.state == S.STUCK and "term65.default.loads" in b.diagnosis and STONE in b.diagnosis


def test_7940_two_stage_flash_counts_the_load_after_the_sb2(tmp_path):
    b = Bench(*library(tmp_path, [P_STONE, P_TARGET]), model="CP-7940G")
    b.lease()
    b.feed(LoadReported(b.at(0.5).now, MAC, P_OLD, P_OLD))
    assert b.config() == P_STONE
    b.sent(f"{P_STONE}.loads", f"{P_STONE}.sbn")
    assert b.phone.state == S.REBOOTING and b.phone.current == P_OLD
    b.lease()
    assert b.config() == P_STONE and b.phone.current == P_OLD     # loader in, application not yet
    b.sent(f"{P_STONE}.sb2")
    b.lease()
    assert b.config() == P_TARGET and b.phone.current == P_STONE
    b.install(P_TARGET)
    b.lease()
    b.config()
    assert b.phone.state == S.DONE and b.phone.current == P_TARGET
    assert [x for x, _ in b.learned()] == [P_OLD, P_STONE, P_TARGET]


def test_7940_that_takes_the_sb2_again_booted_its_old_app(tmp_path):
    b = Bench(*library(tmp_path, [P_STONE, P_TARGET]), model="CP-7940G")
    b.lease()
    b.feed(LoadReported(b.at(0.5).now, MAC, P_OLD, P_OLD))
    b.config()
    b.sent(f"{P_STONE}.loads", f"{P_STONE}.sbn")
    b.lease()
    b.config()
    b.sent(f"{P_STONE}.sb2")
    b.lease()
    b.config()
    b.sent(f"{P_STONE}.sb2")
    assert b.phone.state == S.STUCK and "old application" in b.diagnosis


def test_trust_list_phone_is_told_how_to_clear_it(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    b.feed(FileSent(b.at(1).now, IP, f"CTLSEP{MAC.upper()}.tlv"))
    b.feed(FileAsked(b.at(1).now, IP, f"SEP{MAC.upper()}.cnf.xml.sgn"))
    b.tick(tr.TRUST_WAIT_S + 1)
    assert b.phone.state == S.STUCK and "trust list" in b.diagnosis and "123456789*0#" in b.diagnosis


def test_http_first_capitalised_and_slashed_names_count_the_same(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    b.feed(LoadReported(b.at(0.5).now, MAC, STONE, f"*{STONE}*"))
    assert b.config(f"/sep{MAC}.CNF.XML") == TARGET
    b.sent(f"/{TARGET.upper()}.LOADS", proto="http")
    b.sent(*["/" + n.capitalize() for n in synth.component_names(TARGET)], proto="http")
    assert b.phone.state == S.REBOOTING
    b.lease()
    b.config()
    assert b.phone.state == S.DONE and b.phone.current == TARGET


def test_phone_already_on_the_stone_settles_then_goes_on_when_it_asks_again(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    assert b.config() == STONE                              # unknown load: the stone first (stepwise)
    b.tick(tr.SETTLE_S + 1)                                 # it has it: fetches nothing
    assert b.phone.state == S.WAITING and b.phone.current == STONE
    assert b.at(30).config() == TARGET                      # real phones ask again (§0.0 item 5)
    b.install(TARGET)
    b.lease()
    b.config()
    assert b.phone.state == S.DONE


def test_unknown_page_string_is_recorded_never_named(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    b.feed(LoadReported(b.at(0.5).now, MAC, None, "jar45sccp.9-9-9.sbn"))
    assert b.phone.reported == "jar45sccp.9-9-9.sbn" and b.phone.current is None
    assert b.config() == STONE


def test_stalled_download_and_no_return_are_diagnosed(tmp_path):
    b = Bench(*library(tmp_path, [STONE, TARGET]))
    b.lease()
    b.config()
    b.sent(f"{STONE}.loads", synth.component_names(STONE)[0])
    b.tick(tr.STALL_S + 1)
    assert b.phone.state == S.STUCK and "1 of 5" in b.diagnosis
    b.feed(Retry(b.at(1).now, MAC))
    assert b.phone.state == S.SEEN
    b.config()
    b.install(STONE)
    b.tick(tr.REBOOT_S + 1)
    assert b.phone.state == S.STUCK and "did not come back" in b.diagnosis


def test_model_without_manifests_is_not_upgradable(tmp_path):
    b = Bench(*library(tmp_path, [STONE]), model="CP-7937G")
    b.lease()
    assert b.phone.state == S.STUCK and "not upgradable by manifest" in b.diagnosis


def test_memory_survives_a_restart_mid_install(tmp_path):
    cat, cfg = library(tmp_path, [STONE, TARGET])
    b = Bench(cat, cfg)
    b.lease()
    b.config()
    b.install(STONE)
    import json
    row = json.loads(json.dumps({"mac": MAC, **memory.to_row(b.phone)}))     # as the store gives it back
    again = make_tracker(cat, cfg)
    lease = Lease(b.now, MAC, IP, True, "CP-7965G", expires=b.now + 3600)
    again.handle(Restored(b.now, (memory.from_row(row),), (lease,)), b.now)
    assert again.answer(MAC).config == TARGET                  # its next config names the target at once
    again.handle(FileAsked(b.now + 60, IP, f"SEP{MAC.upper()}.cnf.xml", served=TARGET), b.now + 60)
    assert again.phones[MAC].current == STONE and again.phones[MAC].state == S.CONFIGURED


@pytest.mark.parametrize("bad", [{"hints": {"memory": {"boot": "x", "rejected": 5}}}, {"hints": 3}, {"state": "odd"},
                                 {"hints": {"memory": {"note": ["no such code", 1]}, "timeline": [["x", 1, 2]]}}])
def test_odd_memory_is_skipped(bad):
    p = memory.from_row({"mac": MAC, **bad})
    assert p.mac == MAC and p.state in S


# ---- 7800/8800 over a real catalog (phone-families.md §1.2-1.5, floors.toml) ---------------------------------
OLD78, NEW78 = "sip78xx.11-0-1-11", "sip78xx.14-2-1-0101-26"
OLD88 = "sip88xx.12-5-1SR3-74"


def gen5(load: str, platform: int) -> list[str]:
    """A platform's files as the product's synthetic 7800 manifest lists them."""
    return [name for plat, files in synth.gen5_platforms(load) if plat == f"PLATFORM_{platform}" for _, name in files]


def page(b: Bench, load: str | None, vid: str):
    b.feed(LoadReported(b.at(0.5).now, b.mac, load, load or "", "web", vid, "1.0"))


def test_a_7841_taking_only_its_platform_2_files_over_tftp_after_an_http_manifest_installs(tmp_path):
    b = Bench(*library(tmp_path, [OLD78, NEW78]), model="CP-7841")
    b.lease()
    assert b.config() == NEW78
    b.sent(f"{NEW78}.loads", proto="http")
    b.sent(*gen5(NEW78, 2), proto="tftp")
    assert b.phone.state == S.REBOOTING, b.detail
    b.lease()
    assert b.config() == NEW78 and b.phone.state == S.DONE and b.phone.current == NEW78


def test_a_v20_7841_and_a_v15_8841_under_their_floors_are_told_the_floor_from_floors_toml(tmp_path):
    b = Bench(*library(tmp_path, [OLD78, OLD88]), model="CP-7841")
    b.lease()
    page(b, "sip78xx.14-0-1-0301-212", "V20")
    assert b.config() == "sip78xx.14-0-1-0301-212" and b.phone.state == S.STUCK
    assert b.diagnosis.startswith("this 7841 is V20: it needs 14.0(1) or later (14.0(1)SR3 or later"), b.diagnosis
    assert "the library's newest is 11.0(1) (sip78xx.11-0-1-11)" in b.diagnosis
    c = Bench(b.cat, library(tmp_path, [])[1], model="CP-8841", mac="001e7a884101", ip="10.9.0.51")
    c.lease()
    page(c, None, "V15")
    assert c.config() is None and c.phone.state == S.STUCK
    assert c.diagnosis.startswith("this 8841 is V15: it needs 12.6(1) or later"), c.diagnosis
    assert "the library's newest is 12.5(1)SR3 (sip88xx.12-5-1SR3-74)" in c.diagnosis
    again = memory.from_row({**memory.to_row(c.phone), "mac": c.mac})        # a restart keeps the words
    assert memory.diagnosis(again) == c.diagnosis and again.vid == "V15"


def test_a_refusal_on_an_8841_with_its_vid_unknown_names_the_highest_floor_not_a_stone(tmp_path):
    b = Bench(*library(tmp_path, [OLD88]), model="CP-8841", mac="001e7a884102")
    b.lease()
    assert b.config() == OLD88
    b.sent(f"{OLD88}.loads", proto="http")
    assert b.config() is None and b.phone.state == S.STUCK
    assert "the highest documented floor for the 8841 is 12.6(1)" in b.diagnosis, b.diagnosis
    assert "stepping stone" not in b.diagnosis and "signing key that load uses" not in b.diagnosis


def test_a_floor_stuck_phone_moves_on_when_a_load_over_its_floor_is_added(tmp_path):
    cat, cfg = library(tmp_path, [OLD78])
    b = Bench(cat, cfg, model="CP-7841")
    b.lease()
    page(b, None, "V20")
    assert b.config() is None and b.phone.state == S.STUCK
    synth.write_zip(tmp_path / "fw", NEW78, size_bytes=4_000)
    cat.scan()
    b.feed(CatalogChanged(b.at(1).now))
    assert b.config() == NEW78 and b.phone.state == S.CONFIGURED


def test_a_6921_refusal_is_neither_the_signing_key_nor_a_missing_stone(tmp_path):
    """No stepping-stone rule names a 6921 (phone-families.md §4.1) and no floor is documented: a refusal is a
    refusal, and what the library lacks is another load."""
    b = Bench(*library(tmp_path, ["SCCP69xx.9-4-1-3SR3"]), model="CP-6921", mac="001e7a692101")
    b.lease()
    assert b.config() == "SCCP69xx.9-4-1-3SR3"
    b.sent("SCCP69xx.9-4-1-3SR3.loads")
    assert b.config() is None and b.phone.state == S.STUCK
    assert b.diagnosis.startswith("rejected SCCP69xx.9-4-1-3SR3: it refused the load"), b.diagnosis
    assert "add a newer one" in b.diagnosis and "stepping stone" not in b.diagnosis, b.diagnosis
