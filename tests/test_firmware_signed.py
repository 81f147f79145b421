"""Cisco's signed-file header: the real layout, written down as facts, pins both the parser and synth.py.

Facts (reference cisco-phones.md §0.0 item 1, from a real SCCP45.9-4-2SR4-3S.loads in
dkgroot/provision_sccp; field numbers as usecallmanager's sgnfile reads them):
- the file starts `01 00 02 01 01` (tag 1, length 2, version 1.1), then `02 00 02 01 9c` (tag 2: header length 412);
- `03 00 5b`: the signer block, 91 bytes, nesting tag 4 (signer name), 5 (serial), 6 (CA name);
- tags 7-11: tag 7 nests 8 (digest algorithm, 1 byte) and 9, which nests 10 and 11 (1 byte each);
- `0c 01 00` + 256 signature bytes (tag 12), then `0e 00 19 "SCCP45.9-4-2SR4-3S.loads\\0"` (tag 14);
- then `0d 0d 0d`: tag 13 is padding, one byte each, NO length field, up to the header length (a multiple of 4);
- the CRLF text payload starts exactly at the header length: `#\\r\\n# This file contains ...`.
The old parser read tag 13 as a TLV: on this header it took `0d 0d 0d` as tag 13 with length 0x0d0d and
refused the file; test_real_layout_with_padding_parses fails on it.
"""
from __future__ import annotations

import struct

import pytest

from appliance.firmware import synth
from appliance.firmware.loads import parse_manifest
from appliance.firmware.signed import HeaderError, parse_signed_header, signed_name_matches

REAL_TAGS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14)
PAYLOAD = (b"#\r\n# This file contains a list of archive image files that will be requested by the\r\n"
           b"# RELEASE load version 9-4-2SR4-3\r\n#\r\n#HARDWARE_COMP_1 15\r\n\r\n"
           b"jar45sccp.9-4-2SR4-3.sbn\r\ncnu45.9-4-2SR4-3.sbn\r\n")


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def real_layout(name: str, signer_len: int = 38, ca_len: int = 34, timestamp: bool = False) -> bytes:
    """A header assembled by hand from the facts above (not by synth.py), padded with single 0x0d bytes."""
    signer = tlv(3, tlv(4, b"S" * signer_len + b"\0") + tlv(5, bytes(8)) + tlv(6, b"C" * ca_len + b"\0"))
    info = tlv(7, tlv(8, b"\x01") + tlv(9, tlv(10, b"\x00") + tlv(11, b"\x02")))
    body = signer + info + tlv(12, bytes(range(256))) + tlv(14, name.encode() + b"\0")
    if timestamp:
        body += tlv(15, struct.pack(">I", 1262304000))
    unpadded = 10 + len(body)
    total = unpadded + (-unpadded % 4)
    return b"\x01\x00\x02\x01\x01" + tlv(2, struct.pack(">H", total)) + body + b"\x0d" * (total - unpadded)


def test_real_example_is_412_bytes_with_three_padding_bytes():
    head = real_layout("SCCP45.9-4-2SR4-3S.loads")
    assert len(head) == 412 and head[:13] == bytes.fromhex("0100020101 020002019c 03005b")
    assert head[-3:] == b"\x0d\x0d\x0d" and head[-31:-28] == bytes.fromhex("0e0019")


@pytest.mark.parametrize("name", ["SCCP45.9-4-2SR4-3S.loads", "term65.default.loads", "P0030801SR02.loads",
                                  "jar45sccp.9-4-2SR4-3.sbn", "SCCP69xx.9-4-1-3SR3.zz.sgn", "x.loads"])
@pytest.mark.parametrize("signer_len", [30, 38, 41])
def test_real_layout_with_padding_parses(name, signer_len):
    head = real_layout(name, signer_len)
    h = parse_signed_header(head + PAYLOAD)
    assert h.length == len(head) and h.length % 4 == 0 and h.filename == name and h.version == "1.1"
    assert h.padding == (-(len(head) - h.padding) % 4) and h.padding <= 3
    assert h.tags == REAL_TAGS + (13,) * h.padding and h.signature_len == 256 and h.digest == 1
    m = parse_manifest(head + PAYLOAD) if name.endswith(".loads") else None
    if m:
        assert m.header_len == len(head) and m.names == ["jar45sccp.9-4-2SR4-3.sbn", "cnu45.9-4-2SR4-3.sbn"]
        assert m.filename == name and m.hardware_comp == 15


def test_optional_timestamp_tag_15():
    h = parse_signed_header(real_layout("a.loads", timestamp=True) + PAYLOAD)
    assert h.timestamp == 1262304000 and 15 in h.tags


@pytest.mark.parametrize("name", ["SCCP45.9-4-2SR4-3S.loads", "term45.default.loads", "jar45sccp.9-4-2SR4-3.sbn",
                                  "P0030801SR02.sb2", "cmterm-7945_7965-sccp.9-4-2SR4-3.cop.sgn"])
def test_synth_writes_exactly_the_real_layout(name):
    """synth.py is byte-faithful: same tag sequence, field lengths, padding and alignment as the facts."""
    ours = synth.signature_header(name)
    facts = real_layout(name)
    assert len(ours) == len(facts)
    h = parse_signed_header(ours)
    assert h.tags == parse_signed_header(facts).tags and h.filename == name
    assert ours[:13] == facts[:13]                            # tags 1, 2 and the signer block's length
    assert ours[-h.padding - len(name) - 4:] == facts[-h.padding - len(name) - 4:]   # tag 14 and padding


