"""The independent MPP (multiplatform, 3PCC) phone model (tools/phonesim, issue 27 item 4).

Pure: no sockets, simulated time (tools.phonesim.offline).  Profiles, licences and 5th-generation firmware
are built here by hand (tests.test_phonesim_families builds containers from the byte layout of
phone-families.md §1.2); nothing comes from the product.
"""
from __future__ import annotations

import re

import pytest

from tests.test_phonesim_families import box, cnf, ini, load5
from tools.phonesim import flatprofile, mpp_load, mpp_truth, provisioning, truth
from tools.phonesim.flatprofile import ProfileError, RuleError
from tools.phonesim.mpp import LOAD_FIRST, NO_TLS, MppPhone, MppSpec
from tools.phonesim.offline import Files, drive

MAC = "001234AB45DE"                                  # the reference's example, /Cisco/CP-8851-3PCC/001234ab45de.cfg
OLD88, NEW88 = "sip88xx.11-3-3MPP0001-377", "sip88xx.12-0-1MPP0001-100"
T88 = ("88xx", "288xx", "388xx")
ENT78, ENT78_14 = "sip78xx.12-5-1SR1-4", "sip78xx.14-0-1-0001-135"
TL78, MPP78 = "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.11-3-5MPP0001-400"
SEP = f"SEP{MAC}.cnf.xml"


def fw(text: str) -> mpp_load.Firmware:
    got = mpp_load.place(text)
    assert got is not None, text
    return got


def phone(model: str, start: str, **kw) -> MppPhone:
    kw.setdefault("retry_s", 5.0)
    return MppPhone(MppSpec(mpp_truth.mpp_model(model), MAC, fw(start), **kw))


def profile(upgrade: str | None = None, licence: str | None = None, auth_type: str | None = None,
            wrapper: bool = False) -> bytes:
    body = ""
    if licence is not None:
        body += f'<Trans_Auth_Rule ua="na">{licence}</Trans_Auth_Rule>'
    if auth_type is not None:
        body += f'<Trans_Auth_Type ua="na">{auth_type}</Trans_Auth_Type>'
    if upgrade is not None:
        body += f'<Upgrade_Rule ua="na">{upgrade}</Upgrade_Rule>'
    flat = f"<flat-profile>{body}</flat-profile>"
    return (f"<device>{flat}</device>" if wrapper else flat).encode()


def station(*loads: dict[str, bytes], under: str = "mpp/", http: bool = True, **named: bytes) -> Files:
    files = Files(http=http)
    for load in loads:
        for name, data in load.items():
            files[under + name] = data
    for name, data in named.items():
        files[name] = data
    return files


def mpp88(load_id: str) -> dict[str, bytes]:
    return load5(load_id, tags=T88)


def fetched(m, ok: bool | None = True) -> list[str]:
    return [f["name"] for f in m.fetches if ok is None or f["ok"] is ok]


PSN_XML = "/8851-3PCC.xml"
CFG = "/Cisco/CP-8851-3PCC/001234ab45de.cfg"


# --- load names -----------------------------------------------------------------------------------------

def test_load_names_are_placed_by_kind_and_ordered_within_mpp():
    assert fw("sip88xx.11-3-3MPP0001-377.loads").kind == mpp_load.MPP
    assert fw("sip68xx.12-0-7MPP0301-92").key == (12, 0, 7, 3, 100092) and fw("sip68xx.12-0-7MPP0301-92").family == "68xx"
    assert fw("sip88xx.11-2-3MPP-398").key == (11, 2, 3, 0, 398)
    assert (fw(TL78).kind, fw(TL78).family, fw(TL78).key[:3]) == (mpp_load.TRANSITION, "78xx", (11, 2, 3))
    assert fw("sip8845_65.TLexE2M-11-2-3C-12").family == "8845_65"
    assert fw(ENT78).kind == mpp_load.ENTERPRISE and fw(ENT78).enterprise.family == "78xx"
    order = ["sip88xx.11-2-3MPP-398", OLD88, "sip88xx.11-3-5MPP0001-10", NEW88, "sip88xx.12-0-7MPP0301-92"]
    assert [fw(t).key for t in order] == sorted(fw(t).key for t in order)
    for bad in ("sip88xx.11-3-3MPX0001-377", "sip99xx.11-3-3MPP0001-377", "sip88xx.TLexM2E-11-2-3C-12",
                "SCCP45.9-4-2SR4-3S", "sip88xx." + "1" * 90, "sip88xx.11-3-3MPP0001-377\u00e9", "", None):
        assert mpp_load.place(bad) is None, bad


