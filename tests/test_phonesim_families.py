"""The phone model beyond the 7900 (tools/phonesim): 7800/8800, 6921/6941/6961, 8941/8945.

Pure: no sockets, simulated time (tools.phonesim.offline).  Firmware is built here by hand from the
byte layout in phone-families.md §1.2 (the 5th-generation container) and with the model's own TLV
writer (tools/phonesim/firmware.py), never with the product's synth: what is under test is the model.
"""
from __future__ import annotations

import hashlib
import random
import re
import struct

import pytest

from tools.phonesim import container5, firmware, floors, manifest5, truth
from tools.phonesim.deviceinfo import fields
from tools.phonesim.loadid import human, parse_load
from tools.phonesim.machine import PhoneMachine, PhoneSpec
from tools.phonesim.models import FAMILY_MODELS, MODELS, model
from tools.phonesim.offline import Files, drive

MAC = "001E7A780001"
SEP = f"SEP{MAC}.cnf.xml"
MAGIC = bytes.fromhex("cd3412ab")

# The real sip78xx.11-0-1-11.loads payload (phone-families.md §1.2, staskobzar/cisco_prov [F2]); the file
# ends with three more empty lines than the reference's code block shows, which makes its 972 bytes.
REAL_PAYLOAD = """#
# (C) 2013 Cisco Systems 5th-Generation IP Phones
# RELEASE Model=78xx Version=11-0-1-11
# Thu Nov 19 09:06:01 CST 2015
# LOADS=sip78xx.11-0-1-11.loads
#

[CISCO-ID]
version = 11-0-1-11
hwcompat = 0x00000003
swcompat = 0x00000004
transition = 0x00000000
loadversion = 0x00000001

[PLATFORM_1]
sboot=sboot78xx.11-0-1-11.sbn size=370348
kern=kern78xx.11-0-1-11.sbn size=3089488
rootfs=rootfs78xx.11-0-1-11.sbn size=40239440
ebr_diskver = 1
ebr_sboot   = (-1,2,0,2,0x280000,-1)(-1,2,0,2,0x5980000,-1)
ebr_kern    = (-1,2,0,8,0x480000,-1)(-1,2,0,8,0x5b80000,-1)
ebr_rootfs  = (-1,2,1,11,0xe80000,-1)(-1,2,1,11,0x6580000,-1)

[PLATFORM_2]
sboot=sboot2.78xx.11-0-1-11.sbn size=596540
kern=kern2.78xx.11-0-1-11.sbn size=2505750
rootfs=rootfs2.78xx.11-0-1-11.sbn size=41943380
ebr_diskver = 1
ebr_sboot   = (-1,2,0,2,0x280000,-1)(-1,2,0,2,0x5e80000,-1)
ebr_kern    = (-1,2,0,8,0x480000,-1)(-1,2,0,8,0x6080000,-1)
ebr_rootfs  = (-1,2,1,11,0xe80000,-1)(-1,2,1,11,0x6a80000,-1)



""".encode("ascii")
# SHA-256 field of the real file's header (bytes 0x14..0x33), read from the git object.
REAL_SHA256 = "225ce55d7c8c3f7e1202952e2e888ce917722b697b6c6b6400558bd32b54a428"


def box(name: str, payload: bytes, *, digest: bytes | None = None, payload_length: int | None = None,
        header_length: int | None = None, magic: bytes = MAGIC, filler: bytes = b"") -> bytes:
    """A container as §1.2 lays it out: magic, header length, 0, payload length, 0, SHA-256, name length,
    name NUL-padded to 4 bytes, 256 signature bytes, payload."""
    raw = name.encode("ascii")
    padded = raw + filler + b"\0" * (-(len(raw) + len(filler)) % 4)
    hlen = 0x38 + len(padded) + 256 if header_length is None else header_length
    plen = len(payload) if payload_length is None else payload_length
    head = magic + struct.pack("<4I", hlen, 0, plen, 0) + (digest or hashlib.sha256(payload).digest())
    head += struct.pack("<I", len(raw)) + padded + hashlib.shake_256(b"sig" + raw).digest(256)
    return head + payload


