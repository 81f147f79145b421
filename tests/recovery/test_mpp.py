"""The recovery core and multiplatform (MPP, 3PCC) phones over a real synthetic catalog (issue 27 item 5).

Facts as the file service reports them: a lease (option 60 `...CP-8851-3PCC`), profile requests `8851-3PCC.xml`,
the `.loads` and its platform's files, the next profile request; for a conversion the Enterprise config, the
transition load, then the profile, the licence and the MPP load (phone-families.md §3.1, §3.3, §3.4).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.recovery import validate
from appliance.recovery.diagnosis import Code
from appliance.recovery.facts import Answers, FileAsked, FileSent, Lease, LoadReported, Retry
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.station import make_tracker
from appliance.recovery.words import say

MPP_OLD, MPP_NEW = "sip88xx.11-3-1MPP0001-100", "sip88xx.11-3-3MPP0001-377"
ENT78, TL78, MPP78 = "sip78xx.12-5-1SR1-4", "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.11-3-5MPP0001-10"
P8851, P7841, P8831 = "00562b043615", "00562b047841", "00562b048831"


def station(env, convert: str = ""):
    root = Path(env["APPLIANCE_TFTP_ROOT"])
    for load in (MPP_OLD, MPP_NEW, ENT78, TL78, MPP78):
        synth.write_zip(root, load, size_bytes=6_000)
    environ = {**env, "APPLIANCE_UPGRADE_CONVERT": convert} if convert else env
    cfg = validate.load(environ=environ)
    cat = Catalog.from_config(cfg)
    cat.scan()
    return make_tracker(cat, cfg), cat, root


class Phone:
    """Feeds one phone's facts from its address; keeps the core's outputs."""

    def __init__(self, core, mac: str, ip: str, vc: str, t: float = 1000.0):
        self.core, self.mac, self.ip, self.t = core, mac, ip, t
        self.answers: list[Answers] = []
        self.feed(Lease(t, mac, ip, True, vc.rsplit("CP-", 1)[1].replace("-3PCC", "").join(["CP-", ""]), vc))

    def feed(self, ev) -> list:
        self.t += 1
        out = self.core.handle(ev, self.t)
        self.answers += [o for o in out if isinstance(o, Answers)]
        return out

    @property
    def p(self):
        return self.core.phones[self.mac]

    def ask(self, name: str, proto: str = "tftp", agent: str | None = None) -> None:
        served = self.core.answer(self.mac).config if self.core.answer(self.mac) else None
        self.feed(FileAsked(self.t, self.ip, name, proto, served=served, agent=agent))
        self.feed(FileSent(self.t, self.ip, name, proto))

    def install(self, cat, load: str, platform: int = 0) -> None:
        """The manifest, then its first platform's files (a 7800/8800 fetches only its own)."""
        self.ask(f"{load}.loads")
        for name in cat.load(load).platforms[platform]["files"]:
            self.ask(name)


def test_an_mpp_8851_on_an_old_load_is_recovered_to_the_newest_mpp_load(station_env):
    core, cat, _ = station(station_env)
    ph = Phone(core, P8851, "10.0.0.51", "Cisco Systems, Inc. IP Phone CP-8851-3PCC")
    assert ph.p.model == "CP-8851" and ph.p.protocol == "mpp"
    assert dict(core.defaults())["CP-8851-3PCC"] == MPP_NEW
    assert core.answer(P8851).config == MPP_NEW           # what its first profile is rendered with
    ph.ask("8851-3PCC.xml")
    assert ph.p.state is S.CONFIGURED and ph.p.plan == [MPP_NEW]
    ph.install(cat, MPP_NEW)
    assert ph.p.state is S.REBOOTING
    ph.ask(f"Cisco/CP-8851-3PCC/{P8851}.cfg")
    assert ph.p.state is S.DONE and ph.p.current == MPP_NEW and ph.p.note.code is Code.ON_LOAD


def test_a_user_agent_naming_the_target_ends_the_phone_there_and_anothers_mac_is_no_word(station_env):
    core, _, _ = station(station_env)
    ph = Phone(core, P8851, "10.0.0.51", "Cisco Systems, Inc. IP Phone CP-8851-3PCC")
    ph.ask("8851-3PCC.xml", "http", agent="Cisco-CP-8851-3PCC/11.3.3 (00562b043699)")
    assert ph.p.current is None
    ph.ask("8851-3PCC.xml", "http", agent="Cisco-CP-8851-3PCC/11.3.3 (00562b043615)")
    assert ph.p.current == MPP_NEW and ph.p.how == "agent" and ph.p.state is S.DONE


def test_a_profile_from_a_phone_the_core_thought_enterprise_replans_it_as_mpp(station_env):
    core, _, _ = station(station_env)
    ph = Phone(core, P8851, "10.0.0.51", "Cisco Systems, Inc. IP Phone CP-8851")
    ph.feed(LoadReported(ph.t, P8851, "sip88xx.12-5-1SR3-74", "sip88xx.12-5-1SR3-74"))
    ph.ask("8851-3PCC.xml")
    assert ph.p.protocol == "mpp" and ph.p.current is None and ph.p.plan == [MPP_NEW]