def test_user_agent_reference_form_and_its_readings():
    # Cisco-CP-8841-3PCC/11.0 (00562b043615) [F27]: model, version, MAC in lower case
    ua = provisioning.user_agent("CP-8841-3PCC", fw("sip88xx.11-0-1MPP0001-10").ua_version(mpp_load.MAJOR_MINOR),
                                 "00562B043615")
    assert ua == "Cisco-CP-8841-3PCC/11.0 (00562b043615)"
    assert fw(OLD88).ua_version() == "11.3.3" and fw(OLD88).ua_version(mpp_load.LOAD) == "11-3-3MPP0001-377"
    with pytest.raises(ValueError):
        fw(OLD88).ua_version("long")
    assert phone("8851", OLD88).vendor_class == "Cisco Systems, Inc. IP Phone CP-8851-3PCC\x00"


# --- where and in what order the profile is asked --------------------------------------------------------

def test_profile_order_file_first_over_tftp_http_https_then_again():
    m = drive(phone("8851", OLD88), station(), until=12)
    first = [(f["via"], f["name"], f["ok"]) for f in m.fetches][:6]
    assert first == [("tftp", PSN_XML, False), ("http", PSN_XML, False), ("https", PSN_XML, False),
                     ("tftp", CFG, False), ("http", CFG, False), ("https", CFG, False)]
    assert {f["error"] for f in m.fetches if f["via"] == "https"} == {NO_TLS}
    assert m.screens[0][1] == mpp_truth.PROFILE_NOT_FOUND and not m.settled and m.boots == 1
    assert [f["name"] for f in m.fetches[6:12]] == [f["name"] for f in m.fetches[:6]]     # the next round, same lease


def test_profile_order_protocol_first_reading_and_no_slash_over_tftp():
    m = drive(phone("8851", OLD88, order=provisioning.PROTOCOL_FIRST, tftp_slash=False), station(), until=4)
    assert [(f["via"], f["name"]) for f in m.fetches][:6] == [
        ("tftp", PSN_XML[1:]), ("tftp", CFG[1:]), ("http", PSN_XML), ("http", CFG), ("https", PSN_XML), ("https", CFG)]


def test_first_profile_found_ends_the_round_and_the_cfg_is_a_fallback():
    files = station(**{CFG[1:]: profile()})
    m = drive(phone("8851", OLD88), files, until=3, stop=lambda m: m.settled)
    assert m.settled and fetched(m) == [CFG] and fetched(m, None)[:4] == [PSN_XML, PSN_XML, PSN_XML, CFG]
    files = station(http=False, **{"8851-3PCC.xml": profile()})
    m = drive(phone("8851", OLD88), files, until=3, stop=lambda m: m.settled)
    assert [(f["via"], f["ok"]) for f in m.fetches] == [("tftp", True)]          # TFTP first: nothing more asked


def test_user_agent_on_every_http_request_never_over_tftp():
    m = drive(phone("8851", OLD88), station(), until=3)
    assert {f["user_agent"] for f in m.fetches if f["via"] in ("http", "https")} == {
        "Cisco-CP-8851-3PCC/11.3.3 (001234ab45de)"}
    assert {f["user_agent"] for f in m.fetches if f["via"] == "tftp"} == {None}


@pytest.mark.parametrize("options, order, expect", [
    ({66: b"10.0.0.1", 150: b"\x0a\x00\x00\x02"}, provisioning.OPTION_ORDER, [("10.0.0.1", None)]),
    ({66: b"10.0.0.1", 150: b"\x0a\x00\x00\x02"}, (150, 66), [("10.0.0.2", None)]),
    ({150: b"10.0.0.3;10.0.0.4"}, provisioning.OPTION_ORDER, [("10.0.0.3", None), ("10.0.0.4", None)]),
    ({150: b"\x0a\x00\x00\x05\x0a\x00\x00\x06"}, provisioning.OPTION_ORDER, [("10.0.0.5", None), ("10.0.0.6", None)]),
    ({160: b"http://10.0.0.7:6970/prov/", 66: b"10.0.0.1"}, (160, 66), [("10.0.0.7", "http")]),
    ({159: b"tftp://10.0.0.8/", 66: b"\xff\xfe"}, provisioning.OPTION_ORDER, [("10.0.0.8", "tftp")]),
    ({66: b"http://10.0.0.9\0"}, provisioning.OPTION_ORDER, [("10.0.0.9", "http")]),
    ({66: b"bad host!", 160: b"ftp://x/"}, provisioning.OPTION_ORDER, []),
])
def test_dhcp_options_name_the_server(options, order, expect):
    got = provisioning.servers(options, order)
    assert [(b.host, b.scheme) for b in got] == expect


