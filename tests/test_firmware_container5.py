"""The 5th-generation container (7800/8800): the real layout, written down as facts, pins the parser and synth.py.

Facts measured on real files (reference phone-families.md §1.2; staskobzar/cisco_prov `sip/`, HEAD
21e3f0eff24584cef577e3a32fcbb706191f28fd, read with git, never copied here), all little-endian:
- `sip78xx.11-0-1-11.loads`, 1308 bytes, starts `cd 34 12 ab  50 01 00 00  00 00 00 00  cc 03 00 00  00 00 00 00`
  (magic, header length 336, zero, payload length 972, zero), then the payload's SHA-256
  225ce55d7c8c3f7e1202952e2e888ce917722b697b6c6b6400558bd32b54a428, then `17 00 00 00` (name length 23)
  and `sip78xx.11-0-1-11.loads\\0`; the payload at 336 is the INI text quoted in the reference, ending in four LFs.
- components (name length, header length, first payload bytes, file size):
  kern78xx.11-0-1-11.sbn 22, 336, 27 05 19 56, 3089488; sboot78xx.11-0-1-11.sbn 23, 336, 27 05 19 56, 370348;
  kern2.78xx.11-0-1-11.sbn 24, 336 (the name fills its 24 bytes: no NUL), 27 05 19 56, 2505750;
  sboot2.78xx.11-0-1-11.sbn 25, 340, 6c 02 00 00, 596540.  Each header's SHA-256 is its payload's.
The headers here are assembled by hand from those facts, not by container5.build or synth.py.
"""
from __future__ import annotations

import hashlib
import pathlib
import struct

import pytest

from appliance.firmware import container5, synth
from appliance.firmware.container5 import (
    BAD_FIELD,
    DIGEST_MISMATCH,
    HEADER_PAST_END,
    LENGTH_MISMATCH,
    NAME_MISMATCH,
    TRUNCATED,
    Container5Error,
    parse_header,
    verify,
)
from appliance.firmware.loads import ManifestError, parse_manifest

REAL_LOADS_PREFIX = bytes.fromhex("cd3412ab 50010000 00000000 cc030000 00000000".replace(" ", ""))
REAL_LOADS_SHA256 = "225ce55d7c8c3f7e1202952e2e888ce917722b697b6c6b6400558bd32b54a428"
REAL_SIZES = {"sboot78xx.11-0-1-11.sbn": 370348, "kern78xx.11-0-1-11.sbn": 3089488,
              "rootfs78xx.11-0-1-11.sbn": 40239440, "sboot2.78xx.11-0-1-11.sbn": 596540,
              "kern2.78xx.11-0-1-11.sbn": 2505750, "rootfs2.78xx.11-0-1-11.sbn": 41943380}
REAL_HEADERS = [("kern78xx.11-0-1-11.sbn", 336, "27051956"), ("sboot78xx.11-0-1-11.sbn", 336, "27051956"),
                ("kern2.78xx.11-0-1-11.sbn", 336, "27051956"), ("sboot2.78xx.11-0-1-11.sbn", 340, "6c020000")]
CORPUS = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "container5"


def by_hand(name: str, payload: bytes, sig: bytes = bytes(range(256)), header_len: int | None = None,
            payload_len: int | None = None, digest: bytes | None = None) -> bytes:
    """A container assembled from the facts above, with any field overridable to make bad input."""
    raw = name.encode()
    padded = raw + b"\0" * ((4 - len(raw) % 4) % 4)
    length = 0x38 + len(padded) + 256 if header_len is None else header_len
    head = (b"\xcd\x34\x12\xab" + struct.pack("<I", length) + bytes(4)
            + struct.pack("<I", len(payload) if payload_len is None else payload_len) + bytes(4)
            + (hashlib.sha256(payload).digest() if digest is None else digest) + struct.pack("<I", len(raw)))
    return head + padded + sig + payload


