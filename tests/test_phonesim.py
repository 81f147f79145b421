"""The independent phone model (tools/phonesim): truth table, signed header, state machine, codecs.

Pure: no sockets; phones are driven by tools.phonesim.offline with simulated time.
Facts under test come from the reference (cisco-phones.md §0.0, §2, §4.2, §5, §7, §8).
"""
from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest

from tools.phonesim import firmware, truth
from tools.phonesim.content import load_information, manifest_components, os79xx
from tools.phonesim.deviceinfo import fields
from tools.phonesim.events import AskLease, Fetch, Fetched, Leased, PowerOn, Sleep, TimerFired, TrustListErased
from tools.phonesim.loadid import jar_name, load_of_jar, parse_load
from tools.phonesim.machine import PhoneMachine, PhoneSpec, State
from tools.phonesim.models import model
from tools.phonesim.offline import Files, drive
from tools.phonesim.signed import HeaderError, name_matches, parse_header, verify
from tools.phonesim.tftp import TftpRead

MAC = "001E7A650001"
SEP = f"SEP{MAC}.cnf.xml"
OLD, STONE, SR1, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.8-5-2SR1S", "SCCP45.9-4-2SR4-3S"


def L(text):
    load = parse_load(text)
    assert load is not None, text
    return load


def cnf(load: str | None, web: int | None = 0) -> bytes:
    info = f"<loadInformation>{load}</loadInformation>" if load else ""
    wa = f"<webAccess>{web}</webAccess>" if web is not None else ""
    return f"<device><deviceProtocol>SCCP</deviceProtocol>{info}<vendorConfig>{wa}</vendorConfig></device>".encode()


def phone(start=OLD, name="7965", mac=MAC, **kw) -> PhoneMachine:
    return PhoneMachine(PhoneSpec(model(name), mac, L(start), **kw))


def library(*loads: str, term: bool = False) -> Files:
    files = Files(http=False)
    for load in loads:
        for name, data in firmware.load_files(load, size=2000, term=term).items():
            files[name] = data
    return files


def names(m: PhoneMachine) -> list[str]:
    return [f["name"] for f in m.fetches]


# --- the product is not imported ------------------------------------------------------------------

def test_phonesim_never_imports_the_product():
    for path in Path("tools").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m == "appliance" or m.startswith("appliance.") for m in mods), (path, mods)


# --- truth table ----------------------------------------------------------------------------------

@pytest.mark.parametrize("running, keys", [
    ("SCCP45.8-0-3S", {truth.OLD_KEY}), ("SCCP45.8-3-2S", {truth.OLD_KEY}), ("SCCP45.8-3-2SR1S", {truth.OLD_KEY}),
    ("SCCP45.8-3-3S", {truth.OLD_KEY, truth.NEW_KEY}), ("SCCP45.8-4-4S", {truth.OLD_KEY, truth.NEW_KEY}),
    ("SCCP45.8-5-2S", {truth.OLD_KEY, truth.NEW_KEY}), ("SCCP45.8-5-2SR1S", {truth.NEW_KEY}),
    ("SCCP45.8-5-3S", {truth.NEW_KEY}), ("SCCP45.9-4-2SR4-3S", {truth.NEW_KEY}), ("SIP45.8-5-2S", {truth.OLD_KEY, truth.NEW_KEY}),
])
def test_keys_each_load_knows(running, keys):
    assert truth.keys_known(L(running)) == keys


@pytest.mark.parametrize("running, offered, ok", [
    (OLD, STONE, True), (OLD, "SCCP45.8-3-3S", True), (OLD, SR1, False), (OLD, "SCCP45.8-5-3S", False),
    (OLD, TARGET, False), (STONE, SR1, True), (STONE, TARGET, True), ("SCCP45.8-4-4S", TARGET, True),
    ("SCCP45.8-3-3S", TARGET, True), (TARGET, STONE, False),      # back to an old-key load: UNCONFIRMED
    ("SIP45.8-3-2S", "SIP45.9-4-2SR3-1S", False), ("SIP45.8-3-2S", "SIP45.8-5-2S", True),
    (OLD, "SIP45.9-4-2SR3-1S", False), (OLD, "SIP45.8-5-2S", True),     # converting keeps the key rule
])
def test_79x5_signing_key_rule(running, offered, ok):
    v = truth.verdict(model("7965"), L(running), L(offered))
    assert v.accepted is ok
    assert v.screen == (None if ok else truth.AUTH_FAIL)