def test_a_url_option_fixes_protocol_port_and_directory():
    m = drive(phone("8851", OLD88, option_order=(160, 66)), station(), until=1,
              options={160: b"http://10.0.0.7:6970/prov/", 66: b"10.0.0.1"})
    assert [(f["via"], f["server"], f["port"], f["name"]) for f in m.fetches][:2] == [
        ("http", "10.0.0.7", 6970, "/prov/8851-3PCC.xml"), ("http", "10.0.0.7", 6970, "/prov/Cisco/CP-8851-3PCC/"
                                                                                       "001234ab45de.cfg")]
    m = drive(phone("8851", OLD88), station(), until=1, tftp=None, options={})
    assert not m.fetches and m.screens[0][1] == mpp_truth.PROFILE_NOT_FOUND        # nothing names a server
    with pytest.raises(ValueError, match="only 66, 150, 159, 160"):
        phone("8851", OLD88, option_order=(43,))


# --- the flat profile and its rules --------------------------------------------------------------------------

def test_flat_profile_read_bare_and_in_friendly_waldos_wrapper():
    p = flatprofile.parse(profile(f"http://10.0.0.1/{NEW88}.loads", "http://10.0.0.1/$MAU.lic", "Classic", wrapper=True))
    assert (p.get("Upgrade_Rule"), p.get("Trans_Auth_Rule"), p.get("Trans_Auth_Type")) == (
        f"http://10.0.0.1/{NEW88}.loads", "http://10.0.0.1/$MAU.lic", "Classic")
    assert flatprofile.parse(profile()).get("Upgrade_Rule") is None
    with pytest.raises(ProfileError, match="bare <flat-profile>"):
        flatprofile.parse(profile(wrapper=True), device_wrapper=False)