def test_real_manifest_header_facts_parse():
    payload = b"x" * 972
    data = by_hand("sip78xx.11-0-1-11.loads", payload)
    assert len(data) == 1308 and data[:20] == REAL_LOADS_PREFIX
    h = verify(data, "SIP78XX.11-0-1-11.LOADS")
    assert (h.length, h.payload_length, h.filename, len(h.signature), h.extra) == (336, 972, "sip78xx.11-0-1-11.loads", 256, 0)


@pytest.mark.parametrize("name,header_len,lead", REAL_HEADERS)
def test_real_component_headers(name, header_len, lead):
    data = by_hand(name, bytes.fromhex(lead) + b"\0" * 64)
    h = parse_header(data)
    assert h.length == header_len and h.filename == name and data[h.length:h.length + 4].hex() == lead


@pytest.mark.parametrize("name,header_len,lead", REAL_HEADERS)
def test_synth_component_headers_are_the_real_layout(name, header_len, lead):
    files = synth.load_files("sip78xx.11-0-1-11", size_bytes=60_000)
    ours = files[name]
    h = verify(ours, name)
    assert h.length == header_len and ours[h.length:h.length + 4].hex() == lead
    facts = by_hand(name, ours[h.length:], sig=h.signature)
    assert ours == facts                      # byte for byte, once the (unverifiable) signature is the same


def test_synth_manifest_payload_is_the_real_one_given_the_real_sizes():
    """With the real components' sizes, synth's INI text is the real payload: the same SHA-256 as the real header's."""
    text = synth.gen5_manifest_text("sip78xx.11-0-1-11", REAL_SIZES).encode()
    assert len(text) == 972 and hashlib.sha256(text).hexdigest() == REAL_LOADS_SHA256
    data = synth.gen5_file("sip78xx.11-0-1-11.loads", text)
    assert len(data) == 1308 and data[:20] == REAL_LOADS_PREFIX and data[20:52].hex() == REAL_LOADS_SHA256


def test_manifest_reads_platforms_and_gates():
    m = parse_manifest(synth.gen5_file("sip78xx.11-0-1-11.loads",
                                       synth.gen5_manifest_text("sip78xx.11-0-1-11", REAL_SIZES).encode()))
    assert m.format == "container5" and m.filename == "sip78xx.11-0-1-11.loads" and m.header_len == 336
    assert [p.name for p in m.platforms] == ["PLATFORM_1", "PLATFORM_2"]
    assert [(f.role, f.name, f.size) for f in m.platforms[1].files] == [
        ("sboot", "sboot2.78xx.11-0-1-11.sbn", 596540), ("kern", "kern2.78xx.11-0-1-11.sbn", 2505750),
        ("rootfs", "rootfs2.78xx.11-0-1-11.sbn", 41943380)]
    assert m.evidence == {"hwcompat": "0x00000003", "swcompat": "0x00000004", "transition": "0x00000000"}
    assert m.cisco_id["version"] == "11-0-1-11" and len(m.names) == 6
    assert {c.name: c.size for c in m.components} == REAL_SIZES


PAYLOAD = b"\x27\x05\x19\x56" + bytes(100)


@pytest.mark.parametrize("data,served,problem,words", [
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD)[:300], None, TRUNCATED, "the file ends at byte 300, inside its 336"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD, header_len=1000), None, HEADER_PAST_END,
     "header length 1000 (at byte 4) runs past the end of the file at byte 440"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD)[:40], None, TRUNCATED, "truncated: 40 bytes"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD, header_len=5000), None, BAD_FIELD, "header length 5000 (at byte 4)"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD, payload_len=99), None, LENGTH_MISMATCH, "payload length 99 (at byte 12)"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD)[:-1], None, TRUNCATED, "the file ends after 103 payload bytes"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD) + b"\0", None, LENGTH_MISMATCH, "but the file has 105 bytes"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD, digest=bytes(32)), None, DIGEST_MISMATCH, "the file is damaged"),
    (by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD), "kern2.78xx.11-0-1-11.sbn", NAME_MISMATCH, "signed as 'kern78xx"),
    (b"\x01\x00\x02\x01\x01" + bytes(400), None, BAD_FIELD, "no 5th-generation magic"),
    (by_hand("../etc/passwd", PAYLOAD), None, BAD_FIELD, "not a plain file name"),
])
def test_bad_containers_are_named_problems(data, served, problem, words):
    with pytest.raises(Container5Error) as exc:
        verify(data, served)
    assert exc.value.problem == problem and words in str(exc.value)