def ini(version: str, platforms: dict[int, list[tuple[str, str, int]]], hwcompat: str | None = "0x00000003",
        extra: str = "") -> bytes:
    lines = ["#", f"# RELEASE Version={version}", "#", "", "[CISCO-ID]", f"version = {version}"]
    if hwcompat is not None:
        lines.append(f"hwcompat = {hwcompat}")
    lines += ["swcompat = 0x00000004", "transition = 0x00000000", "loadversion = 0x00000001", ""]
    for n, files in platforms.items():
        lines.append(f"[PLATFORM_{n}]")
        lines += [f"{key}={name} size={size}" for key, name, size in files]
        lines += ["ebr_diskver = 1", ""]
    return ("\n".join(lines) + extra + "\n").encode("ascii")


def component(name: str, size: int = 3000) -> bytes:
    head_len = 0x38 + len(name) + (-len(name) % 4) + 256
    return box(name, random.Random(name).randbytes(size - head_len))


def load5(load_id: str, tags: tuple[str, ...] = ("78xx", "2.78xx"), size: int = 3000,
          hwcompat: str | None = "0x00000003") -> dict[str, bytes]:
    """{name: bytes} for a 5th-generation load: the .loads and each platform's sboot/kern/rootfs."""
    ver = load_id.split(".", 1)[1]
    files, platforms = {}, {}
    for n, tag in enumerate(tags, 1):
        listed = []
        for key in ("sboot", "kern", "rootfs"):
            name = f"{key}{tag}.{ver}.sbn"
            files[name] = component(name, size + n * 10)
            listed.append((key, name, len(files[name])))
        platforms[n] = listed
    files[f"{load_id}.loads"] = box(f"{load_id}.loads", ini(ver, platforms, hwcompat))
    return files


def cnf(load: str | None, web: int | None = None) -> bytes:
    info = f"<loadInformation>{load}</loadInformation>" if load else ""
    wa = f"<webAccess>{web}</webAccess>" if web is not None else ""
    return f"<device><deviceProtocol>SIP</deviceProtocol>{info}<vendorConfig>{wa}</vendorConfig></device>".encode()


def L(text):
    load = parse_load(text)
    assert load is not None, text
    return load


def phone(name: str, start: str, **kw) -> PhoneMachine:
    kw.setdefault("retry_s", 5.0)
    return PhoneMachine(PhoneSpec(model(name), MAC, L(start), **kw))


def library(*loads: dict[str, bytes], config: bytes, http: bool = True) -> Files:
    files = Files(http=http)
    for load in loads:
        for name, data in load.items():
            files[name] = data
    files[SEP] = config
    return files


def fetched(m: PhoneMachine, ok: bool | None = True) -> list[str]:
    return [f["name"] for f in m.fetches if ok is None or f["ok"] is ok]


OLD78, NEW78, V20_OK = "sip78xx.11-0-1-11", "sip78xx.12-5-1SR1-4", "sip78xx.14-0-1-0001-135"


# --- the container, as the phone checks it ------------------------------------------------------------

def test_container_layout_matches_the_real_manifest():
    data = box("sip78xx.11-0-1-11.loads", REAL_PAYLOAD)
    assert len(data) == 1308 and data[:4] == MAGIC
    assert struct.unpack_from("<5I", data) == (0xAB1234CD, 0x150, 0, 0x3CC, 0)      # 336, 972: §1.2 table
    assert data[0x14:0x34].hex() == REAL_SHA256
    assert struct.unpack_from("<I", data, 0x34) == (23,) and data[0x38:0x50] == b"sip78xx.11-0-1-11.loads\0"
    c = container5.parse(data)
    assert (c.header_length, c.payload_length, c.name, len(c.signature)) == (336, 972, "sip78xx.11-0-1-11.loads", 256)
    assert container5.parse(box("sboot2.78xx.11-0-1-11.sbn", b"x" * 10)).header_length == 340   # 25 characters