@pytest.mark.parametrize("data, words", [
    # Cisco's own migration-guide typo (§3.1): not well-formed, no source says a phone takes it
    (b'<flat-profile><Upgrade_Ruleua="na">http://x/sip88xx.11-2-3MPP-398.loads</Upgrade_Rule></flat-profile>',
     "no space before 'ua'"),
    (b'<flat-profile><Trans_Auth_Ruleua="na">http://x/$MAU.lic</Trans_Auth_Rule></flat-profile>', "Trans_Auth_Rule"),
    (b'<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><flat-profile><Upgrade_Rule>&b;</Upgrade_Rule>'
     b'</flat-profile>', "DTD"),
    (b"<flat-profile><Upgrade_Rule>x</Upgrade_Rule>", "not well-formed"),
    (b"\xff\xfe<\x00f\x00", "not well-formed"),
    (b"<device><flat-profile/><flat-profile/></device>", "holds 2"),
    (b"<profile><Upgrade_Rule>x</Upgrade_Rule></profile>", "not <flat-profile>"),
    (b"<flat-profile><Upgrade_Rule>a</Upgrade_Rule><Upgrade_Rule>b</Upgrade_Rule></flat-profile>", "given twice"),
    (b"<flat-profile><Upgrade_Rule>" + b"a" * 3000 + b"</Upgrade_Rule></flat-profile>", "more than 2048"),
    (b"<flat-profile>" + b"<a/>" * (flatprofile.MAX_PROFILE // 4) + b"</flat-profile>", "more than a profile holds"),
    (b"<flat-profile>" + b"<a/>" * (flatprofile.MAX_PARAMS + 1) + b"</flat-profile>", "parameters"),
])
def test_a_hostile_or_broken_profile_is_refused_by_name(data, words):
    with pytest.raises(ProfileError, match=re.escape(words)):
        flatprofile.parse(data)


def test_macros_expand_as_the_reference_writes_them():
    values = flatprofile.macros(MAC, "CP-8851-3PCC", "8851-3PCC")
    assert flatprofile.expand("http://s/$MAU.lic", values) == "http://s/001234AB45DE.lic"
    assert flatprofile.expand("/Cisco/$PN/$MA.cfg", values) == "/Cisco/CP-8851-3PCC/001234ab45de.cfg"
    assert flatprofile.expand("/$PSN.xml", values) == "/8851-3PCC.xml"
    for unknown in ("http://s/$MAC.lic", "http://s/$MAUx.lic", "http://s/$ma.lic", "http://s/$"):
        if "$" == unknown[-1]:
            assert flatprofile.expand(unknown, values) == unknown          # a lone '$' names no macro
            continue
        with pytest.raises(RuleError, match="unknown macro"):
            flatprofile.expand(unknown, values)


@pytest.mark.parametrize("rule, words", [
    ("", "empty"), ("10.0.0.1/sip88xx.12-0-1MPP0001-100.loads", "no protocol"),
    ("ftp://10.0.0.1/a.loads", "not tftp, http or https"), ("http://10.0.0.1", "names no file"),
    ("http://10.0.0.1:0/a.loads", "port"), ("http://10.0.0.1:99999/a.loads", "port"),
    ("http://10.0.0.1:x/a.loads", "port"), ("http://bad_host/a.loads", "not a host name"),
    ("http://10.0.0.1/../etc/a.loads", "plain file path"), ("http://10.0.0.1/a.loads?x=1", "characters"),
    ("http://10.0.0.1/a b.loads", "space"), ("http://10.0.0.1/a\x00.loads", "control"),
    ("[--key abc]http://10.0.0.1/a.loads", "options"), ("( $A )http://10.0.0.1/a.loads", "options"),
    ("http://10.0.0.1/" + "a" * 1100 + ".loads", "characters long"), ("http://10.0.0.1/a.bin", "not a .loads"),
    ("http://10.0.0.1/dir/", "plain file path"), ("https://10.0.0.1/\u00e9.loads", "non-ASCII"),
])
def test_a_bad_upgrade_rule_is_named(rule, words):
    with pytest.raises(RuleError, match=re.escape(words)):
        flatprofile.rule_url(rule, flatprofile.macros(MAC, "CP-8851-3PCC", "8851-3PCC"), ".loads")


def test_upgrade_rule_url_forms():
    url = flatprofile.rule_url("http://10.0.0.1:6970/mpp/$PSN/sip88xx.12-0-1MPP0001-100.loads",
                               flatprofile.macros(MAC, "CP-8851-3PCC", "8851-3PCC"), ".loads")
    assert (url.scheme, url.host, url.port, url.path) == ("http", "10.0.0.1", 6970, "/mpp/8851-3PCC/"
                                                                                    "sip88xx.12-0-1MPP0001-100.loads")
    assert url.sibling("kern88xx.x.sbn").path == "/mpp/8851-3PCC/kern88xx.x.sbn"
    assert flatprofile.parse_url("TFTP://phones.example/a.loads").port == 69
    assert flatprofile.parse_url("https://10.0.0.1/a.loads").port == 443


# --- recovering an MPP phone -----------------------------------------------------------------------------------

def test_8851_follows_its_upgrade_rule_reboots_and_reports_the_new_version():
    files = station(mpp88(NEW88), **{"8851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{NEW88}.loads")})
    m = drive(phone("8851", OLD88, platform=2), files, until=120, stop=lambda m: m.settled)
    assert m.settled and m.installed == [NEW88] and m.flash.running.text == NEW88 and m.boots == 2
    ok = [(f["via"], f["name"]) for f in m.fetches if f["ok"]]
    assert ok == [("tftp", PSN_XML), ("http", f"/mpp/{NEW88}.loads"),
                  *[("http", f"/mpp/{k}288xx.12-0-1MPP0001-100.sbn") for k in ("sboot", "kern", "rootfs")],
                  ("tftp", PSN_XML)]
    uas = [f["user_agent"] for f in m.fetches if f["via"] == "http"]
    assert uas and set(uas) == {"Cisco-CP-8851-3PCC/11.3.3 (001234ab45de)"}      # before the reboot
    assert m.summary()["user_agent"] == "Cisco-CP-8851-3PCC/12.0.1 (001234ab45de)"
    assert m.summary()["firmware"] == mpp_load.MPP


def test_done_when_the_rule_names_the_running_load_nothing_fetched():
    files = station(mpp88(OLD88), **{"8851-3PCC.xml": profile(f"tftp://10.0.0.1/mpp/{OLD88.upper()}.loads")})
    m = drive(phone("8851", OLD88), files, until=200)
    assert m.settled and not m.installed and set(fetched(m, None)) == {PSN_XML}
    assert len(fetched(m)) >= 5                                       # it resyncs its profile, nothing else


def test_ua_version_reading_shows_in_the_requests_after_the_upgrade():
    files = station(mpp88(NEW88), **{"8851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{NEW88}.loads")}, http=True)
    files.files.pop("8851-3pcc.xml")
    files[CFG[1:]] = profile(f"http://10.0.0.1/mpp/{NEW88}.loads")
    m = drive(phone("8851", OLD88, ua_version=mpp_load.LOAD), files, until=120, stop=lambda m: m.settled)
    last = [f for f in m.fetches if f["via"] == "http"][-1]
    assert m.installed == [NEW88] and fetched(m)[-1] == CFG
    assert last["t"] > m.fetches[fetched(m, None).index(f"/mpp/{NEW88}.loads")]["t"]
    assert last["user_agent"] == "Cisco-CP-8851-3PCC/12-0-1MPP0001-100 (001234ab45de)"


@pytest.mark.parametrize("damage, screen", [
    (lambda f: {**f, f"mpp/{NEW88}.loads": f[f"mpp/{NEW88}.loads"][:-2]}, truth.CHECKSUM_ERROR),
    (lambda f: {**f, f"mpp/{NEW88}.loads": box(f"{NEW88}.loads", ini("12-0-1MPP0001-101", {1: [("k", "k.sbn", 1)]}))},
     truth.VERSION_ERROR),
    (lambda f: {**f, f"mpp/{NEW88}.loads": box("other.loads", b"x")}, mpp_truth.UPGRADE_FAILED),
    (lambda f: {k: v for k, v in f.items() if "kern" not in k}, "File not found kern88xx.12-0-1MPP0001-100.sbn"),
    (lambda f: {**f, "mpp/kern88xx.12-0-1MPP0001-100.sbn": box("kern88xx.12-0-1MPP0001-100.sbn", b"z")},
     truth.CHECKSUM_ERROR),
])
def test_a_broken_mpp_load_is_refused_and_the_old_one_kept(damage, screen):
    files = station(**{"8851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{NEW88}.loads")})
    for k, v in damage({f"mpp/{k}": v for k, v in mpp88(NEW88).items()}).items():
        files[k] = v
    m = drive(phone("8851", OLD88), files, until=12)
    assert not m.installed and m.flash.running.text == OLD88 and m.boots == 1
    assert m.refused[0]["screen"] == screen, m.refused