def test_an_enterprise_7841_set_to_convert_with_its_licence_goes_through_the_transition_load(station_env):
    core, cat, root = station(station_env, convert=f"{P7841}=mpp")
    (root / "licences").mkdir()
    (root / "licences" / f"{P7841.upper()}.lic").write_bytes(b"licence\n")
    ph = Phone(core, P7841, "10.0.0.78", "Cisco Systems, Inc. IP Phone CP-7841")
    ph.feed(LoadReported(ph.t, P7841, ENT78, ENT78, vid="V04"))
    assert ph.p.plan == [TL78, MPP78]
    # Nothing tells the core of a file in licences/: the config it next asks was rendered from the row before it
    # (its own load), and that request makes the core look again, so the one after names the transition load.
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert core.answer(P7841).config == TL78
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert ph.p.state is S.CONFIGURED and ph.p.boot.offered == TL78
    ph.install(cat, TL78)
    assert ph.p.state is S.REBOOTING
    assert core.answer(P7841).config == MPP78                # the profile it asks after its reboot names MPP
    ph.ask("7841-3PCC.xml")
    assert ph.p.current == TL78 and ph.p.state is S.CONFIGURED and ph.p.boot.offered == MPP78
    ph.ask(f"{P7841.upper()}.lic")
    ph.install(cat, MPP78)
    ph.ask("7841-3PCC.xml")
    assert ph.p.state is S.DONE and ph.p.current == MPP78


def test_without_its_licence_it_is_stuck_naming_the_file_and_goes_on_once_it_is_added(station_env):
    core, _, root = station(station_env, convert="7841=mpp")
    ph = Phone(core, P7841, "10.0.0.78", "Cisco Systems, Inc. IP Phone CP-7841")
    ph.feed(LoadReported(ph.t, P7841, ENT78, ENT78, vid="V04"))
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert ph.p.state is S.STUCK and ph.p.note.code is Code.CONVERT_REFUSED
    words = say(ph.p.note)
    assert f"{P7841.upper()}.lic" in words and "licences folder" in words
    assert core.answer(P7841).config == ENT78                # its config names the load it runs
    (root / "licences").mkdir()
    (root / "licences" / f"{P7841.upper()}.lic").write_bytes(b"licence\n")
    # Nothing tells the core of a file in licences/: the config it next asks was rendered from the row before it
    # (its own load), and that request makes the core look again, so the one after names the transition load.
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert core.answer(P7841).config == TL78
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert ph.p.state is S.CONFIGURED and ph.p.boot.offered == TL78


@pytest.mark.parametrize("mac,vc,vid,words", [
    (P8831, "Cisco Systems, Inc. IP Phone CP-8831", None, "8821 and 8831 as not eligible"),
    (P7841, "Cisco Systems, Inc. IP Phone CP-7841", "V02", "from hardware version V04"),
])
def test_a_phone_cisco_does_not_let_convert_is_refused_with_the_reason(station_env, mac, vc, vid, words):
    core, _, root = station(station_env, convert=f"{mac}=mpp")
    (root / "licences").mkdir()
    (root / "licences" / f"{mac.upper()}.lic").write_bytes(b"licence\n")
    ph = Phone(core, mac, "10.0.0.88", vc)
    if vid:
        ph.feed(LoadReported(ph.t, mac, ENT78, ENT78, vid=vid))
    ph.ask(f"SEP{mac.upper()}.cnf.xml")
    assert ph.p.state is S.STUCK and ph.p.note.code is Code.CONVERT_REFUSED
    assert words in say(ph.p.note) and "licence" not in say(ph.p.note)


def test_a_model_key_for_an_ineligible_model_stops_startup_naming_it(station_env):
    with pytest.raises(validate.ConfigError) as info:
        station(station_env, convert="8831=mpp")
    assert "upgrade.convert.8831" in str(info.value) or "convert.8831" in str(info.value)
    assert "not eligible" in str(info.value)


def test_a_v15_8851_on_mpp_is_held_to_its_mpp_floor(station_env):
    """88x1 V15+ take nothing under MPP 11.3(3) (floors.toml, firmware "mpp"): with only 11.3(1) it is stuck naming
    the floor; the Enterprise floor (12.6) is not the one an MPP phone is held to."""
    root = Path(station_env["APPLIANCE_TFTP_ROOT"])
    synth.write_zip(root, MPP_OLD, size_bytes=6_000)
    cfg = validate.load(environ=station_env)
    cat = Catalog.from_config(cfg)
    cat.scan()
    core = make_tracker(cat, cfg)
    ph = Phone(core, P8851, "10.0.0.51", "Cisco Systems, Inc. IP Phone CP-8851-3PCC")
    ph.feed(LoadReported(ph.t, P8851, None, "", vid="V15"))
    ph.ask("8851-3PCC.xml")
    assert ph.p.state is S.STUCK and "V15" in say(ph.p.note) and "11.3(3)" in say(ph.p.note)
    synth.write_zip(root, MPP_NEW, size_bytes=6_000)
    cat.scan()
    assert core.plan(ph.p).steps == [MPP_NEW]


def test_a_licence_file_that_cannot_be_one_is_named_with_why(station_env):
    core, _, root = station(station_env, convert=f"{P7841}=mpp")
    (root / "licences").mkdir()
    (root / "licences" / f"{P7841.upper()}.lic").write_bytes(b"")
    ph = Phone(core, P7841, "10.0.0.78", "Cisco Systems, Inc. IP Phone CP-7841")
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert ph.p.state is S.STUCK and "cannot be its licence (empty)" in say(ph.p.note)
    (root / "licences" / f"{P7841.upper()}.lic").write_bytes(b"MAC=001122334455\n")
    ph.feed(Retry(ph.t, P7841))
    ph.ask(f"SEP{P7841.upper()}.cnf.xml", "http")
    assert "another phone's MAC" in say(ph.p.note)
