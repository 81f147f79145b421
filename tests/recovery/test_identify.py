"""A phone's word on its load (DeviceInformationX, CDP): a catalog load ID, a true ID the library lacks, or unknown.

Page formats are the real ones (reference cisco-phones.md §0.0 item 3, §7.1): on 79x1/2/5 appLoadID is the jar,
versionID the load ID in asterisks; on 7940/60 appLoadID is the load ID.  The catalog is a real Catalog over
synthetic firmware holding SCCP45 8.5(2) and 9.4(2)SR4-3, SIP45 9.4(2)SR4-3 (sharing cnu45/apps45/dsp45 with the
SCCP one) and the 7940 P00308010200.
"""
from __future__ import annotations

import http.server
import logging
import re
import threading
import time
from types import SimpleNamespace
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.models import models_for_load
from appliance.firmware.versions import version_key
from appliance.recovery import identify
from appliance.recovery.identify import Identified, from_cdp, from_page
from appliance.recovery.webpoll import FIELDS, MAX_BODY, MAX_VALUE, WebPoller, parse, read_page

STONE, TARGET, SIP = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "SIP45.9-4-2SR4-3S"
P7940 = "P00308010200"
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    root = tmp_path_factory.mktemp("firmware")
    for load in (STONE, TARGET, SIP):
        synth.write_load(root, load, size_bytes=2_000)
    synth.write_load(root, P7940, size_bytes=2_000, components=2)
    cat = Catalog(root, tmp_path_factory.mktemp("cache"))
    cat.scan()
    assert sorted(x.id for x in cat.loads) == sorted([STONE, TARGET, SIP, P7940]), cat.problems
    return cat


def page(**fields: str) -> bytes:
    """A DeviceInformationX document in the phones' layout (§7.1), fields in the order given."""
    body = "".join(f"<{k}>{v}</{k}>\n" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<DeviceInformation>\n{body}</DeviceInformation>\n'.encode()


def page_7965(app="jar45sccp.9-4-2SR4-3.sbn", version=f"*{TARGET}*", model="CP-7965G") -> bytes:
    return page(MACAddress="001E7A770001", HostName="SEP001E7A770001", phoneDN="", appLoadID=app,
                bootLoadID="tnp65.8-3-1-21a.bin", versionID=version, DSPLoadID="dsp45.9-4-2SR4-3.sbn",
                hardwareRevision="1.0", serialNumber="FCH7A770001", modelNumber=model)


# ---- the real page formats ------------------------------------------------------------------------------------

def test_79x1_page_gives_the_load_in_versionid_not_the_jar(catalog):
    fields = parse(page_7965())
    assert fields == {"apploadid": "jar45sccp.9-4-2SR4-3.sbn", "bootloadid": "tnp65.8-3-1-21a.bin",
                      "versionid": f"*{TARGET}*", "modelnumber": "CP-7965G", "hardwarerevision": "1.0"}
    got = from_page(fields, catalog)
    assert got == Identified(TARGET, f"*{TARGET}*", "web versionID", "", True)


def test_reference_7942_page_names_a_load_the_library_does_not_hold(catalog):
    """§0.0 item 3 verbatim: the load ID is stated (asterisks stripped), the unlisted jar is not taken for one."""
    fields = parse(page(appLoadID="jar42sccp.9-4-2ES26.sbn", bootLoadID="tnp62.8-3-1-21a.bin",
                        versionID="*SCCP42.9-4-2SR3-1S*", modelNumber="CP-7942G"))
    got = from_page(fields, catalog)
    assert (got.load, got.how, got.in_library) == ("SCCP42.9-4-2SR3-1S", "web versionID, not in library", False)
    only_jar = from_page({"apploadid": "jar42sccp.9-4-2ES26.sbn", "modelnumber": "CP-7942G"}, catalog)
    assert only_jar.load is None and "no manifest in the library lists" in only_jar.why


def test_7940_page_takes_appLoadID_and_ignores_the_version(catalog):
    fields = parse(page(appLoadID=P7940, bootLoadID="PC03A300", versionID="8.1(2.0)", modelNumber="CP-7940"))
    assert from_page(fields, catalog) == Identified(P7940, P7940, "web appLoadID", "", True)
    # the same page without a model still finds it: 8.1(2.0) is no load ID
    assert from_page({"apploadid": P7940, "versionid": "8.1(2.0)"}, catalog).load == P7940


def test_7940_appLoadID_wins_over_a_load_id_in_versionid(catalog):
    got = from_page({"apploadid": P7940, "versionid": "P0030801SR02", "modelnumber": "CP-7960"}, catalog)
    assert (got.load, got.how) == (P7940, "web appLoadID")
    assert "versionID says P0030801SR02" in got.why


def test_versionid_wins_over_a_disagreeing_jar_on_79x1(catalog):
    got = from_page({"apploadid": "jar45sccp.8-5-2.sbn", "versionid": f"*{TARGET}*"}, catalog)
    assert got.load == TARGET and f"appLoadID says {STONE}" in got.why


# ---- spelling -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("said", [TARGET, f"*{TARGET}*", f"  *{TARGET}*  ", "*sccp45.9-4-2sr4-3s*",
                                  f"{TARGET}.loads", f"*{TARGET.lower()}.LOADS*"])