def test_raw_components_reading():
    raw = {f"mpp/{k}": v for k, v in mpp88(NEW88).items()}
    name = "mpp/sboot88xx.12-0-1MPP0001-100.sbn"
    raw[name] = b"h" * len(raw[name])                             # raw SquashFS-like bytes, the listed size [F3]
    files = station(**raw, **{"8851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{NEW88}.loads")})
    assert not drive(phone("8851", OLD88), files, until=12).installed
    m = drive(phone("8851", OLD88, raw_components=True), files, until=60, stop=lambda m: m.settled)
    assert m.installed == [NEW88]


def test_https_upgrade_rule_and_a_bad_rule_are_refused():
    files = station(mpp88(NEW88), **{"8851-3PCC.xml": profile(f"https://10.0.0.1/mpp/{NEW88}.loads")})
    m = drive(phone("8851", OLD88), files, until=12)
    assert not m.installed and m.refused[0]["screen"] == mpp_truth.UPGRADE_FAILED and NO_TLS in m.refused[0]["why"]
    files["8851-3PCC.xml"] = profile("http://10.0.0.1/../mpp/x.loads")
    m = drive(phone("8851", OLD88), files, until=12)
    assert m.refused[0]["why"].startswith("Upgrade_Rule:") and set(fetched(m, None)) == {PSN_XML}
    files["8851-3PCC.xml"] = b'<flat-profile><Upgrade_Ruleua="na">http://10.0.0.1/a.loads</Upgrade_Rule></flat-profile>'
    m = drive(phone("8851", OLD88), files, until=12)
    assert m.refused[0]["screen"] == mpp_truth.PROFILE_INVALID and "typo" in m.refused[0]["why"]


def test_v15_88x1_refuses_mpp_below_11_3_3_and_cannot_start_there():
    low = "sip88xx.11-2-3MPP-398"
    files = station(mpp88(low), **{"8851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{low}.loads")})
    m = drive(phone("8851", OLD88, vid="V15"), files, until=12)
    assert m.refused[0]["screen"] == truth.LOAD_REJECTED_HC and "11.3(3)" in m.refused[0]["why"]
    assert fetched(m, None) == [PSN_XML] * len(fetched(m, None))                 # the .loads never asked
    assert drive(phone("8851", OLD88, vid="V14"), files, until=30, stop=lambda m: m.settled).installed == [low]
    with pytest.raises(ValueError, match="11.3"):
        phone("8841", low, vid="V16")
    assert drive(phone("8845", "sip8845_65.11-3-3MPP0001-377", vid="V20"), station(), until=1).boots == 1


def test_68xx_runs_mpp_only_and_its_own_family():
    new68 = "sip68xx.12-0-7MPP0301-92"
    files = station(load5(new68, tags=("68xx",)), **{"6851-3PCC.xml": profile(f"http://10.0.0.1/mpp/{new68}.loads")})
    m = drive(phone("6851", "sip68xx.11-3-7MPP0001-10"), files, until=60, stop=lambda m: m.settled)
    assert m.installed == [new68] and fetched(m)[0] == "/6851-3PCC.xml"
    files["6821-3PCC.xml"] = profile(f"http://10.0.0.1/mpp/{new68}.loads")
    m = drive(phone("6821", "sip6821.11-3-7MPP0001-10"), files, until=12)
    assert m.refused[0]["screen"] == truth.LOAD_ID_INCORRECT                        # sip68xx is not the 6821's
    files["6851-3PCC.xml"] = profile(f"http://10.0.0.1/mpp/{ENT78}.loads")
    m = drive(phone("6851", "sip68xx.11-3-7MPP0001-10"), files, until=12)
    assert "MPP firmware only" in m.refused[0]["why"]
    with pytest.raises(ValueError, match="MPP firmware only"):
        phone("6851", ENT78)
    assert not mpp_truth.eligible("6871", None).accepted


# --- Enterprise -> MPP ----------------------------------------------------------------------------------------

def tl78() -> dict[str, bytes]:
    return load5(TL78)


