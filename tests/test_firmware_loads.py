"""The .loads parser on the reference's real payloads, signed headers from the generator, and hostile bytes."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.firmware import synth
from appliance.firmware.loads import MAX_COMPONENTS, ManifestError, fuzz_manifest, parse_manifest

SCCP42 = (b"# This file contains a list of archive image files that will be requested by the\r\n"
          b"# RELEASE load version 9-4-2ES26\r\n#\r\n#HARDWARE_COMP_1 5\r\n\r\n"
          b"jar42sccp.9-4-2ES26.sbn\r\ncnu42.9-4-2ES26.sbn\r\napps42.9-4-2ES26.sbn\r\n"
          b"dsp42.9-4-2ES26.sbn\r\ncvm42sccp.9-4-2ES26.sbn\r\n")
P003 = b"P0030801SR02.sbn\r\nP0030801SR02.sb2\r\nLA_VERSION=PAS30831\r\n"
WIRELESS = (b"#? HW_REV 0-2.*\r\n#? SW_CAP EAP-TLS,PEAP,VSFIX\r\n"
            b"TNUXH-1.4.1SR1.SBN\t937841\tEBDEF11A57898C6D805DFB86904106FB\r\n"
            b"#+ JSYSH-1.4.1SR1.SBN  708556 9606784631D3C06F2398CC6371B0AA60\r\n")


def signed(payload: bytes, name: str = "SCCP42.9-4-2SR3-1S.loads") -> bytes:
    return synth.signature_header(name) + payload


def test_plain_sccp42_payload():
    m = parse_manifest(SCCP42)
    assert m.names == ["jar42sccp.9-4-2ES26.sbn", "cnu42.9-4-2ES26.sbn", "apps42.9-4-2ES26.sbn",
                       "dsp42.9-4-2ES26.sbn", "cvm42sccp.9-4-2ES26.sbn"]
    assert m.hardware_comp == 5 and not m.signed


def test_signed_header_is_skipped_by_its_own_length():
    data = signed(SCCP42)
    m = parse_manifest(data)
    assert m.signed and m.version == "1.1" and m.filename == "SCCP42.9-4-2SR3-1S.loads"
    assert m.header_len == len(data) - len(SCCP42) and len(m.components) == 5


def test_7940_manifest_keeps_attributes_out_of_components():
    m = parse_manifest(P003)
    assert m.names == ["P0030801SR02.sbn", "P0030801SR02.sb2"] and m.attributes == {"LA_VERSION": "PAS30831"}


def test_wireless_form_with_sizes_md5_and_optional_lines():
    m = parse_manifest(signed(WIRELESS, "CP7925G-1.4.1SR1.LOADS"))
    assert [(c.name, c.size, c.optional) for c in m.components] == [
        ("TNUXH-1.4.1SR1.SBN", 937841, False), ("JSYSH-1.4.1SR1.SBN", 708556, True)]
    assert m.gates == {"HW_REV": "0-2.*", "SW_CAP": "EAP-TLS,PEAP,VSFIX"}


def test_lf_only_and_trailing_nul_padding():
    assert len(parse_manifest(SCCP42.replace(b"\r\n", b"\n") + b"\0\0\0").components) == 5


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"# only comments\r\n", "no component"),
    (signed(SCCP42)[:100], "truncated"),
    (b"\x01\x00\x02\x01\x01\x02\x00\x02\xff\xff" + SCCP42, "truncated"),          # header length past the end
    (b"\x01\x00\x02\x01\x01\x02\x00\x02\x00\x03" + SCCP42, "shorter than"),      # header length too small
    (b"\x01\x00\x02\x01\x01\x05\x00\x01\x00" + SCCP42, "expected 2 (header length"),
    (b"\x01\xff\xff\x01", "binary byte 0x01 at byte 0"),                            # not 01 00 02: not a header
    (b"\x01\x00\x02", "truncated"),
    (b"../../etc/passwd\r\n", "unsafe"),
    (b"sub/dir.sbn\r\n", "unsafe"),
    (b"a.sbn 12\r\n", "expected NAME"),
    (b"a.sbn\x00\x01garbage\r\n", "binary"),
    (b"caf\xc3\xa9.sbn\r\n", "non-ASCII"),
    (b"x.sbn\r\n" + b"".join(b"K%d=v\r\n" % i for i in range(65)), "KEY=VALUE"),
    (b"x.sbn\r\n" + b"".join(b"#? G%d x\r\n" % i for i in range(65)), "'#?'"),
    (b"x.sbn\r\n" * 10 + b"".join(b"f%d.sbn\r\n" % i for i in range(MAX_COMPONENTS + 1)), "more than"),
])
def test_malformed_manifests_raise_manifest_error(data, words):
    with pytest.raises(ManifestError) as exc:
        parse_manifest(data)
    assert words in str(exc.value)


def test_too_large_is_refused_without_parsing():
    with pytest.raises(ManifestError, match="too large"):
        parse_manifest(b"a.sbn\r\n" * 200_000)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_other_exceptions(data):
    fuzz_manifest(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([signed(SCCP42), signed(WIRELESS), P003, SCCP42]),
       st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=8), st.integers(0, 4096))
def test_mutated_real_manifests(seed, flips, cut):
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    data = bytes(data[:cut]) if cut < len(data) else bytes(data)
    fuzz_manifest(data)
    try:
        m = parse_manifest(data)
    except ManifestError:
        return
    assert 0 < len(m.components) <= MAX_COMPONENTS and m.header_len <= len(data)
    assert all("/" not in c.name and ".." != c.name for c in m.components)