@pytest.mark.parametrize("damage, checksum, words", [
    (lambda d: d[:-1], True, "payload length"),                                   # truncated payload
    (lambda d: d + b"\0", True, "payload length"),                                # a byte too many
    (lambda d: d[:0x30], False, "shorter"),                                       # cut inside the fixed fields
    (lambda d: d[:300], False, "past the end"),                                   # cut inside the signature
    (lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:], True, "SHA-256"),           # one payload bit flipped
    (lambda d: b"\xab\x12\x34\xcd" + d[4:], False, "magic"),                      # big-endian magic
    (lambda d: d[:4] + struct.pack("<I", 0xFFFF) + d[8:], False, "past the end"),  # header length past the end
    (lambda d: d[:4] + struct.pack("<I", 0x100) + d[8:], False, "no room"),        # header too short for name+sig
    (lambda d: d[:0x34] + struct.pack("<I", 0) + d[0x38:], False, "name length"),
    (lambda d: d[:0x34] + struct.pack("<I", 100000) + d[0x38:], False, "name length"),
])
def test_a_damaged_container_is_refused(damage, checksum, words):
    data = damage(box("sip78xx.11-0-1-11.loads", REAL_PAYLOAD))
    c, bad = container5.verify("sip78xx.11-0-1-11.loads", data)
    assert c is None and bad is not None and words in str(bad), bad
    assert bad.checksum is checksum


def test_container_name_padding_and_signed_name():
    good = box("kern78xx.11-0-1-11.sbn", b"payload")
    assert container5.verify("/KERN78XX.11-0-1-11.sbn", good)[1] is None       # case, leading '/' (§2.1)
    _, bad = container5.verify("kern2.78xx.11-0-1-11.sbn", good)
    assert "signed as 'kern78xx.11-0-1-11.sbn'" in str(bad) and not bad.checksum
    _, bad = container5.verify("kern78xx.11-0-1-11.sbn", box("kern78xx.11-0-1-11.sbn", b"p", filler=b"\x01"))
    assert "between the name and the signature" in str(bad)
    assert container5.verify("x.sbn", firmware.component("x.sbn"))[1] is not None     # a TLV file is no container


# --- the INI manifest ----------------------------------------------------------------------------------

def test_real_manifest_payload_read():
    m = manifest5.parse(REAL_PAYLOAD)
    assert (m.version, m.hwcompat, m.swcompat, m.transition) == ("11-0-1-11", 3, 4, 0)
    assert [(f.key, f.name, f.size) for f in m.platforms[1]] == [
        ("sboot", "sboot78xx.11-0-1-11.sbn", 370348), ("kern", "kern78xx.11-0-1-11.sbn", 3089488),
        ("rootfs", "rootfs78xx.11-0-1-11.sbn", 40239440)]
    assert [f.name for f in m.platforms[2]] == ["sboot2.78xx.11-0-1-11.sbn", "kern2.78xx.11-0-1-11.sbn",
                                                "rootfs2.78xx.11-0-1-11.sbn"]
    assert m.settings["PLATFORM_2"]["ebr_kern"] == "(-1,2,0,8,0x480000,-1)(-1,2,0,8,0x6080000,-1)"


@pytest.mark.parametrize("text, words", [
    (REAL_PAYLOAD.replace(b"[PLATFORM_2]", b"[PLATFORM_1]"), "appears twice"),
    (REAL_PAYLOAD.replace(b"[CISCO-ID]", b"[CISCO-ID]\n[CISCO-ID]"), "appears twice"),
    (REAL_PAYLOAD.replace(b"[CISCO-ID]", b"[OTHER]"), "no [CISCO-ID]"),
    (REAL_PAYLOAD.replace(b"version = 11-0-1-11\n", b""), "no version"),
    (REAL_PAYLOAD.replace(b"0x00000003", b"three"), "not a number"),
    (b"[CISCO-ID]\nversion = 1\n", "no [PLATFORM_n]"),
    (b"stray line\n" + REAL_PAYLOAD, "before any [section]"),
    (REAL_PAYLOAD.replace(b"ebr_diskver = 1", b"ebr_diskver 1", 1), "not key = value"),
    (REAL_PAYLOAD.replace(b"version = 11-0-1-11", b"version = 11-0-1-11\nversion = 12"), "given twice"),
    (REAL_PAYLOAD + "é".encode(), "not ASCII"),
    (b"#" * (manifest5.MAX_PAYLOAD + 1), "more than a manifest holds"),
])
def test_an_unreadable_manifest_is_named(text, words):
    with pytest.raises(manifest5.ManifestError, match=re.escape(words)):
        manifest5.parse(text)


# --- load IDs, models, floors, truth ---------------------------------------------------------------------