def convert_station(lic: bytes | None = b"licence", rule: str = "http://10.0.0.1/lic/$MAU.lic",
                    config: str = TL78, **extra) -> Files:
    files = station(tl78(), under="")
    for k, v in load5(MPP78).items():
        files["mpp/" + k] = v
    files[SEP] = cnf(config)
    files["7841-3PCC.xml"] = profile(f"http://10.0.0.1/mpp/{MPP78}.loads", rule, "Classic")
    if lic is not None:
        files[f"lic/{MAC}.lic"] = lic
    for k, v in extra.items():
        files[k] = v
    return files


def test_7841_enterprise_to_mpp_through_the_transition_load_with_its_licence():
    m = drive(phone("7841", ENT78, vid="V04"), convert_station(), until=200, stop=lambda m: m.settled)
    assert m.installed == [TL78, MPP78] and m.summary()["firmware"] == mpp_load.MPP and m.settled
    names = fetched(m)
    assert names.index(SEP) < names.index(f"{TL78}.loads") < names.index("/7841-3PCC.xml")
    assert names.index("/7841-3PCC.xml") < names.index(f"/lic/{MAC}.lic") < names.index(f"/mpp/{MPP78}.loads")
    assert m.flash.trans_auth_type == "Classic" and m.boots == 3
    assert m.summary()["user_agent"] == "Cisco-CP-7841-3PCC/11.3.5 (001234ab45de)"


def test_without_its_licence_the_phone_stays_on_the_transition_load():
    m = drive(phone("7841", ENT78, vid="V04"), convert_station(lic=None), until=60)
    assert m.installed == [TL78] and m.flash.running.text == TL78 and m.summary()["firmware"] == mpp_load.TRANSITION
    assert {r["screen"] for r in m.refused} == {mpp_truth.LICENCE_MISSING}
    assert f"/mpp/{MPP78}.loads" not in fetched(m, None)
    assert all(f"{MAC}.lic" in r["why"] for r in m.refused)


@pytest.mark.parametrize("lic, rule, check, ok, words", [
    (b"", "http://10.0.0.1/lic/$MAU.lic", mpp_truth.LICENCE_NAME, False, "empty"),
    (b" \n", "http://10.0.0.1/lic/$MAU.lic", mpp_truth.LICENCE_NAME, False, "empty"),
    (b"anything", "http://10.0.0.1/lic/$MAU.lic", mpp_truth.LICENCE_NAME, True, ""),
    (b"anything", "http://10.0.0.1/lic/$MAU.lic", mpp_truth.LICENCE_MAC, False, "does not name"),
    (f"licence for {MAC.lower()}".encode(), "http://10.0.0.1/lic/$MAU.lic", mpp_truth.LICENCE_MAC, True, ""),
    (b"other", "http://10.0.0.1/lic/001234AB45DF.lic", mpp_truth.LICENCE_NAME, False, "licence of 001234AB45DF"),
    (b"static", "http://10.0.0.1/lic/E2312.lic", mpp_truth.LICENCE_NAME, True, ""),   # Cisco's web-UI example
])
def test_the_licence_check(lic, rule, check, ok, words):
    files = convert_station(lic=None, rule=rule)
    files[rule.split("10.0.0.1/", 1)[1].replace("$MAU", MAC)] = lic
    m = drive(phone("7841", ENT78, vid="V04", licence_check=check), files, until=200, stop=lambda m: m.settled)
    assert (m.flash.running.text == MPP78) is ok, m.refused
    if not ok:
        assert m.refused[0]["screen"] == mpp_truth.LICENCE_INVALID and words in m.refused[0]["why"]
        assert lic.strip() == b"" or lic.decode() not in str(m.summary())     # the licence's bytes never reported


def test_a_profile_without_trans_auth_rule_is_a_missing_licence():
    files = convert_station()
    files["7841-3PCC.xml"] = profile(f"http://10.0.0.1/mpp/{MPP78}.loads")
    m = drive(phone("7841", ENT78, vid="V04"), files, until=40)
    assert m.flash.running.text == TL78 and "no Trans_Auth_Rule" in m.refused[0]["why"]


def test_direct_from_14_0_1_profile_first_and_load_first():
    files = convert_station(config=MPP78)
    m = drive(phone("7841", ENT78_14, vid="V20"), files, until=200, stop=lambda m: m.settled)
    assert m.installed == [MPP78] and f"{MPP78}.loads" not in fetched(m)           # nothing over the Enterprise path
    assert fetched(m).index("/7841-3PCC.xml") < fetched(m).index(f"/mpp/{MPP78}.loads")
    for k, v in load5(MPP78).items():
        files[k] = v                                                               # the Enterprise load server has it
    m = drive(phone("7841", ENT78_14, vid="V20", direct=LOAD_FIRST), files, until=200, stop=lambda m: m.settled)
    assert m.installed == [MPP78] and f"{MPP78}.loads" in fetched(m) and f"/mpp/{MPP78}.loads" not in fetched(m)
    m = drive(phone("7841", ENT78_14, vid="V20", direct=LOAD_FIRST), _without_licence(files), until=60)
    assert not m.installed and m.summary()["staged"] == MPP78 and m.flash.running.text == ENT78_14
    assert m.summary()["firmware"] == mpp_load.ENTERPRISE and m.summary()["migrating"]
    assert m.summary()["user_agent"] == "Cisco-CP-7841-3PCC/14.0.1 (001234ab45de)"
    assert {r["screen"] for r in m.refused} == {mpp_truth.LICENCE_MISSING}