@pytest.mark.parametrize("name", ["7906", "7911", "7931", "7941", "7961", "7942", "7962", "7945", "7970", "7971", "7975"])
def test_every_tnp_model_has_the_key_rule(name):
    m = model(name)
    old, stone, new = (L(f"SCCP{m.loads}.{v}S") for v in ("8-3-2", "8-5-2", "9-4-2SR3-1"))
    assert not truth.verdict(m, old, new).accepted and truth.verdict(m, old, stone).accepted
    assert truth.verdict(m, stone, new).accepted


@pytest.mark.parametrize("running, offered, screen", [
    ("P00307020300", "P00308010200", truth.FILE_AUTH_ERROR), ("P00308000500", "P0030801SR02", truth.FILE_AUTH_ERROR),
    ("P00307020300", "P00308010100", None), ("P00308010100", "P00308010200", None),
    ("P00308010100", "P0030801SR02", None), ("P00308010200", "P0030801SR02", None),
    ("P00307020300", "P0S3-8-12-00", None),             # SCCP 7.x may convert to SIP (§5.2, [22])
    ("P00304000000", "P0S3-8-12-00", truth.IMAGE_AUTH_FAILED),   # SCCP must be on 5.x first
    ("P0S3-5-3-00", "P0S3-8-12-00", truth.IMAGE_AUTH_FAILED),    # SIP can't jump 5.3 -> 8.x (CME docs [8])
    ("P0S3-7-5-00", "P0S3-8-12-00", None), ("P0S3-6-0-00", "P0S3-4-4-00", truth.IMAGE_AUTH_FAILED),
])
def test_7940_rules_per_protocol(running, offered, screen):
    v = truth.verdict(model("7940"), L(running), L(offered))
    assert (v.accepted, v.screen) == (screen is None, screen)


def test_sccp_gate_does_not_touch_sip_and_key_rule_not_the_7940():
    assert truth.verdict(model("7960"), L("P0S3-7-5-00"), L("P0S3-8-12-00")).accepted
    assert truth.verdict(model("7940"), L("P00307020300"), L("P00308010100")).accepted


def test_wrong_family_and_hardware_floor():
    v = truth.verdict(model("7965"), L(STONE), L("SCCP42.9-4-2SR3-1S"))
    assert (v.accepted, v.screen) == (False, truth.LOAD_ID_INCORRECT)
    assert truth.verdict(model("7971"), L("SCCP70.8-5-2S"), L("SCCP70.9-4-2SR3-1S")).accepted  # 7971 runs 7970 loads
    v = truth.verdict(model("7965"), L(OLD), L(STONE), hardware_floor=L("SCCP45.9-0-3S"))
    assert (v.accepted, v.screen) == (False, truth.LOAD_REJECTED_HC)


def test_load_ids():
    assert L("P0030801SR02").key == (8, 1, 2, 2, 0) and L("P00308010200").key == (8, 1, 2, 0, 0)
    assert parse_load("P0030801SR01") is None            # SR form the reference does not name: not guessed
    assert L("SCCP45.8-5-2SR1S").key == (8, 5, 2, 1, 0) and L(TARGET).key == (9, 4, 2, 4, 3)
    assert L("SIP45.9-4-2SR3-1S.loads").protocol == "sip" and L("P0S3-8-12-00").protocol == "sip"
    assert jar_name(L(TARGET)) == "jar45sccp.9-4-2SR4-3.sbn"
    assert load_of_jar("Jar45sccp.9-4-2SR4-3.sbn").text == TARGET
    assert parse_load("jar45sccp.9-4-2SR4-3.sbn") is None and parse_load("*SCCP45.9-4-2SR4-3S*") is None
    with pytest.raises(ValueError):
        model("7937")      # not simulated (no .loads, §0.0 item 10); the 8841 is since issue 26