def test_load_ids_of_the_new_families_order_within_a_family():
    order = ["sip78xx.10-1-1SR1-4", "sip78xx.10-3-1-12", "sip78xx.11-0-1-11", "sip78xx.12-5-1SR1-4",
             "sip78xx.12-5-1SR3-74", "sip78xx.14-0-1-0001-135", "sip78xx.14-0-1-0201-12", "sip78xx.14-4-1-0301-6"]
    assert [L(t).key for t in order] == sorted(L(t).key for t in order)
    assert [L(t).key for t in ("SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR2", "SCCP69xx.9-4-1-3SR3")] == \
        sorted(L(t).key for t in ("SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR2", "SCCP69xx.9-4-1-3SR3"))
    assert L("SCCP69xx.9-4-1-3SR3").key == (9, 4, 1, 3, 3) and L("SIP8941_8945.9-3-1-18").family == "8941_8945"
    assert L("sip88xx.14-0-1MN-1036").key[:4] == (14, 0, 1, 0) and L("sip8845_65.12-5-1SR2-2").family == "8845_65"
    assert L("sip78xx.14-0-1-0001-135").key >= human("14.0(1)") > L("sip78xx.12-5-1SR3-74").key
    assert L("sip78xx.14-0-1-0201-12").key >= human("14.0(1)SR2") > L("sip78xx.14-0-1-0001-135").key
    for unplaced in ("sip88xx.11-3-3MPP0001-377", "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.banana", "SCCP69xx.9"):
        assert parse_load(unplaced) is None, unplaced


def test_the_7900_table_is_unchanged_and_the_new_models_are_separate():
    assert set(MODELS) & set(FAMILY_MODELS) == set()
    assert {m.family for m in MODELS.values()} == {"tnp", "7940"}
    assert model("CP-7841").platforms == ("78xx", "2.78xx") and model("CP-8945").load_families == ("894x", "8941_8945")
    assert not model("7841").web and model("7841").http_first and model("8945").http_first and not model("6921").http_first
    with pytest.raises(ValueError, match="no term file"):
        PhoneSpec(model("6921"), MAC, L("SCCP69xx.9-3-1-3"), factory_reset=True)


def test_floor_rows_each_have_a_source_and_never_overlap():
    for row in floors.ROWS:
        assert row.source and (row.floor == floors.V20 or human(row.floor))
    for name in ("7811", "7821", "7841", "7861", "8811", "8841", "8851", "8861"):
        for n in range(1, 40):
            rows = [r for r in floors.ROWS if name in r.models and r.first <= n and (r.last is None or n <= r.last)]
            assert len(rows) <= 1, (name, n, rows)


@pytest.mark.parametrize("name, vid, floor", [
    ("7841", "V01", None), ("7841", "V02", "10.1(1)SR1"), ("7841", "V04", "10.3(1)"), ("7841", "V18", "14.0(1)SR2"),
    ("7841", "V20", "14.0(1)"), ("7821", "V20", "14.0(1)"), ("7861", "V22", "14.0(1)"), ("7811", "V01", "10.3(1)"),
    ("7811", "V20", "10.3(1)"),                                 # "7811 unchanged" at V20 (RN 14.0(1))
    ("7821", "V01", None), ("8841", "V08", "11.7(1)"), ("8861", "V08", None), ("8861", "V15", "12.6(1)"),
    ("8811", "V16", "12.6(1)"), ("8845", "V20", None), ("8865", "V01", None),
])
def test_floor_per_model_and_vid(name, vid, floor):
    got = floors.floor(name, model(name).loads, vid)
    assert (got.text if got else None) == floor


def test_v20_floor_has_two_readings():
    assert floors.floor("7841", "78xx", "V20", floors.V20_SR3).text == "14.0(1)SR3"
    assert floors.floor("7841", "78xx", "V21", floors.V20_RN).key == human("14.0(1)")
    with pytest.raises(ValueError):
        floors.floor("7841", "78xx", "V20", "14.0")
    with pytest.raises(ValueError):
        floors.vid_number("20")