def test_catalog_ids_come_back_in_catalog_spelling(catalog, said):
    got = from_page({"versionid": said}, catalog)
    assert (got.load, got.in_library, got.how) == (TARGET, True, "web versionID")


# ---- the jar matched to the manifest that lists it -------------------------------------------------------------

@pytest.mark.parametrize("jar, load", [
    ("jar45sccp.9-4-2SR4-3.sbn", TARGET),
    ("JAR45SCCP.9-4-2SR4-3.SBN", TARGET),
    ("jar45sccp.8-5-2.sbn", STONE),
    ("jar45sip.9-4-2SR4-3.sbn", SIP),          # same version, other protocol: its own load, not the SCCP one
    ("cvm45sip.9-4-2SR4-3.sbn", SIP),
    ("jar45sccp.9-4-2SR4-3", TARGET),          # named without .sbn, as in the reference's 7975 sample (§7.1)
    (f"{P7940}.sb2", P7940),
])
def test_component_maps_to_the_one_load_listing_it(catalog, jar, load):
    got = from_page({"apploadid": jar}, catalog)
    assert (got.load, got.in_library) == (load, True)
    assert got.how == f"web appLoadID, via {load}.loads"


def test_component_shared_by_sccp_and_sip_loads_is_unknown(catalog):
    assert sorted(x.id for x in catalog.load_listing("cnu45.9-4-2SR4-3.sbn")) == [TARGET, SIP]
    got = from_page({"apploadid": "cnu45.9-4-2SR4-3.sbn"}, catalog)
    assert got.load is None and "listed by 2 loads" in got.why


def test_load_listing_is_case_insensitive_and_knows_only_components(catalog):
    assert [x.id for x in catalog.load_listing("APPS45.8-5-2.SBN")] == [STONE]
    assert catalog.load_listing(f"{TARGET}.loads") == [] and catalog.load_listing("") == []
    assert catalog.load_listing("nothing.sbn") == []


class FakeCatalog:
    """The duck type identify needs: .load(id) and .load_listing(name)."""

    def __init__(self, *loads: SimpleNamespace):
        self.loads = list(loads)

    def load(self, load_id):
        key = load_id.lower().removesuffix(".loads")
        return next((x for x in self.loads if x.id.lower() == key), None)

    def load_listing(self, name):
        return [x for x in self.loads if name.lower() in (c.lower() for c in x.components)]


def fake(load_id: str, *components: str, protocol: str = "sccp") -> SimpleNamespace:
    return SimpleNamespace(id=load_id, components=list(components), protocol=protocol, manifest=f"{load_id}.loads")