# --- signed header --------------------------------------------------------------------------------

def test_writer_is_byte_faithful_to_the_real_manifest():
    data = firmware.manifest(L(TARGET))
    assert data[:13] == bytes.fromhex("01 00 02 01 01 02 00 02 01 9c 03 00 5b")
    assert len(firmware.header(f"{TARGET}.loads")) == 412
    head = data[:412]
    assert head[-31:] == b"\x0e\x00\x19SCCP45.9-4-2SR4-3S.loads\x00\x0d\x0d\x0d"
    sig = head.index(b"\x0c\x01\x00")
    assert head[sig + 3 + 256:sig + 3 + 256 + 1] == b"\x0e"
    assert head[10 + 94:10 + 94 + 3] == b"\x07\x00\x0f"       # tag 7 holds 8 and 9(10, 11)
    assert data[412:].startswith(b"#\r\n# This file contains a list of archive image files that will be requested by the\r\n")
    assert b"\n" not in data[412:].replace(b"\r\n", b"")
    assert manifest_components(data[412:]) == firmware.components(L(TARGET))


@pytest.mark.parametrize("name", ["a.sbn", "ab.sbn", "abc.sbn", "abcd.sbn", "P0030801SR02.sb2", "term65.default.loads"])
def test_header_lengths_are_multiples_of_four_and_parse(name):
    h = firmware.header(name)
    parsed = parse_header(h + b"payload")
    assert len(h) % 4 == 0 and parsed.length == len(h) and parsed.name == name
    assert parsed.padding < 4 and parsed.tags == (3, 7, 12, 14)
    assert h.endswith(name.encode() + b"\0" + b"\x0d" * parsed.padding)


def _hand_header(name: bytes, extra: bytes = b"", pad: int | None = None) -> bytes:
    """A header built here, not by the writer: tag 15 timestamp, tags in real order."""
    t = lambda tag, v: struct.pack(">BH", tag, len(v)) + v  # noqa: E731
    body = t(3, t(4, b"CN=x\0") + t(5, b"\x01" * 8) + t(6, b"CN=y\0")) + t(7, t(8, b"\x01") + t(9, t(10, b"\0") + t(11, b"\x02")))
    body += t(12, b"\xaa" * 256) + t(14, name) + extra
    bare = 10 + len(body)
    pad = (-bare % 4) if pad is None else pad
    return t(1, b"\x01\x01") + t(2, struct.pack(">H", bare + pad)) + body + b"\x0d" * pad


def test_parser_reads_an_independently_built_header_with_timestamp():
    h = _hand_header(b"SCCP45.9-4-2SR4-3S.loads\0", struct.pack(">BHI", 15, 4, 1234567890), pad=2)
    parsed = parse_header(h + b"#\r\n")
    assert (parsed.name, parsed.timestamp, parsed.version, parsed.signature_length) == (
        "SCCP45.9-4-2SR4-3S.loads", 1234567890, (1, 1), 256)
    assert parsed.tags == (3, 7, 12, 14, 15) and parsed.length == len(h) and parsed.padding == 2


@pytest.mark.parametrize("pad", [0, 1, 2, 3, 7])
def test_tag_13_is_one_byte_without_length(pad):
    """Three 0x0d bytes as TLV would read a length of 0x0d0d and run off the header."""
    assert parse_header(_hand_header(b"x.sbn\0", pad=pad)).padding == pad


@pytest.mark.parametrize("data, where", [
    (b"\x01\x00\x02\x01", "shorter"),
    (bytes.fromhex("02 00 02 01 9c 01 00 02 01 01") + bytes(400), "tag 1"),
    (bytes.fromhex("01 00 02 01 01 02 00 02 ff ff") + bytes(20), "outside"),
    (bytes.fromhex("01 00 02 01 01 02 00 02 00 10 0c 01 00 0d 0d 0d"), "runs past"),
])
def test_malformed_headers(data, where):
    with pytest.raises(HeaderError, match=where):
        parse_header(data)