def _without_licence(files: Files) -> Files:
    out = Files(files.files.copy())
    out.files.pop(f"lic/{MAC}.lic".lower())
    return out


@pytest.mark.parametrize("model, start, vid, config, screen, words", [
    ("7841", ENT78, "V04", MPP78, mpp_truth.RELEASE_TOO_OLD, "through a transition load"),
    ("7841", "sip78xx.12-0-1-1", "V04", TL78, mpp_truth.RELEASE_TOO_OLD, "12.5(1)"),
    ("7841", ENT78, "V03", TL78, mpp_truth.NOT_ELIGIBLE, "7841 V03"),
    ("7861", ENT78, "V02", TL78, mpp_truth.NOT_ELIGIBLE, "7861"),
    ("8851", "sip88xx.12-8-1-0001-455", "V15", "sip88xx.TLexE2M-11-2-3C-12", truth.LOAD_REJECTED_HC, "11.3(3)"),
    ("7841", ENT78, "V04", "sip88xx.TLexE2M-11-2-3C-12", truth.LOAD_ID_INCORRECT, "not a load for the 7841"),
])
def test_enterprise_phones_that_cannot_start_the_migration(model, start, vid, config, screen, words):
    files = convert_station(config=config)
    m = drive(phone(model, start, vid=vid), files, until=20)
    assert not m.installed and m.summary()["firmware"] == mpp_load.ENTERPRISE
    assert m.refused[0]["screen"] == screen and words in m.refused[0]["why"], m.refused
    assert not [n for n in fetched(m, None) if n.endswith(".loads")]


def test_eligibility_rows_and_readings():
    for row in mpp_truth.ELIGIBILITY:
        assert row.source
    for name in ("7811", "7821", "7841", "7861", "8811", "8841", "8851", "8861", "8845", "8865", "8821", "8831"):
        for n in range(1, 30):
            rows = [r for r in mpp_truth.ELIGIBILITY if name in r.models and r.first <= n and (r.last is None or n <= r.last)]
            assert len(rows) == 1, (name, n)
    for name in ("8821", "8831"):
        v = mpp_truth.eligible(name, None)
        assert not v.accepted and "not eligible" in v.why
    assert mpp_truth.eligible("7821", "V03").accepted and not mpp_truth.eligible("7821", "V02").accepted
    assert mpp_truth.eligible("7821", "V25").accepted and not mpp_truth.eligible("7821", "V25", v24_bound=True).accepted
    assert mpp_truth.eligible("7841", "V04").accepted and not mpp_truth.eligible("7841", "V01").accepted
    assert mpp_truth.eligible("8851", "V15").accepted and mpp_truth.eligible("7841", None).accepted


# --- MPP -> Enterprise ------------------------------------------------------------------------------------------

def back_station(lic: bool = True, auth: str | None = None) -> Files:
    files = station(load5(ENT78), under="ent/")
    files["7841-3PCC.xml"] = profile(f"tftp://10.0.0.1/ent/{ENT78}.loads", "http://10.0.0.1/$MAU.lic", auth)
    files[SEP] = cnf(ENT78)
    if lic:
        files[f"{MAC}.lic"] = b"licence"
    return files