def test_truth_for_the_new_families():
    six9 = model("6921")
    assert not truth.verdict(six9, L("SCCP69xx.8-5-1-3"), L("SCCP69xx.9-4-1-3SR3")).accepted       # §4.1
    assert truth.verdict(six9, L("SCCP69xx.9-0-1-1"), L("SCCP69xx.9-3-1-3")).accepted
    assert truth.verdict(six9, L("SCCP69xx.9-3-1-3"), L("SIP69xx.9-4-1-3SR2")).accepted           # conversion
    assert truth.verdict(model("8945"), L("SCCP894x.9-4-2SR1-2"), L("SIP8941_8945.9-3-1-18")).accepted
    v = truth.verdict(model("7841"), L(OLD78), L("sip88xx.12-5-1SR3-74"))
    assert (v.accepted, v.screen) == (False, truth.LOAD_ID_INCORRECT)
    floor = floors.floor("7841", "78xx", "V20")
    v = truth.verdict(model("7841"), L(V20_OK), L(OLD78), floor)
    assert (v.accepted, v.screen) == (False, truth.LOAD_REJECTED_HC) and "14.0(1)" in v.why
    assert truth.verdict(model("7841"), L(V20_OK), L("sip78xx.14-4-1-0301-6"), floor).accepted


@pytest.mark.parametrize("bit, hwcompat, ok", [
    (None, 0x3, True), (None, 0x0, True),            # the reading where phones ignore hwcompat
    (0, 0x3, True), (1, 0x3, True), (2, 0x3, False), (5, 0x3F, True), (2, None, True),
])
def test_hwcompat_both_readings(bit, hwcompat, ok):
    v = truth.hwcompat_verdict(bit, hwcompat)
    assert v.accepted is ok and v.screen == (None if ok else truth.LOAD_REJECTED_HC)


# --- the 7800 state machine ------------------------------------------------------------------------------

def test_7841_takes_only_its_platforms_files_over_http():
    for platform, tag in ((1, "78xx"), (2, "2.78xx")):
        files = library(load5(NEW78), config=cnf(NEW78))
        m = drive(phone("7841", OLD78, platform=platform), files, until=60, stop=lambda m: m.settled)
        assert m.flash.running.text == NEW78 and m.installed == [NEW78] and m.settled
        comps = [f["name"] for f in m.fetches if f["role"] == "component"]
        assert comps == [f"{k}{tag}.12-5-1SR1-4.sbn" for k in ("sboot", "kern", "rootfs")], comps
        assert {f["via"] for f in m.fetches if f["ok"]} == {"http"}           # HTTP :6970 answered every file


def test_http_first_then_tftp_for_every_file():
    files = library(load5(NEW78), config=cnf(NEW78), http=False)              # a TFTP-only station
    m = drive(phone("7841", OLD78), files, until=60, stop=lambda m: m.settled)
    assert m.flash.running.text == NEW78
    pairs = list(zip(m.fetches[::2], m.fetches[1::2], strict=True))
    assert pairs and all(a["name"] == b["name"] and a["via"] == "http" and not a["ok"] and b["via"] == "tftp"
                         for a, b in pairs), m.fetches
    assert [a["name"] for a, _ in pairs][:4] == [f"CTL{SEP[:-8]}.tlv", f"ITL{SEP[:-8]}.tlv", "ITLFile.tlv", SEP]
    files_on = library(load5(NEW78), config=cnf(NEW78))
    m = drive(phone("7841", OLD78, http_first=False), files_on, until=60, stop=lambda m: m.settled)
    assert {f["via"] for f in m.fetches} == {"tftp"} and m.flash.running.text == NEW78


def test_v20_7841_offered_a_load_under_its_floor_takes_only_the_manifest():
    files = library(load5(OLD78), config=cnf(OLD78))
    m = drive(phone("7841", V20_OK, vid="V20"), files, until=30)
    assert m.flash.running.text == V20_OK and not m.installed and m.boots == 1
    assert set(fetched(m)) == {SEP, f"{OLD78}.loads"}, fetched(m)     # trust files missing, no component
    assert fetched(m).count(f"{OLD78}.loads") >= 3                      # it keeps being offered: the station's to stop
    assert {r["screen"] for r in m.refused} == {truth.LOAD_REJECTED_HC}
    assert all("14.0(1)" in r["why"] for r in m.refused)