def test_malformed_tag_14_signature_and_containers():
    with pytest.raises(HeaderError, match="NUL"):
        parse_header(_hand_header(b"x.sbn"))
    no_sig = _hand_header(b"x.sbn\0").replace(b"\x0c\x01\x00" + b"\xaa" * 256, b"\x10\x01\x00" + b"\xaa" * 256)
    with pytest.raises(HeaderError, match="tag 12"):
        parse_header(no_sig)
    broken = bytearray(_hand_header(b"x.sbn\0"))
    broken[12] += 1                     # tag 3 claims one byte more than its nested TLVs fill
    with pytest.raises(HeaderError):
        parse_header(bytes(broken))


def test_signed_name_check():
    assert name_matches("TERM65.DEFAULT.LOADS", "term65.default.loads")
    assert name_matches("/Jar45sccp.9-4-2SR4-3.sbn", "jar45sccp.9-4-2SR4-3.sbn")
    assert name_matches("DSP69xx.12-4-123-2.160119.zz.sgn", "DSP69xx.12-4-123-2.160119.zz.sgn")
    assert name_matches("DSP69xx.12-4-123-2.160119.zz.sgn", "DSP69xx.12-4-123-2.160119.zz")   # UNCONFIRMED which
    assert not name_matches("term65.default.loads", f"{STONE}.loads")
    assert not name_matches("x.zz", "x.zz.sgn")
    assert verify("term65.default.loads", firmware.manifest(L(STONE)))[1].startswith("signed as")
    assert verify("a.sbn", b"junk")[1].startswith("malformed")


# --- the state machine ----------------------------------------------------------------------------