def test_high_halves_of_the_lengths_are_refused_by_the_bounds():
    """0x08 and 0x10 are zero in every real file; read as high halves of 64-bit lengths, non-zero is out of bounds."""
    data = bytearray(by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD))
    data[0x10] = 1
    with pytest.raises(Container5Error) as exc:
        verify(bytes(data))
    assert exc.value.problem == TRUNCATED and "payload length 4294967400 (at byte 12)" in str(exc.value)
    data = bytearray(by_hand("kern78xx.11-0-1-11.sbn", PAYLOAD))
    data[0x08] = 1
    with pytest.raises(Container5Error) as exc:
        verify(bytes(data))
    assert exc.value.problem == BAD_FIELD


def test_streamed_digest_matches_whole_file_check():
    data = by_hand("rootfs78xx.11-0-1-11.sbn", bytes(range(256)) * 300)
    h = parse_header(data[:container5.MAX_HEADER])
    container5.check_size(h, len(data))
    hasher = container5.PayloadHasher(h)
    for at in range(h.length, len(data), 1000):
        hasher.feed(data[at:at + 1000])
    hasher.check()
    damaged = bytearray(data)
    damaged[-5] ^= 0xFF
    hasher = container5.PayloadHasher(h)
    hasher.feed(bytes(damaged[h.length:]))
    with pytest.raises(Container5Error) as exc:
        hasher.check()
    assert exc.value.problem == DIGEST_MISMATCH


INI = ("[CISCO-ID]\nversion = 11-0-1-11\nhwcompat = 0x00000003\n\n[PLATFORM_1]\n"
       "sboot=sboot78xx.11-0-1-11.sbn size=370348\nkern=kern78xx.11-0-1-11.sbn size=3089488\n")


@pytest.mark.parametrize("text,words", [
    (INI + "\n[PLATFORM_1]\nkern=x.sbn size=1\n", "section [PLATFORM_1] appears twice (first at line 5)"),
    (INI + "[cisco-id]\nversion = 1\n", "section [CISCO-ID] appears twice"),
    (INI.replace("[CISCO-ID]\nversion = 11-0-1-11\nhwcompat = 0x00000003\n", ""), "no [CISCO-ID] section"),
    (INI.split("[PLATFORM_1]")[0], "no [PLATFORM_n] section"),
    (INI.replace("version = 11-0-1-11\n", ""), "has no version"),
    (INI + "[PLATFORM_2]\nebr_diskver = 1\n", "[PLATFORM_2] (line 8) lists no files"),
    (INI + "kern=again.sbn size=1\n", "kern appears twice in [PLATFORM_1]"),
    (INI + "rootfs=../../etc/shadow size=1\n", "unsafe or invalid file name"),
    (INI + "rootfs=r.sbn size=12a\n", "is not a byte count"),
    ("stray line\n" + INI, "line 1: 'stray line' is outside any [section]"),
])
def test_bad_ini_payloads_are_named(text, words):
    data = synth.gen5_file("sip78xx.11-0-1-11.loads", text.encode())
    with pytest.raises(ManifestError) as exc:
        parse_manifest(data)
    assert words in str(exc.value)


def test_manifest_with_damaged_payload_is_refused():
    data = bytearray(synth.gen5_file("sip78xx.11-0-1-11.loads", INI.encode()))
    data[-3] = ord("9")
    with pytest.raises(ManifestError) as exc:
        parse_manifest(bytes(data))
    assert "SHA-256" in str(exc.value) and "damaged" in str(exc.value)


def test_fuzz_corpus_is_real_layout_and_replays():
    seeds = sorted(CORPUS.iterdir())
    assert len(seeds) >= 5
    good = 0
    for p in seeds:
        data = p.read_bytes()
        container5.fuzz_container(data)
        assert container5.is_container5(data)
        try:
            verify(data)
            good += 1
        except Container5Error:
            pass
    assert good >= 3