def test_synth_manifest_payload_starts_at_header_length_with_crlf():
    files = synth.load_files("SCCP45.9-4-2SR4-3S", size_bytes=4096)
    data = files["SCCP45.9-4-2SR4-3S.loads"]
    h = parse_signed_header(data)
    assert h.length == 412 and data[412:].startswith(b"#\r\n# This file contains a list of archive image files")
    assert b"\n" not in data[412:].replace(b"\r\n", b"")
    assert "jar45sccp.9-4-2SR4-3.sbn" in parse_manifest(data).names
    for comp in parse_manifest(data).names:
        assert parse_signed_header(files[comp]).filename == comp


def test_synth_term_file_is_signed_with_its_own_name():
    files = synth.load_files("SCCP45.8-5-2S", size_bytes=4096, term=True)
    assert parse_signed_header(files["term65.default.loads"]).filename == "term65.default.loads"
    assert parse_signed_header(files["term45.default.loads"]).filename == "term45.default.loads"


@pytest.mark.parametrize("mutate,words", [
    (lambda h: h[:200], "truncated: header length 412"),
    (lambda h: h[:9], "truncated signature header"),
    (lambda h: h[:8] + b"\x04\x00" + h[10:], "truncated: header length 1024"),      # padding past the end of the file
    (lambda h: h[:8] + b"\x00\x08" + h[10:], "shorter than"),
    (lambda h: b"\x02" + h[1:], "expected 1 (version"),
    (lambda h: h[:5] + b"\x03" + h[6:], "expected 2 (header length"),
    (lambda h: h[:10] + b"\x03\x00\x5c" + h[13:], "runs past the end of field 3"),   # signer block one byte short
    (lambda h: h[:-1] + b"\x10", "has no room"),                                     # a TLV where padding should be
    (lambda h: h[:-3] + b"\x10\x00\x09", "claims 9 bytes, past the header length"),
    (lambda h: h[:381] + b"\x0e\x00\xff" + h[384:], "field 14 at byte 381 claims 255"),
    (lambda h: h[:10] + b"\x01\x00\x02\x01\x01" + h[15:], "repeats a fixed field"),
])
def test_malformed_headers_name_the_byte(mutate, words):
    head = real_layout("SCCP45.9-4-2SR4-3S.loads")
    with pytest.raises(HeaderError) as exc:
        parse_signed_header(mutate(head) + (PAYLOAD if len(mutate(head)) >= 412 else b""))
    assert words in str(exc.value) and "byte" in str(exc.value)


def test_signed_name_rule():
    assert signed_name_matches("SCCP45.9-4-2SR4-3S.loads", "sccp45.9-4-2sr4-3s.LOADS")
    assert not signed_name_matches("SCCP45.8-5-2S.loads", "term65.default.loads")
    assert not signed_name_matches(None, "a.loads")
    # .sgn files: the signer may or may not have included the suffix (unconfirmed which): both pass
    assert signed_name_matches("SCCP69xx.9-4-1-3SR3.zz", "SCCP69xx.9-4-1-3SR3.zz.sgn")
    assert signed_name_matches("SCCP69xx.9-4-1-3SR3.zz.sgn", "SCCP69xx.9-4-1-3SR3.zz.sgn")


# Real 69xx and 894x manifests (dkgroot/provision_sccp HEAD 152d8d8, tftpboot/firmware/6921 and /894x; reference
# phone-families.md §4.1, §4.2, §7): SCCP69xx.9-4-1-3SR3.loads is 498 bytes, header 412, payload the three names
# joined by CRLF with none after the last; SCCP894x.9-4-2SR1-2.loads is 673 bytes, header 412, nine .binN.sgn
# names each followed by LF; its parts' headers are 416 bytes; BOOT894x.0-0-2-0.bin.sgn (header 412) sits beside
# them unlisted.  Every file is signed with its own name, .sgn included.
REAL_69XX = b"BOOT69xx.0-0-0-14.zz.sgn\r\nDSP69xx.12-4-123-2.160119.zz.sgn\r\nSCCP69xx.9-4-1-3SR3.zz.sgn"
REAL_894X = b"".join(b"SCCP894x.9-4-2SR1-2.bin%d.sgn\n" % i for i in range(1, 10))


@pytest.mark.parametrize("load_id,size,payload", [("SCCP69xx.9-4-1-3SR3", 498, REAL_69XX),
                                                  ("SCCP894x.9-4-2SR1-2", 673, REAL_894X)])
def test_synth_69xx_and_894x_manifests_are_the_real_ones(load_id, size, payload):
    files = synth.load_files(load_id, size_bytes=40_000)
    data = files[f"{load_id}.loads"]
    assert len(data) == size and data[412:] == payload and parse_signed_header(data).length == 412
    for name in parse_manifest(data).names:
        assert parse_signed_header(files[name]).filename == name
    if "894x" in load_id:
        assert parse_signed_header(files["SCCP894x.9-4-2SR1-2.bin1.sgn"]).length == 416
        assert parse_signed_header(files["BOOT894x.0-0-2-0.bin.sgn"]).length == 412
        assert "BOOT894x.0-0-2-0.bin.sgn" not in parse_manifest(data).names