def test_auth_fail_without_a_new_lease():
    """§0.0 item 5: .loads fetched, nothing verified, no component, same lease, config again later."""
    files = library(TARGET)
    files[SEP] = cnf(TARGET)
    actions = []
    m = drive(phone(OLD), files, on_action=lambda now, a: actions.append((now, a)), until=60)
    assert m.boots == 1 and sum(isinstance(a, AskLease) for _, a in actions) == 1
    assert m.flash.running.text == OLD and not m.installed
    assert not any(n.startswith(("jar", "cnu", "apps", "dsp", "cvm")) for n in names(m))
    first_refusal = m.refused[0]["t"]
    asks = [f["t"] for f in m.fetches if f["name"] == SEP]
    assert len(asks) >= 5 and asks[1] - first_refusal == pytest.approx(m.spec.retry_s, abs=0.2)
    assert names(m)[:6] == [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", "ITLFile.tlv", SEP, f"{TARGET}.loads", SEP]
    assert {r["screen"] for r in m.refused} == {truth.AUTH_FAIL}


def test_stepwise_upgrade_installs_only_after_every_component_and_reboots():
    files = library(STONE, TARGET)
    files[SEP] = cnf(STONE)

    def station(name, via):
        if name == SEP and m.flash.running.text in (STONE, TARGET):
            return cnf(TARGET)
        return files(name, via)
    m = phone(OLD)
    drive(m, station, stop=lambda m: m.settled)
    assert m.installed == [STONE, TARGET] and m.flash.running.text == TARGET and m.boots == 3
    assert names(m).count(SEP) == 3
    comps = firmware.components(L(STONE))
    i = names(m).index(f"{STONE}.loads")
    assert names(m)[i + 1:i + 1 + len(comps)] == comps


def test_a_component_signed_under_another_name_aborts_without_install():
    files = library(STONE)
    files[SEP] = cnf(STONE)
    files["cnu45.8-5-2.sbn"] = firmware.component("apps45.8-5-2.sbn")
    m = drive(phone(OLD), files, until=30)
    assert not m.installed and m.flash.running.text == OLD
    assert m.refused[0]["screen"] == truth.AUTH_FAIL and "signed as" in m.refused[0]["why"]


def test_manifest_signed_under_another_name_or_malformed_is_refused():
    files = library(TARGET)
    files[SEP] = cnf(STONE)
    files[f"{STONE}.loads"] = firmware.manifest(L(STONE), signed_as="term65.default.loads")
    m = drive(phone(OLD), files, until=20)
    assert not m.installed and "signed as" in m.refused[0]["why"] and not any(n.endswith(".sbn") for n in names(m))
    files[f"{STONE}.loads"] = b"\x01\x00\x02\x01\x01\x02\x00\x02\x00\x0a" + b"# no signature"
    m = drive(phone(OLD), files, until=20)
    assert not m.installed and "malformed" in m.refused[0]["why"]


def test_device_information_names_components_on_79x5_and_load_ids_on_7940():
    files = library(TARGET)
    files[SEP] = cnf(TARGET)
    m = drive(phone(STONE), files, stop=lambda m: m.settled)
    page = fields(m.spec.model, MAC, m.flash.running, m.flash.components)
    assert page["appLoadID"] == "jar45sccp.9-4-2SR4-3.sbn" and page["versionID"] == "*SCCP45.9-4-2SR4-3S*"
    assert page["bootLoadID"].startswith("tnp65.") and page["bootLoadID"].endswith(".bin")
    assert page["modelNumber"] == "CP-7965G"
    assert "<appLoadID>jar45sccp.9-4-2SR4-3.sbn</appLoadID>" in m.device_information()
    p = fields(model("7940"), MAC, L("P00308010200"), ())
    assert (p["appLoadID"], p["versionID"], p["modelNumber"]) == ("P00308010200", "8.1(2.0)", "CP-7940")


def test_web_access_on_off_and_down_while_rebooting():
    files = library(STONE)
    files[SEP] = cnf(STONE, web=1)
    pages = []
    m = phone(OLD, web=True)
    drive(m, files, stop=lambda m: m.settled, on_action=lambda now, a: pages.append((type(a).__name__, m.device_information())))
    assert pages[0][1] is None                              # no address yet
    assert any(p for kind, p in pages[:5])                   # served while it boots on its old load
    assert m.flash.web is False and m.device_information() is None      # <webAccess>1</webAccess> taken
    rebooting = [p for kind, p in pages if kind == "Sleep"]
    assert rebooting and m.boots == 2
    files[SEP] = cnf(STONE, web=0)
    m = drive(phone(STONE, web=False), files, stop=lambda m: m.settled)
    assert m.device_information() is not None               # the station's config turned it on
    m = drive(phone(STONE, web=False, obey_web_access=False), files, stop=lambda m: m.settled)
    assert m.device_information() is None


def test_factory_reset_loops_on_a_term_file_it_cannot_verify_then_takes_the_stone():
    files = library(TARGET, term=True)                      # 9.x term file: "does nothing" (§0.0 item 7)
    m = phone(OLD, factory_reset=True)
    drive(m, files, until=60)
    assert m.flash.running is None and m.boots >= 4 and not m.installed
    assert set(names(m)) == {"term65.default.loads"} and m.device_information() is None
    assert {r["screen"] for r in m.refused} == {truth.AUTH_FAIL}
    stone_files = library(STONE, TARGET)
    for name, data in firmware.load_files(STONE, size=2000, term=True).items():
        stone_files[name] = data
    stone_files[SEP] = cnf(TARGET)
    m = phone(OLD, factory_reset=True)
    drive(m, stone_files, stop=lambda m: m.settled)
    assert m.installed == [STONE, TARGET] and m.flash.running.text == TARGET
    after_term = names(m)[names(m).index("term65.default.loads") + 1:]
    assert after_term[:5] == firmware.components(L(STONE)) and after_term[5] == f"CTLSEP{MAC}.tlv"
    assert SEP in after_term


def test_factory_reset_refuses_a_manifest_served_as_the_term_file():
    files = library(STONE)
    files["term65.default.loads"] = files(f"{STONE}.loads", "tftp")     # tag 14 says SCCP45.8-5-2S.loads
    m = drive(phone(OLD, factory_reset=True), files, until=40)
    assert m.flash.running is None and "signed as" in m.refused[0]["why"]


def test_7906_asks_for_its_term_file_in_pairs():
    m = drive(phone("SCCP11.8-3-2S", "7906", factory_reset=True), library("SCCP11.9-4-2SR3-1S", term=True), until=25)
    times = [f["t"] for f in m.fetches]
    assert len(times) >= 4 and times[1] - times[0] < 1 and times[2] - times[1] >= m.spec.term_retry_s


def test_7940_two_stage_flash_installs_after_the_sb2():
    target = "P00308010100"
    files = library(target)
    files[SEP] = cnf(target)
    leases = []
    m = phone("P00307020300", "7940")
    seen = []
    drive(m, files, stop=lambda m: m.settled,
          on_action=lambda now, a: (leases.append(a.vendor_class) if isinstance(a, AskLease) else None,
                                    seen.append((names(m)[-1] if m.fetches else None, m.flash.running.text))))
    order = names(m)
    assert order[:3] == ["OS79XX.TXT", f"CTLSEP{MAC}.tlv", SEP]
    sbn, sb2 = order.index(f"{target}.sbn"), order.index(f"{target}.sb2")
    assert order[sbn + 1:sb2] == [] and f"{target}.sb2" not in order[:sbn]
    assert all(run == "P00307020300" for last, run in seen if last in (f"{target}.loads", f"{target}.sbn"))
    assert m.installed == [target] and m.boots == 3
    assert leases[0] == "Cisco Systems, Inc. IP Phone\x00" and leases[1] == "Cisco Systems, Inc. IP Phone CP-7940G\x00"


def test_7940_missing_sb2_leaves_the_load_uninstalled():
    target = "P00308010100"
    files = library(target)
    files[SEP] = cnf(target)
    files.files.pop(f"{target}.sb2".lower())
    m = drive(phone("P00307020300", "7940"), files, until=40)
    assert not m.installed and m.flash.pending_app.text == target and m.flash.running.text == "P00307020300"
    assert "Protocol Application Invalid" in [s for _, s in m.screens]


def test_7940_file_auth_error_from_below_811():
    files = library("P00308010200")
    files[SEP] = cnf("P00308010200")
    m = drive(phone("P00307020300", "7960"), files, until=20)
    assert m.refused[0]["screen"] == truth.FILE_AUTH_ERROR and "P00308010200.sbn" not in names(m)


def test_7940_sip_takes_image_version_and_os79xx_converts():
    files = library("P0S3-8-12-00")
    files["SIPDefault.cnf"] = b'image_version: "P0S3-8-12-00"\n'
    m = drive(phone("P0S3-7-5-00", "7940"), files, stop=lambda m: m.settled)
    assert names(m)[:5] == ["OS79XX.TXT", f"CTLSEP{MAC}.tlv", SEP, "SIPDefault.cnf", f"SIP{MAC}.cnf"]
    assert m.installed == ["P0S3-8-12-00"]
    files = library("P0S3-8-12-00")
    files["OS79XX.TXT"] = b"P0S3-8-12-00\r\n"
    m = drive(phone("P00308010200", "7940"), files, stop=lambda m: m.installed)
    assert m.installed == ["P0S3-8-12-00"] and SEP not in names(m)
    assert os79xx(b"P0S3-8-12-00 \r\n") == "P0S3-8-12-00 "     # trailing space kept: it breaks the phone


def test_phone_with_another_clusters_itl_ignores_unsigned_config_until_erased():
    files = library(STONE)
    files[SEP] = cnf(STONE)
    files[SEP + ".sgn"] = cnf(STONE)                         # even served, the station cannot sign it
    m = phone(OLD, itl=True)
    drive(m, files, stop=lambda m: names(m).count(SEP + ".sgn") >= 3 and m.state == State.WAIT)
    assert names(m)[:4] == [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", "ITLFile.tlv", SEP + ".sgn"]
    assert SEP not in names(m) and not m.installed and names(m).count(SEP + ".sgn") >= 3
    m.handle(TrustListErased(41.0))
    actions = m.handle(TimerFired(1e6))
    assert actions == [Fetch(SEP, "tftp", "10.0.0.1")]


def test_phone_without_trust_list_installs_the_first_itl_served():
    files = library(STONE)
    files[SEP] = cnf(STONE)
    files["ITLFile.tlv"] = b"\x01\x00\x02\x01\x01 an ITL"
    m = drive(phone(OLD), files, until=20)
    assert m.flash.itl == "station" and SEP + ".sgn" in names(m) and SEP not in names(m) and not m.installed


def test_http_first_then_tftp_per_file():
    files = library(STONE)
    files[SEP] = cnf(STONE)
    m = drive(phone(OLD, http_first=True), files, stop=lambda m: m.settled)
    vias = [(f["name"], f["via"]) for f in m.fetches]
    assert vias[:2] == [(f"CTLSEP{MAC}.tlv", "http"), (f"CTLSEP{MAC}.tlv", "tftp")]
    assert all(vias[i][1] == "http" and vias[i + 1] == (vias[i][0], "tftp") for i in range(0, len(vias), 2))
    files.http = True
    m = drive(phone(OLD, http_first=True), files, stop=lambda m: m.settled)
    assert m.installed == [STONE] and all(f["via"] == "http" for f in m.fetches if f["ok"])
    assert not [f for f in m.fetches if f["via"] == "tftp" and f["name"].endswith(".sbn")]


def test_capitalised_and_slash_prefixed_names():
    files = library(STONE, term=True)
    files[SEP] = cnf(STONE)
    m = drive(phone(OLD, factory_reset=True, capitalised=True), files, stop=lambda m: m.installed)
    assert names(m)[0] == "TERM65.DEFAULT.LOADS" and names(m)[1] == "Jar45sccp.8-5-2.sbn" and m.installed == [STONE]
    assert m.flash.components[0] == "jar45sccp.8-5-2.sbn"    # as the manifest lists it, for appLoadID
    m = drive(phone(OLD, leading_slash=True), files, stop=lambda m: m.installed)
    assert all(n.startswith("/") for n in names(m)) and m.installed == [STONE]


def test_xmldefault_fallback_picks_the_phones_device_type():
    files = library(STONE)
    files["XMLDefault.cnf.xml"] = (b'<Default><loadInformation434 model="Cisco 7942">SCCP42.8-5-2S</loadInformation434>'
                                   b'<loadInformation436 model="Cisco 7965">SCCP45.8-5-2S</loadInformation436></Default>')
    m = drive(phone(OLD), files, stop=lambda m: m.installed)
    assert names(m)[3:5] == [SEP, "XMLDefault.cnf.xml"] and m.installed == [STONE]
    assert load_information(files("XMLDefault.cnf.xml", "tftp"), 434) == "SCCP42.8-5-2S"


def test_stone_rejected_by_hardware_floor():
    files = library(STONE)
    files[SEP] = cnf(STONE)
    m = drive(phone(OLD, hardware_floor=L("SCCP45.9-0-3S")), files, until=20)
    assert m.refused[0]["screen"] == truth.LOAD_REJECTED_HC and not m.installed


def test_settled_phone_asks_again_and_follows_a_new_target():
    files = library(STONE, TARGET)
    files[SEP] = cnf(STONE)
    m = drive(phone(STONE), files, stop=lambda m: m.settled)
    assert m.settled and m.state == State.WAIT and not m.installed
    files[SEP] = cnf(TARGET)
    drive_more = m.handle(TimerFired(100.0))
    assert drive_more == [Fetch(SEP, "tftp", "10.0.0.1")]


def test_unexpected_events_are_ignored_not_fatal():
    m = phone(OLD)
    assert m.handle(Fetched(0.0, "x", "tftp", b"")) == [] and m.state == State.OFF
    m.handle(PowerOn(0.0))
    assert m.handle(TimerFired(1.0)) == [] and m.handle(PowerOn(2.0)) == []
    m.handle(Leased(3.0, "10.0.0.9", "10.0.0.1"))
    assert m.handle(Fetched(4.0, "not-asked.sbn", "tftp", b"x")) == []
    assert len(m.notes) == 4 and m.state == State.FETCH


def test_lease_without_tftp_server_retries_dhcp():
    m = phone(OLD)
    m.handle(PowerOn(0.0))
    actions = m.handle(Leased(1.0, "10.0.0.9", None))
    assert actions == [Sleep(1.0 + m.spec.dhcp_retry_s, "retry DHCP")] and "TFTP timeout" in [s for _, s in m.screens]
    assert isinstance(m.handle(TimerFired(10.0))[0], AskLease)


def test_spec_rejects_what_it_cannot_model():
    with pytest.raises(ValueError):
        phone("P00307020300", "7940", itl=True)
    with pytest.raises(ValueError):
        phone(STONE, "7942")


# --- codecs ---------------------------------------------------------------------------------------

def test_tftp_plain_rrq_and_blocks():
    t = TftpRead("TERM65.DEFAULT.LOADS")
    assert t.request() == b"\0\1TERM65.DEFAULT.LOADS\0octet\0"
    assert t.receive(b"\0\3\0\1" + b"a" * 512) == b"\0\4\0\1"
    assert t.receive(b"\0\3\0\1" + b"a" * 512) == b"\0\4\0\1" and len(t.data) == 512      # duplicate re-ACKed
    assert t.receive(b"\0\3\0\3" + b"b") is None                                         # out of order
    assert t.receive(b"\0\3\0\2" + b"end") == b"\0\4\0\2" and t.done and bytes(t.data).endswith(b"end")


def test_tftp_rollover_error_oack_and_size_limit():
    t = TftpRead("big")
    t.block, t.started = 0xFFFF, True
    assert t.receive(b"\0\3\0\0" + b"x" * 512) == b"\0\4\0\0" and t.block == 0
    e = TftpRead("missing")
    assert e.receive(b"\0") is None and e.receive(b"\0\3\0") is None and not e.done    # short datagrams ignored
    e.receive(b"\0\5\0\1File not found\0")
    assert e.done and e.error == "File not found"
    o = TftpRead("x", {"blksize": 1428})
    assert o.request().endswith(b"octet\0blksize\0" + b"1428\0")
    assert o.receive(b"\0\6blksize\0" + b"1428\0") == b"\0\4\0\0" and o.blksize == 1428
    plain = TftpRead("x")
    assert plain.receive(b"\0\6blksize\0" + b"1428\0").startswith(b"\0\5") and plain.error
    small = TftpRead("x", max_bytes=600)
    small.receive(b"\0\3\0\1" + b"a" * 512)
    assert small.receive(b"\0\3\0\2" + b"a" * 512).startswith(b"\0\5") and small.error


def test_dhcp_client_against_the_products_codec():
    """The phone's own DHCP encoder read by the station's parser, and the station's replies read by the phone."""
    from appliance.dhcp import codec
    from tools.phonesim.dhcp import DhcpClient
    c = DhcpClient(bytes.fromhex(MAC), "Cisco Systems, Inc. IP Phone CP-7965G\x00", "SEP" + MAC, 0x1234)
    d = codec.parse(c.discover())
    assert d.msg_type == codec.DISCOVER and d.flags & 0x8000 and d.options[60].endswith(b"CP-7965G\x00")
    assert d.options[12] == b"SEP" + MAC.encode() and 150 in d.options[55] and 66 in d.options[55]

    def reply(mtype, opts=None):
        return codec.serialize(codec.Message(op=2, xid=0x1234, chaddr=bytes.fromhex(MAC), yiaddr="10.9.0.7",
                                             siaddr="10.9.0.2", options={53: bytes([mtype]), 54: bytes([10, 9, 0, 1]),
                                                                         1: bytes([255, 255, 0, 0]), **(opts or {})}))
    req = codec.parse(c.receive(reply(codec.OFFER)))
    assert req.msg_type == codec.REQUEST and req.options[50] == bytes([10, 9, 0, 7])
    c.receive(reply(codec.ACK, {150: bytes([10, 9, 0, 3]), 66: b"10.9.0.4"}))
    assert (c.lease.ip, c.lease.mask, c.lease.tftp) == ("10.9.0.7", "255.255.0.0", "10.9.0.3")
    for opts, want in (({66: b"10.9.0.4"}, "10.9.0.4"), ({}, "10.9.0.2")):
        c2 = DhcpClient(bytes.fromhex(MAC), "v", "h", 0x1234)
        c2.discover()
        c2.receive(reply(codec.OFFER))
        c2.receive(reply(codec.ACK, opts))
        assert c2.lease.tftp == want