def test_a_fake_catalog_works_and_protocol_filters_the_listing():
    cat = FakeCatalog(fake("SCCP42.9-4-2SR3-1S", "jar42sccp.9-4-2ES26.sbn", "cnu42.9-4-2ES26.sbn"),
                      fake("SIP42.9-4-2SR3-1S", "jar42sccp.9-4-2ES26.sbn", "cnu42.9-4-2ES26.sbn", protocol="sip"))
    assert from_page({"apploadid": "jar42sccp.9-4-2ES26.sbn"}, cat).load == "SCCP42.9-4-2SR3-1S"
    assert from_page({"apploadid": "cnu42.9-4-2ES26.sbn"}, cat).load is None
    only_sip = FakeCatalog(fake("SIP42.9-4-2SR3-1S", "jar42sccp.9-4-2ES26.sbn", protocol="sip"))
    got = from_page({"apploadid": "jar42sccp.9-4-2ES26.sbn"}, only_sip)
    assert got.load is None and "another protocol" in got.why


# ---- unknown strings never become a load ----------------------------------------------------------------------

@pytest.mark.parametrize("said", [
    "jar45sccp.9-4-2SR4-3.sbn",          # versions.family reads "jar45sccp" here: still a component, not a load
    "jar42sccp.9-4-2ES26.sbn", "tnp62.8-3-1-21a.bin", "cnu42.9-4-2ES26", "jar75sccp.9-4-2SR3-1S",
    "SCCP69xx.9-4-1-3SR3.zz.sgn", "SCCP45.9-4-2SR4-3S.txt", "SCCP45.", "term65.default", "term65.default.loads",
    "8.5(2)", "8.1(2.0)", "PC03A300", "LD0100BOOT021112A", "hello", "*", "**", "", "   ", "SCCP45",
    "SCCP45.9-4-2SR4-3S\u00e9", "SCCP45.9-4\n-2SR4-3S", "SCCP45.9-4-2SR4-3S\x00", "<b>SCCP45.9-4-2SR4-3S</b>",
    "SCCP45.9-4-2SR4-3S; rm -rf /",
    "SCCP45." + "9" * 100, "x" * 10_000, "../SCCP45.9-4-2SR4-3S", "SCCP45.9*4-2SR4-3S",
])
def test_unknown_strings_are_recorded_never_taken(said):
    got = from_page({"apploadid": said, "versionid": said}, FakeCatalog())
    assert got.load is None and got.why, got
    assert len(got.raw) <= identify.MAX_RAW + 3 and all(" " <= c <= "~" for c in got.raw)


def test_a_load_for_another_model_is_refused(catalog):
    got = from_page({"versionid": f"*{TARGET}*", "modelnumber": "CP-7942G"}, catalog)
    assert got.load is None and "not on this CP-7942G" in got.why
    assert from_page({"versionid": "*SCCP41.8-2-1S*", "modelnumber": "CP-7965G"}, catalog).load is None


def test_wrong_types_in_fields_are_unknown(catalog):
    assert from_page({"apploadid": 7, "versionid": ["x"], "modelnumber": None}, catalog).load is None
    assert from_page("not a dict", catalog).load is None                        # type: ignore[arg-type]
    assert from_page({}, catalog).load is None
    assert from_page({1: TARGET}, catalog).load is None                         # type: ignore[dict-item]
    assert from_page({"APPLOADID": "jar45sccp.9-4-2SR4-3.sbn"}, catalog).load == TARGET   # keys in any case


# ---- CDP ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, platform", [("SCCP41.8-2-1S", "Cisco IP Phone 7941"),
                                               ("SCCP42.8-4-2S", "Cisco IP Phone 7942")])
def test_cdp_versions_from_the_reference_are_loads_not_in_library(catalog, version, platform):
    assert from_cdp(version, platform, catalog) == Identified(version, version, "cdp, not in library")


