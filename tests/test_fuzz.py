"""Bounded property fuzzing of parsers that take untrusted input.

Why: a phone on the bench LAN can send any bytes; a parser may only answer
with its documented error type, never another exception.  Seeds kept in
fuzz/corpus/<target>/ are replayed first so past findings stay fixed.
"""
from __future__ import annotations

import pathlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import config
from appliance.dhcp import codec

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus"
BOUNDED = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _seeds(target: str) -> list[bytes]:
    folder = CORPUS / target
    return [p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file()]


def _parse_dhcp(data: bytes) -> None:
    try:
        msg = codec.parse(data)
    except codec.MalformedPacket:
        return
    codec.serialize(msg)


def _valid_dhcp() -> bytes:
    base = bytearray(240)
    base[0], base[1], base[2] = 1, 1, 6
    base[236:240] = b"\x63\x82\x53\x63"
    return bytes(base) + bytes([53, 1, 1, 12, 4]) + b"cisc" + b"\xff"


def test_dhcp_corpus_replay():
    seeds = _seeds("dhcp_codec") + [_valid_dhcp()]
    for seed in seeds:
        _parse_dhcp(seed)


@BOUNDED
@given(st.binary(max_size=1500))
def test_dhcp_codec_random_bytes(data):
    _parse_dhcp(data)


@BOUNDED
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 1499), st.integers(0, 255)), max_size=20),
       st.binary(max_size=400))
def test_dhcp_codec_mutated_valid_packet(seed, flips, tail):
    buf = bytearray(_valid_dhcp() + tail)
    rng = random.Random(seed)
    for pos, value in flips:
        buf[pos % len(buf)] = value
    if rng.random() < 0.3:
        buf = buf[: rng.randrange(len(buf) + 1)]
    _parse_dhcp(bytes(buf))


def _load_config(tmp_path: pathlib.Path, text: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(text)
    for firmware in (tmp_path / "firmware", tmp_path.parent / "firmware"):    # the default; the shipped "../firmware"
        firmware.mkdir(exist_ok=True)                                         # (relative to the file): checks go on
    try:
        config.load(path, environ={}, resolve_network=False)
    except config.ConfigError:
        pass


def test_config_corpus_replay(tmp_path):
    for seed in _seeds("config"):
        _load_config(tmp_path, seed)


_TOML_VALUES = st.one_of(st.integers(-2**70, 2**70), st.text(max_size=40), st.booleans(),
                         st.floats(allow_nan=True), st.lists(st.integers(-5, 70000), max_size=4))


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=600))
def test_config_loader_random_text(tmp_path, data):
    _load_config(tmp_path, data.encode("utf-8"))


def test_config_loader_non_utf8_file_is_config_error(tmp_path):
    """Found by fuzzing (input b'\\x80'): the error must name the file, not escape as UnicodeDecodeError."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[dns]\nupstream = \"caf\xe9\"\n")
    with pytest.raises(config.ConfigError) as info:
        config.load(path, environ={}, resolve_network=False)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)
    _load_config(tmp_path, b"\x80")


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_config_loader_typed_mutations(tmp_path, data):
    """Real section/key names with values of the wrong type or range."""
    base = (pathlib.Path(__file__).resolve().parent.parent / "config" / "appliance.toml").read_text()
    lines = base.splitlines()
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.sampled_from(keyed))
        key = lines[i].split("=", 1)[0].strip()
        value = data.draw(_TOML_VALUES)
        if isinstance(value, str):
            rendered = '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        elif isinstance(value, bool):
            rendered = str(value).lower()
        elif isinstance(value, float):
            rendered = "nan" if value != value else repr(value).replace("inf", "inf")
        else:
            rendered = repr(value).replace("'", '"')
        lines[i] = f"{key} = {rendered}"
    _load_config(tmp_path, "\n".join(lines).encode())


def test_fuzz_runner_bounded_subprocess():
    """The same runner `make fuzz` uses, for a few seconds per target, in a memory-limited subprocess."""
    from fuzz import run as fuzz_run
    for target in fuzz_run.TARGETS:
        result = fuzz_run.run(target, 2)
        assert result["failure"] is None, result
        assert result["inputs"] > 10


@pytest.mark.parametrize("target", ["tftp_request", "loads", "signed_header", "package"])
def test_file_service_parsers_corpus_replay(target):
    from fuzz import run as fuzz_run
    check = fuzz_run.TARGETS[target]()
    seeds = _seeds(target)
    assert seeds, f"fuzz/corpus/{target} is empty"
    for seed in seeds:
        check(seed)


@BOUNDED
@given(st.binary(max_size=1500))
def test_tftp_request_random_bytes(data):
    from fuzz import run as fuzz_run
    fuzz_run.TARGETS["tftp_request"]()(b"\x00\x01" + data)


@BOUNDED
@given(st.sampled_from(["synth_signed.loads", "synth_plain.loads", "real_layout_term65.loads",
                        "real_layout_7940.loads", "real_layout_wireless.loads"]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12), st.integers(0, 10**6))
def test_loads_parser_mutated_manifest(seed, flips, cut):
    from appliance.firmware import loads
    buf = bytearray((CORPUS / "loads" / seed).read_bytes())
    for pos, value in flips:
        buf[pos % len(buf)] = value
    loads.fuzz_manifest(bytes(buf[: len(buf) - cut % 64]))


def test_corpus_manifests_are_real_layout():
    """The seeds the fuzzers start from have real headers: padded with single 0x0d bytes to a multiple of 4."""
    from appliance.firmware import signed
    seeds = [p for p in (CORPUS / "loads").iterdir() if p.read_bytes()[:3] == signed.MAGIC]
    seeds += list((CORPUS / "signed_header").iterdir()) + list((CORPUS / "package").glob("*.cop.sgn"))
    heads = [signed.parse_signed_header(p.read_bytes()) for p in seeds]
    assert len(heads) >= 10 and all(h.length % 4 == 0 for h in heads)
    assert any(h.padding for h in heads) and len({h.length for h in heads}) > 3