def test_floor_readings_and_start_below_floor():
    sr3 = "sip78xx.14-0-1-0301-5"
    files = library(load5(V20_OK), config=cnf(V20_OK))
    m = drive(phone("7841", sr3, vid="V20", v20_floor=floors.V20_SR3), files, until=30)
    assert not m.installed and m.refused and "14.0(1)SR3" in m.refused[0]["why"]
    m = drive(phone("7841", sr3, vid="V20"), files, until=30, stop=lambda m: bool(m.installed))
    assert m.installed == [V20_OK]                              # 14.0(1) reading: at the floor is enough
    with pytest.raises(ValueError, match=re.escape("needs 14.0(1)SR3")):
        phone("7841", V20_OK, vid="V20", v20_floor=floors.V20_SR3)
    with pytest.raises(ValueError, match="needs 14.0"):
        phone("7841", OLD78, vid="V20")
    m = drive(phone("7841", NEW78, vid="V04", hardware_floor=L("sip78xx.12-0-1-1")),
              library(load5("sip78xx.11-5-1-18"), config=cnf("sip78xx.11-5-1-18")), until=10)
    assert m.refused and m.refused[0]["screen"] == truth.LOAD_REJECTED_HC        # an explicit floor wins


def test_hwcompat_reading_selectable_on_the_phone():
    files = library(load5(NEW78, hwcompat="0x00000003"), config=cnf(NEW78))
    assert drive(phone("7841", OLD78, hardware_bit=1), files, until=60, stop=lambda m: m.settled).installed == [NEW78]
    m = drive(phone("7841", OLD78, hardware_bit=2), files, until=20)
    assert not m.installed and m.refused[0]["screen"] == truth.LOAD_REJECTED_HC and "0x3" in m.refused[0]["why"]
    assert not [f for f in m.fetches if f["role"] == "component"]


def _refusal(files: dict[str, bytes], until: float = 12) -> PhoneMachine:
    m = drive(phone("7841", OLD78), library(files, config=cnf(NEW78)), until=until)
    assert m.flash.running.text == OLD78 and not m.installed and m.boots == 1, m.summary()
    return m


def test_a_bad_manifest_or_component_is_refused_and_nothing_installed():
    good = load5(NEW78)
    loads = f"{NEW78}.loads"
    m = _refusal({**good, loads: good[loads][:-3]})                                  # truncated manifest
    assert m.refused[0]["screen"] == truth.CHECKSUM_ERROR and not fetched(m)[-1].endswith(".sbn")
    m = _refusal({**good, loads: box("sip78xx.12-5-1SR1-5.loads", container5.parse(good[loads]).payload)})
    assert m.refused[0]["screen"] == truth.AUTH_FAIL and "signed as" in m.refused[0]["why"]     # wrong name
    payload = container5.parse(good[loads]).payload.replace(b"version = 12-5-1SR1-4", b"version = 12-5-1SR1-5")
    m = _refusal({**good, loads: box(loads, payload)})
    assert m.refused[0]["screen"] == truth.VERSION_ERROR
    m = _refusal({**good, loads: box(loads, payload.replace(b"[PLATFORM_1]", b"[PLATFORM_2]"))})
    assert m.refused[0]["screen"] == truth.LOAD_ID_INCORRECT and "appears twice" in m.refused[0]["why"]
    kern = "kern78xx.12-5-1SR1-4.sbn"
    flipped = good[kern][:-1] + bytes([good[kern][-1] ^ 0xFF])
    m = _refusal({**good, kern: flipped})
    assert m.refused[0]["screen"] == truth.CHECKSUM_ERROR and "SHA-256" in m.refused[0]["why"]
    assert "rootfs78xx.12-5-1SR1-4.sbn" not in fetched(m, None)                      # stopped at the bad file
    m = _refusal({**good, kern: box(kern, b"y" * 100)})                               # intact, but not the listed size
    assert m.refused[0]["screen"] == truth.CHECKSUM_ERROR and "the manifest lists" in m.refused[0]["why"]
    m = _refusal({k: v for k, v in good.items() if k != kern})
    assert m.refused[0]["screen"] == f"File not found {kern}"


def test_a_manifest_without_the_phones_platform_is_refused():
    m = drive(phone("7841", OLD78, platform=2), library(load5(NEW78, tags=("78xx",)), config=cnf(NEW78)), until=12)
    assert not m.installed and "[PLATFORM_2]" in m.refused[0]["why"]
    with pytest.raises(ValueError, match="platforms 1 to 2"):
        phone("7841", OLD78, platform=3)


