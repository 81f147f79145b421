"""Generated phone configs (appliance/firmware/generated.py) for a 7965, a 7940 and an 8841 over a real catalog,
named by the recovery core's answer table, parsed with xml.etree."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.generated import Generated, refused
from appliance.recovery.answers import AnswerTable
from appliance.recovery.facts import Answer, Answers, Lease, LoadReported
from appliance.recovery.station import make_tracker

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
P_STONE, P_TARGET = "P00308010100", "P00308010200"
SIP88 = "sip88xx.12-5-1SR3-74"
MAC65, MAC40, MAC88 = "001b2c3d4e5f", "000d28aabbcc", "00a1b2c3d4e5"


class Station:
    """The core and the table a worker would hold, fed the same events."""

    def __init__(self, cat, cfg):
        self.core, self.table = make_tracker(cat, cfg), AnswerTable()

    def feed(self, event) -> None:
        for o in self.core.handle(event, time.time()):
            if isinstance(o, Answers):
                self.table.apply(o)


@pytest.fixture
def station(station_config):
    cfg = station_config
    root = Path(cfg.tftp.root)
    synth.write_zip(root, STONE, size_bytes=8_000)
    synth.write_zip(root, TARGET, size_bytes=8_000)
    synth.write_load(root, P_STONE, size_bytes=4_000)
    synth.write_load(root, P_TARGET, size_bytes=4_000)
    synth.write_cop(root, SIP88, size_bytes=8_000)
    cat = Catalog.from_config(cfg)
    cat.scan()
    st = Station(cat, cfg)
    now = time.time()
    st.feed(Lease(now, MAC65, "10.0.0.65", True, "CP-7965G", "Cisco Systems, Inc. IP Phone CP-7965G"))
    st.feed(Lease(now, MAC40, "10.0.0.40", True, "CP-7940G"))
    st.feed(Lease(now, MAC88, "10.0.0.88", True, "CP-8841"))
    st.feed(LoadReported(now, MAC88, "sip88xx.12-0-1MN-113", "sip88xx.12-0-1MN-113", "web"))
    return cfg, cat, st


def fixed(load: str) -> AnswerTable:
    """A table naming one load for everything."""
    t = AnswerTable()
    t.apply(Answers(1, (Answer(MAC65, "10.0.0.65", "CP-7965G", load, load, load),),
                    (("CP-7965G", load), ("CP-7940G", load))))
    return t


def sep(gen: Generated, mac: str) -> ET.Element:
    body = gen.render(f"SEP{mac.upper()}.cnf.xml")
    assert body is not None
    return ET.fromstring(body)


def check_sep(root: ET.Element, address: str, load: str) -> None:
    assert root.tag == "device"
    cm = root.find("devicePool/callManagerGroup/members/member/callManager")
    assert root.find("devicePool/callManagerGroup/members/member").get("priority") == "0"
    assert cm.findtext("processNodeName") == address and cm.findtext("ports/ethernetPhonePort") == "2000"
    assert root.findtext("loadInformation") == load
    assert root.findtext("vendorConfig/webAccess") == "0" and root.findtext("vendorConfig/peerFirmwareSharing") == "0"


def test_sep_files_follow_the_recovery_plan(station):
    cfg, cat, st = station
    gen = Generated(cfg, cat, st.table)
    address = cfg.network.address
    check_sep(sep(gen, MAC65), address, STONE)            # unknown current load: stepping stone first
    check_sep(sep(gen, MAC40), address, P_STONE)          # 7940: 8.1(1) before 8.1(2)SR2
    check_sep(sep(gen, MAC88), address, SIP88)            # 8841: no stone, straight to the newest
    assert gen.render(f"/sep{MAC65}.CNF.XML") == gen.render(f"SEP{MAC65.upper()}.cnf.xml")
    assert gen.render_named(f"SEP{MAC65}.cnf.xml")[1] == STONE
    st.feed(LoadReported(time.time(), MAC65, STONE, STONE, "web"))
    check_sep(sep(gen, MAC65), address, TARGET)


def test_xml_default_has_one_entry_per_model_with_a_load(station):
    cfg, cat, st = station
    gen = Generated(cfg, cat, st.table)
    root = ET.fromstring(gen.render("XMLDefault.cnf.xml"))
    assert root.tag == "Default"
    assert root.findtext("callManagerGroup/members/member/callManager/processNodeName") == cfg.network.address
    entries = {el.tag: (el.get("model"), el.text) for el in root if el.tag.startswith("loadInformation")}
    assert entries == {                                   # what the plan offers a phone of unknown load first
        "loadInformation436": ("Cisco 7965", STONE), "loadInformation435": ("Cisco 7945", STONE),
        "loadInformation8": ("Cisco 7940", P_STONE), "loadInformation7": ("Cisco 7960", P_STONE),
        "loadInformation683": ("Cisco 8841", SIP88), "loadInformation36217": ("Cisco 8811", SIP88),
        "loadInformation684": ("Cisco 8851", SIP88), "loadInformation685": ("Cisco 8861", SIP88),
        "loadInformation36232": ("Cisco 8851NR", SIP88),
    }
    assert gen.render("xmldefault.cnf.xml") == gen.render("/XMLDefault.cnf.xml")


def test_7940_text_files(station):
    cfg, cat, st = station
    gen = Generated(cfg, cat, st.table)
    assert gen.render("OS79XX.TXT", client_ip="10.0.0.40") == P_STONE.encode()
    assert gen.render("OS79XX.TXT") == P_STONE.encode()                 # unknown phone: 7940/60 plan
    assert gen.render(f"SEP{MAC40.upper()}.cnf") == f'image_version: "{P_STONE}"\n'.encode()
    assert gen.render(f"SIP{MAC40.upper()}.cnf") == f'image_version: "{P_STONE}"\n'.encode()
    assert gen.render("SIPDefault.cnf", client_ip="10.0.0.40") == f'image_version: "{P_STONE}"\n'.encode()
    # a 7965's address asking for OS79XX.TXT (stale lease, swapped phone) still gets a 7940/60 load
    assert gen.render("OS79XX.TXT", client_ip="10.0.0.65") == P_STONE.encode()
    assert gen.render(f"SEP{MAC65.upper()}.cnf") == f'image_version: "{P_STONE}"\n'.encode()


def test_term_file_is_the_planned_loads_own(station):
    cfg, cat, st = station
    gen = Generated(cfg, cat, st.table)
    body, load = gen.render_named("term65.default.loads", client_ip="10.0.0.65")
    assert body == cat.term_file_for(STONE, "term65.default.loads").read_bytes() and load == STONE
    assert b"jar45sccp.8-5-2.sbn" in body
    assert gen.render("TERM65.default.loads") == body                    # unknown address: the model's default


def test_a_per_phone_file_from_an_address_the_table_does_not_hold_waits(station):
    cfg, cat, st = station
    gen = Generated(cfg, cat, st.table)
    assert gen.knows(f"SEP{MAC65}.cnf.xml", "10.0.0.65") and gen.knows("XMLDefault.cnf.xml", "10.9.9.9")
    assert not gen.knows(f"SEP{MAC65}.cnf.xml", "10.9.9.9") and not gen.knows("OS79XX.TXT", None)
    assert gen.knows("jar45sccp.8-5-2.sbn", "10.9.9.9")


def test_escaping_and_unknown_names(station):
    cfg, cat, _ = station
    gen = Generated(cfg, cat, fixed('x<y>&"z'))
    root = ET.fromstring(gen.render(f"SEP{MAC65}.cnf.xml"))
    assert root.findtext("loadInformation") == 'x<y>&"z'
    default = ET.fromstring(gen.render("XMLDefault.cnf.xml"))
    assert all(el.text == 'x<y>&"z' for el in default if el.tag.startswith("loadInformation"))
    assert gen.render("OS79XX.TXT") == b"x<y>&z"
    for name in ("jar45sccp.9-4-2ES26.sbn", "SEP12.cnf.xml", "sub/SEP001B2C3D4E5F.cnf.xml", "", "ITLFile.tlv"):
        assert gen.render(name) is None


def test_an_empty_table_still_answers(station):
    cfg, cat, _ = station
    gen = Generated(cfg, cat, AnswerTable())
    assert ET.fromstring(gen.render(f"SEP{MAC65}.cnf.xml")).findtext("loadInformation") == ""
    assert gen.render("OS79XX.TXT") is None


@pytest.mark.parametrize("name,no", [
    (f"CTLSEP{MAC65.upper()}.tlv", True), (f"ITLSEP{MAC65}.tlv", True), ("ITLFile.tlv", True), ("/CTLFile.tlv", True),
    (f"SEP{MAC65.upper()}.cnf.xml.sgn", True), (f"SEP{MAC65}.cnf.xml.enc.sgn", True),
    (f"SEP{MAC65}.cnf.xml", False), ("SCCP69xx.9-4-1-3SR3.zz.sgn", False), ("term65.default.loads", False),
])
def test_trust_files_are_refused(name, no):
    assert refused(name) is no