def test_cdp_maps_to_the_catalog_and_checks_the_platform(catalog):
    assert from_cdp(STONE, "Cisco IP Phone 7965", catalog) == Identified(STONE, STONE, "cdp", "", True)
    assert from_cdp(STONE.lower(), None, catalog).load == STONE
    assert from_cdp(STONE, "Cisco IP Phone 7941", catalog).load is None
    for junk in ("", "Version : SCCP41.8-2-1S", "jar45sccp.9-4-2SR4-3.sbn\x00", "\xff" * 300):
        assert from_cdp(junk, "Cisco IP Phone 7941", catalog).load is None
    assert from_cdp(None, None, catalog).load is None                           # type: ignore[arg-type]


# ---- the page parser ------------------------------------------------------------------------------------------

def test_parse_attributes_cdata_entities_and_numbers():
    body = (b'<DeviceInformation><appLoadID kind="jar">jar45sccp.9-4-2SR4-3.sbn</appLoadID>'
            b'<versionID><![CDATA[*SCCP45.9-4-2SR4-3S*]]></versionID><modelNumber>CP&#45;7965&#x47;</modelNumber>'
            b'<bootLoadID>12345</bootLoadID><HostName>a & b</HostName></DeviceInformation>')
    assert parse(body) == {"apploadid": "jar45sccp.9-4-2SR4-3.sbn", "versionid": "*SCCP45.9-4-2SR4-3S*",
                           "modelnumber": "CP-7965G", "bootloadid": "12345"}


def test_parse_first_occurrence_decides():
    body = page(appLoadID="jar45sccp.8-5-2.sbn", versionID=f"*{STONE}*") + b""
    dup = body.replace(b"</DeviceInformation>", f"<versionID>*{TARGET}*</versionID></DeviceInformation>".encode())
    assert parse(dup)["versionid"] == f"*{STONE}*"
    later = f"<appLoadID>{TARGET}</appLoadID><versionID>{TARGET}</versionID></DeviceInformation>".encode()
    nested = page(appLoadID=f"<b>{TARGET}</b>", versionID="&bogus;").replace(b"</DeviceInformation>", later)
    assert parse(nested) == {}                   # the first copies are not text: dropped, the later ones not taken
    deeper = b"<DeviceInformation><x><versionID>SCCP45.9-4-2SR4-3S</versionID></x></DeviceInformation>"
    assert parse(deeper) == {}                   # a field counts only as a child of the root


def test_parse_control_chars_and_length():
    assert parse(page(versionID="\t*SCCP45.9-4-2SR4-3S*\r\n"))["versionid"] == "*SCCP45.9-4-2SR4-3S*"
    assert parse(page(versionID="SCCP45\x01.9-4-2SR4-3S"))["versionid"] == "SCCP45 .9-4-2SR4-3S"   # never joined
    assert parse(page(versionID="S" * MAX_VALUE))["versionid"] == "S" * MAX_VALUE
    assert "versionid" not in parse(page(versionID="S" * (MAX_VALUE + 1)))   # dropped, never cut to a shorter ID


@pytest.mark.parametrize("body, why", [
    (page_7965() + b" " * MAX_BODY, "larger than"),
    (page_7965().decode().encode("utf-16"), "NUL"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10, "NUL"),
    (b"<html><body><appLoadID>jar45sccp.9-4-2SR4-3.sbn</appLoadID></body></html>", "root element <html>"),
    (b'<!DOCTYPE d [<!ENTITY a "SCCP45.9-4-2SR4-3S">]>'
     b"<DeviceInformation><versionID>&a;</versionID></DeviceInformation>", "DOCTYPE"),
    (b"<DeviceInformation>" * 3_000, "nested deeper"),
    (b"<DeviceInformation><versionID>SCCP45.9-4-2SR4-3S</versionID>", "no complete"),
    (b"<DeviceInformation><a></b></DeviceInformation>", "mismatched"),
    (b"<DeviceInformation><versionID>1 < 2</versionID></DeviceInformation>", "broken markup"),
    (b"SCCP45.9-4-2SR4-3S", "outside the root"),
    (b"junk<DeviceInformation><versionID>SCCP45.9-4-2SR4-3S</versionID></DeviceInformation>", "outside the root"),
    (b"", "no complete"),
])
def test_hostile_pages_are_dropped_with_a_reason(body, why):
    fields, reason = read_page(body)
    assert fields == {} and why in reason, reason