def test_7841_page_only_once_the_config_turns_web_on():
    start = "sip78xx.14-0-1-0001-135"
    m = drive(phone("7841", start, vid="V20"), library(config=cnf(None)), until=5, stop=lambda m: m.settled)
    assert m.settled and m.device_information() is None                     # 78xx ship with web access off
    m = drive(phone("7841", start, vid="V20", hardware_revision="3"), library(config=cnf(start, web=0)), until=5,
              stop=lambda m: m.settled)
    page = m.device_information()
    assert page is not None and "<versionID>sip78xx.14-0-1-0001-135</versionID>" in page
    assert "<hardwareRevision>3</hardwareRevision>" in page
    udi = re.search(r"<udi>(.*)</udi>", page, re.S).group(1)
    # collinmoerman/Cisco-MPP-Migration-Hardware-Revision-Discovery discover.py's own expression (§1.5)
    found = re.search(r".*(CP-.+).(V\d+).(.+).", udi, re.DOTALL)
    assert found and found.groups() == ("CP-7841", "V20", f"FCH{MAC[-8:]}")
    assert udi.split("\n")[3] == "V20"                                        # the readiness tool's line [3]


# --- the 8800, by inference from the 7800 --------------------------------------------------------------

def test_8841_v15_floor_and_third_platform():
    new = "sip88xx.14-0-1-0001-135"
    files = library(load5("sip88xx.12-5-1SR3-74", tags=("88xx", "288xx", "388xx")),
                    load5(new, tags=("88xx", "288xx", "388xx")), config=cnf("sip88xx.12-5-1SR3-74"))
    m = drive(phone("8841", "sip88xx.12-8-1-0001-455", vid="V15", platform=3), files, until=20)
    assert not m.installed and m.refused[0]["screen"] == truth.LOAD_REJECTED_HC and "12.6(1)" in m.refused[0]["why"]
    files[SEP] = cnf(new)
    m = drive(phone("8841", "sip88xx.12-8-1-0001-455", vid="V15", platform=3), files, until=60,
              stop=lambda m: m.settled)
    assert m.installed == [new]
    assert [f["name"] for f in m.fetches if f["role"] == "component"] == [
        f"{k}388xx.14-0-1-0001-135.sbn" for k in ("sboot", "kern", "rootfs")]
    m = drive(phone("8845", "sip8845_65.12-5-1SR2-2", vid="V20"),
              library(load5("sip8845_65.14-0-1-0001-135", tags=("8845_65",)), config=cnf("sip8845_65.14-0-1-0001-135")),
              until=60, stop=lambda m: m.settled)
    assert m.installed == ["sip8845_65.14-0-1-0001-135"]


# --- 6921 and 8945: the 79xx-style TLV header ------------------------------------------------------------

def tlv_load(load_id: str, names: list[str]) -> dict[str, bytes]:
    """A TLV-signed load written with the model's own writer (the product's synth is not used here)."""
    load = L(load_id)
    files = {f"{load_id}.loads": firmware.manifest(load, names=names)}
    files.update({n: firmware.component(n, 2000) for n in names})
    return files


SIX9_OLD, SIX9_NEW = "SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR3"
SIX9_FILES = ["BOOT69xx.0-0-0-14.zz.sgn", "DSP69xx.12-4-123-2.160119.zz.sgn", "SCCP69xx.9-4-1-3SR3.zz.sgn"]


def test_6921_over_tftp_to_its_target():
    files = library(tlv_load(SIX9_NEW, SIX9_FILES), config=cnf(SIX9_NEW), http=False)
    m = drive(phone("6921", SIX9_OLD), files, until=60, stop=lambda m: m.settled)
    assert m.flash.running.text == SIX9_NEW and m.installed == [SIX9_NEW] and m.boots == 2
    assert {f["via"] for f in m.fetches} == {"tftp"}                    # no HTTP attempt: not evidenced for 69xx
    assert fetched(m, None)[:4] == [f"CTL{SEP[:-8]}.tlv", f"ITL{SEP[:-8]}.tlv", "ITLFile.tlv", SEP]
    assert [f["name"] for f in m.fetches if f["role"] == "component"] == SIX9_FILES
    page = fields(model("6921"), MAC, m.flash.running, m.flash.components)
    assert page["versionID"] == SIX9_NEW and page["udi"].split("\n")[2] == "CP-6921"