def test_mpp_to_enterprise_from_11_3_5_with_a_licence_then_an_enterprise_phone():
    m = drive(phone("7841", MPP78, vid="V04"), back_station(), until=200, stop=lambda m: m.settled)
    assert m.installed == [ENT78] and m.summary()["firmware"] == mpp_load.ENTERPRISE and m.settled
    after = fetched(m, None)[fetched(m, None).index("/ent/rootfs78xx.12-5-1SR1-4.sbn") + 1:]
    after = list(dict.fromkeys(after))                                   # HTTP first, then TFTP, per file
    assert after[:4] == [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", "ITLFile.tlv", SEP]   # the Enterprise boot chain
    m = drive(phone("7841", MPP78, vid="V04"), back_station(lic=False), until=30)
    assert not m.installed and m.refused[0]["screen"] == mpp_truth.LICENCE_MISSING
    m = drive(phone("7841", MPP78, vid="V04", trans_auth_type="Classic"), back_station(lic=False), until=200,
              stop=lambda m: m.settled)
    assert m.installed == [ENT78]                                        # [F7]: Classic goes back without one
    m = drive(phone("7841", "sip78xx.11-3-3MPP0001-377", vid="V04"), back_station(), until=30)
    assert m.refused[0]["screen"] == mpp_truth.RELEASE_TOO_OLD and "11.3(5)" in m.refused[0]["why"]


def test_round_trip_remembers_the_transition_type():
    files = convert_station()
    m = drive(phone("7841", ENT78, vid="V04"), files, until=200, stop=lambda m: m.settled)
    assert m.flash.trans_auth_type == "Classic"
    for k, v in back_station(lic=False).files.items():
        files[k] = v
    files["7841-3PCC.xml"] = profile(f"tftp://10.0.0.1/ent/{ENT78}.loads")
    m2 = drive(phone("7841", MPP78, vid="V04", trans_auth_type=m.flash.trans_auth_type), files, until=200,
               stop=lambda m: m.settled)
    assert m2.installed == [ENT78]


# --- the CLI --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--mpp", "--model", "CP-8831"], "not an MPP model"),
    (["--mpp", "--model", "6851", "--load", ENT78], "MPP firmware only"),
    (["--mpp", "--model", "8851", "--vid", "V15", "--load", "sip88xx.11-2-3MPP-398"], "11.3"),
    (["--mpp", "--model", "8851", "--dhcp-option-order", "66,43"], "only 66, 150, 159, 160"),
    (["--mpp", "--model", "8851", "--lease-option", "66"], "CODE=TEXT"),
])
def test_cli_refuses_an_mpp_phone_that_cannot_exist(argv, words, capsys):
    from tools.phonesim.__main__ import main
    assert main(["--server", "127.0.0.1", *argv]) == 2
    assert words in capsys.readouterr().err


def test_cli_flags_reach_the_phone():
    from tools.phonesim.__main__ import build, parser
    args = parser().parse_args(["--server", "127.0.0.1", "--mpp", "--model", "8841", "--first-mac", "00562b043614",
                                "--user-agent-version", "major.minor", "--licence-check", "mac", "--profile-order",
                                "protocol-first", "--dhcp-option-order", "160,66", "--lease-option",
                                "160=http://127.0.0.1:6970/", "--direct-migration", "load-first", "--tftp-no-slash"])
    (p,) = build(args)
    s = p.spec
    assert (s.ua_version, s.licence_check, s.order, s.option_order, s.direct, s.tftp_slash) == (
        "major.minor", "mac", "protocol-first", (160, 66), "load-first", False)
    assert p.lease_options == {160: b"http://127.0.0.1:6970/"} and p.http_port == 80
    assert p.machine.summary()["user_agent"] == "Cisco-CP-8841-3PCC/11.3 (00562b043615)"


def test_the_dhcp_client_asks_for_and_keeps_the_mpp_options():
    import struct

    from tools.phonesim.dhcp import _FIXED, MAGIC, DhcpClient, parse_options
    c = DhcpClient(bytes.fromhex(MAC), provisioning.vendor_class("CP-8851-3PCC"), f"SEP{MAC}", 7, prl=provisioning.PRL)
    sent = parse_options(c.discover()[_FIXED.size + 4:])
    assert {66, 150, 159, 160} <= set(sent[55]) and sent[60] == b"Cisco Systems, Inc. IP Phone CP-8851-3PCC\x00"

    def reply(kind: int, opts: list[tuple[int, bytes]]) -> bytes:
        fixed = _FIXED.pack(2, 1, 6, 0, 7, 0, 0, bytes(4), bytes((10, 0, 0, 9)), bytes(4), bytes(4),
                            bytes.fromhex(MAC) + bytes(10), bytes(64), bytes(128))
        body = b"".join(bytes((k, len(v))) + v for k, v in [(53, bytes((kind,))), (54, bytes((10, 0, 0, 1))), *opts])
        return fixed + MAGIC + body + b"\xff"

    url = b"http://10.0.0.1:6970/"
    assert c.receive(reply(2, [])) is not None
    c.receive(reply(5, [(1, bytes((255, 255, 255, 0))), (160, url), (150, bytes((10, 0, 0, 1)))]))
    assert c.lease is not None and c.lease.options is not None and c.lease.options[160] == url
    assert struct.unpack("!B", c.lease.options[53])[0] == 5
    got = provisioning.servers(c.lease.options, (160, 150))
    assert [(b.scheme, b.host, b.port) for b in got] == [("http", "10.0.0.1", 6970)]


def test_every_truth_row_names_its_source():
    assert all(m.source for m in mpp_truth.MODELS.values()) and all(r.source for r in mpp_truth.ELIGIBILITY)
    assert {m.name for m in mpp_truth.MODELS.values() if m.enterprise is None} == {"6821", "6841", "6851", "6861", "6871"}
    for family, load in mpp_truth.SHIPPED.items():
        assert fw(load).family == family and fw(load).kind == mpp_load.MPP