def test_parse_non_utf8_and_ten_thousand_fields(catalog):
    latin = page_7965().replace(b"SEP001E7A770001</HostName>", b"caf\xe9</HostName>")
    assert from_page(parse(latin), catalog).load == TARGET
    many = b"<DeviceInformation>" + b"<versionID>*SCCP45.8-5-2S*</versionID>" + b"<versionID/>" * 2_000 \
        + b"<f/>" * 8_000 + b"</DeviceInformation>"                  # 10,001 fields inside the 64 KiB cap
    assert len(many) < MAX_BODY
    start = time.monotonic()
    assert parse(many) == {"versionid": "*SCCP45.8-5-2S*"}
    assert time.monotonic() - start < 2
    assert parse(many.replace(b"<f/>", b"<f>1</f>")) == {}             # the same fields over the cap: dropped whole


# ---- property: whatever a page holds, the load is a catalog ID or a well-formed ID the page itself stated -------

CATALOG_IDS = {STONE, TARGET, SIP, P7940}


def allowed(got: Identified, stated: list[object]) -> bool:
    """None, a catalog ID, or a load ID the input stated (a version, a model that runs it, no file suffix)."""
    if got.load is None:
        return True
    if got.load in CATALOG_IDS:
        return got.in_library
    said = {s.strip().strip("*").strip().lower().removesuffix(".loads") for s in stated if isinstance(s, str)}
    return (not got.in_library and got.load.lower() in said and version_key(got.load) is not None
            and bool(models_for_load(got.load)) and not got.load.lower().startswith(("term", "jar", "cnu", "apps"))
            and not re.search(r"\.(sbn|sb2|sgn|bin|zz|sebn|txt)$", got.load, re.I))


VALUES = st.sampled_from([
    TARGET, f"*{TARGET}*", STONE, SIP, P7940, "jar45sccp.9-4-2SR4-3.sbn", "jar45sip.9-4-2SR4-3.sbn",
    "cnu45.9-4-2SR4-3.sbn", "jar42sccp.9-4-2ES26.sbn", "*SCCP42.9-4-2SR3-1S*", "SCCP41.8-2-1S", "8.1(2.0)",
    "term65.default", "tnp62.8-3-1-21a.bin", "P0030801SR02", "sip88xx.12-5-1SR3-74", "CP-7965G", "CP-7940",
    "Cisco IP Phone 7941", "&amp;", "&#0;", "&#xD800;", "&nope;", "<![CDATA[SCCP45.8-5-2S]]>", "<b>x</b>", "]]>",
    "<!--", "-->", "<?x?>", "\x00", "\xff", "\u202e", "9" * 200])
TAGS = st.sampled_from(["appLoadID", "versionID", "modelNumber", "bootLoadID", "APPLOADID", "DeviceInformation",
                        "x", "appLoadID a='1'", "versionID/"])


@st.composite
def hostile_pages(draw) -> bytes:
    """Pages built from real and hostile pieces: fields, duplicates, nesting, broken closes, junk, any encoding."""
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from([0, 0, 0, 0, 0, 5, 5, 1, 2, 3, 4]))    # mostly elements, so many pages parse
        tag = draw(TAGS)
        name = tag.split(" ")[0].rstrip("/")
        if tag.endswith("/"):
            parts.append(f"<{tag}>")
        elif kind == 0:
            parts.append(f"<{tag}>{draw(VALUES)}</{name}>")
        elif kind == 1:
            parts.append(f"<{tag}>")
        elif kind == 2:
            parts.append(f"</{name}>")
        elif kind == 3:
            parts.append(draw(VALUES))
        elif kind == 4:
            parts.append(draw(st.text(max_size=40)))
        else:
            parts.append(f"<{tag}><{draw(TAGS)}>{draw(VALUES)}</{name}></{name}>")
    opened, closed = draw(st.sampled_from([1, 1, 1, 1, 0, 2])), draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    body = "<DeviceInformation>" * opened + "".join(parts) + "</DeviceInformation>" * closed
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["latin-1", "cp1252", "utf-16"]))
    return body.encode(encoding, "replace") + draw(st.sampled_from([b"", b"", b"", b"\n", b"\xff\xfe", b"\x00"]))