def test_6921_refuses_a_wrong_signed_name_and_pre_9_jumps():
    bad = tlv_load(SIX9_NEW, SIX9_FILES)
    bad[SIX9_FILES[1]] = firmware.component(SIX9_FILES[0], 2000)               # signed as another file
    m = drive(phone("6921", SIX9_OLD), library(bad, config=cnf(SIX9_NEW)), until=12)
    assert not m.installed and m.refused[0]["screen"] == truth.AUTH_FAIL and "signed as" in m.refused[0]["why"]
    m = drive(phone("6941", "SCCP69xx.8-5-1-3"), library(tlv_load(SIX9_NEW, SIX9_FILES), config=cnf(SIX9_NEW)),
              until=12)
    assert not m.installed and not [f for f in m.fetches if f["role"] == "component"]
    assert m.refused[0]["screen"] == truth.AUTH_FAIL


def test_6941_reads_its_own_xmldefault_number_and_either_reading():
    xml = (f"<Default><loadInformation495>{SIX9_NEW}</loadInformation495>"
           f"<loadInformation496>SCCP69xx.9-4-1-3SR2</loadInformation496></Default>").encode()
    files = library(tlv_load(SIX9_NEW, SIX9_FILES), tlv_load("SCCP69xx.9-4-1-3SR2", SIX9_FILES[:2]), config=b"")
    files.files.pop(SEP.lower())
    files["XMLDefault.cnf.xml"] = xml
    m = drive(phone("6941", SIX9_OLD), files, until=60, stop=lambda m: m.settled)
    assert m.installed == ["SCCP69xx.9-4-1-3SR2"]                               # chan-sccp: 6941 = 496
    m = drive(phone("6941", SIX9_OLD, device_type=495), files, until=60, stop=lambda m: m.settled)
    assert m.installed == [SIX9_NEW]                                            # sccp_manager's swap


EIGHT94_OLD, EIGHT94_NEW = "SCCP894x.9-4-2SR1-2", "SCCP894x.9-4-2SR4-1"
EIGHT94_FILES = [f"SCCP894x.9-4-2SR4-1.bin{i}.sgn" for i in range(1, 10)]


def test_8945_http_first_takes_the_nine_bins():
    files = library(tlv_load(EIGHT94_NEW, EIGHT94_FILES), config=cnf(EIGHT94_NEW), http=False)
    m = drive(phone("8945", EIGHT94_OLD), files, until=60, stop=lambda m: m.settled)
    assert m.installed == [EIGHT94_NEW] and m.settled
    comps = [f for f in m.fetches if f["role"] == "component"]
    assert [f["name"] for f in comps if f["ok"]] == EIGHT94_FILES
    assert [f["via"] for f in comps][:2] == ["http", "tftp"]                 # "HTTP download error, try tftp download"
    assert "BOOT894x.0-0-2-0.bin.sgn" not in fetched(m, None)                 # not listed: not asked (§4.2, UNCONFIRMED)
    sip = "SIP8941_8945.9-4-2SR4-1"
    files = library(tlv_load(sip, ["SIP8941_8945.9-4-2SR4-1.bin1.sgn"]), config=cnf(sip))
    m = drive(phone("8941", EIGHT94_OLD), files, until=60, stop=lambda m: m.settled)
    assert m.installed == [sip]


@pytest.mark.parametrize("argv, words", [
    (["--model", "CP-7841", "--vid", "V20", "--load", OLD78], "needs 14.0(1)"),
    (["--model", "CP-7841", "--vid", "20"], "VID"),
    (["--model", "CP-7841", "--platform", "3"], "platforms 1 to 2"),
    (["--model", "CP-6921", "--factory-reset"], "no term file"),
    (["--model", "CP-8831"], "not simulated"),
])
def test_cli_refuses_a_phone_that_cannot_exist(argv, words, capsys):
    from tools.phonesim.__main__ import main
    assert main(["--server", "127.0.0.1", *argv]) == 2
    assert words in capsys.readouterr().err