def _check_page(body: bytes, catalog) -> None:
    fields = parse(body)
    assert set(fields) <= set(FIELDS)
    assert all(isinstance(v, str) and 0 < len(v) <= MAX_VALUE and v == v.strip() for v in fields.values())
    assert not any(c < " " or "\x7f" <= c <= "\x9f" for v in fields.values() for c in v)
    got = from_page(fields, catalog)
    assert allowed(got, list(fields.values())), (fields, got)


@settings(max_examples=400, deadline=None, suppress_health_check=HEALTH)
@given(hostile_pages())
def test_hostile_pages_never_raise_nor_give_a_foreign_load(catalog, body):
    _check_page(body, catalog)


XML_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=150)


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(st.lists(st.tuples(st.sampled_from(["appLoadID", "versionID", "modelNumber", "bootLoadID", "HostName"]),
                          st.one_of(VALUES.filter(lambda v: v != "\x00"), XML_TEXT)), max_size=8))
def test_well_formed_pages_with_any_values_round_trip(catalog, pairs):
    """Escaped values come back as the first copy of each field (stripped, bounded); the load rule holds on them."""
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in pairs)
    fields = parse(f"<DeviceInformation>{body}</DeviceInformation>".encode())
    first: dict[str, str] = {}
    for k, v in pairs:
        first.setdefault(k.lower(), v)
    want = {k: c for k, v in first.items() if k in FIELDS
            and 0 < len(c := re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", v).strip()) <= MAX_VALUE}
    assert fields == want
    assert allowed(from_page(fields, catalog), list(fields.values()))


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(catalog, body):
    _check_page(body, catalog)
    _check_page(b"<DeviceInformation><versionID>" + body + b"</versionID></DeviceInformation>", catalog)


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(st.dictionaries(st.one_of(st.sampled_from(["apploadid", "versionid", "modelnumber", "AppLoadID"]), st.text()),
                       st.one_of(VALUES, st.text(), st.integers(), st.none(), st.binary(max_size=20)), max_size=6))
def test_any_fields_never_raise_nor_give_a_foreign_load(catalog, fields):
    got = from_page(fields, catalog)
    assert allowed(got, list(fields.values())), (fields, got)
    assert all(" " <= c <= "~" for c in got.raw)


@settings(max_examples=200, deadline=None, suppress_health_check=HEALTH)
@given(st.one_of(VALUES, st.text(max_size=120)), st.one_of(st.none(), st.text(max_size=60), VALUES))
def test_any_cdp_never_raises_nor_gives_a_foreign_load(catalog, version, platform):
    assert allowed(from_cdp(version, platform, catalog), [version])


# ---- the poller drops and logs a hostile page -----------------------------------------------------------------

def test_poller_logs_and_drops_hostile_pages(caplog):
    bodies = {"/huge": page_7965() + b" " * MAX_BODY, "/binary": b"\x00\x01" * 100, "/ok": page_7965()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = bodies[self.server.which]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    poller = WebPoller(port=server.server_address[1])
    try:
        with caplog.at_level(logging.WARNING, logger="appliance.recovery.webpoll"):
            for which, why in (("/huge", "larger than"), ("/binary", "NUL")):
                server.which = which
                caplog.clear()
                assert poller._get("127.0.0.1", 5) == {}
                assert any("dropped" in r.getMessage() and why in r.getMessage() for r in caplog.records), caplog.text
        server.which = "/ok"
        assert poller._get("127.0.0.1", 5)["versionid"] == f"*{TARGET}*"
    finally:
        poller.close()
        server.shutdown()
        server.server_close()
