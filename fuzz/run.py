"""Time-bounded mutation fuzzer for the station's parsers.

Why a plain mutator and not atheris: it runs on any CPython 3.11 without a
compiled extension, and each target runs in its own process under RLIMIT_AS
and a per-input alarm so a crash, hang or memory blow-up is reported, never
silently absorbed.  Usage: python -m fuzz.run SECONDS [TARGET ...]; prints JSON.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
MEMORY_LIMIT = 1 << 30
INPUT_SECONDS = 2


def _dhcp_codec():
    from appliance.dhcp import codec

    def check(data: bytes) -> None:
        try:
            msg = codec.parse(data)
        except codec.MalformedPacket:
            return
        codec.serialize(msg)
    return check


def _config():
    from appliance import config
    folder = pathlib.Path(tempfile.mkdtemp(prefix="fuzzcfg"))
    path = folder / "fuzz.toml"
    (folder / "firmware").mkdir()     # [tftp] root's default, relative to the file: the checks after it run too

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            config.load(path, environ={}, resolve_network=False)
        except config.ConfigError:
            return
    return check


def _tftp_request():
    from appliance.tftp import packets, session
    settings = session.Settings()

    def check(data: bytes) -> None:
        try:
            opcode, name, mode, options = packets.parse_request(data)
        except packets.Malformed:
            return
        reply, blksize, timeout, window = session.negotiate(options, len(data) * 1000, settings)
        assert 8 <= blksize <= settings.max_blksize or blksize == 512, blksize
        assert window >= 1, window
        packets.encode_oack(reply)
    return check


def _loads():
    from appliance.firmware import loads
    return loads.fuzz_manifest


def _signed_header():
    from appliance.firmware import signed

    def check(data: bytes) -> None:
        try:
            h = signed.parse_signed_header(data)
        except signed.HeaderError:
            return
        assert signed.FIXED_LEN <= h.length <= len(data), h.length
        assert h.tags[:2] == (1, 2) and h.padding == h.tags.count(signed.TAG_PADDING)
        assert h.filename is None or (h.filename.isascii() and len(h.filename) <= signed.MAX_NAME)
    return check


def _container5():
    """The 7800/8800 container, and its INI payload whatever the digest says (a mutation rarely keeps it right)."""
    from appliance.firmware import container5, loads5

    def check(data: bytes) -> None:
        container5.fuzz_container(data)
        try:
            header = container5.parse_header(data[:container5.MAX_HEADER])
        except container5.Container5Error:
            return
        try:
            ini = loads5.parse_ini(data[header.length:].decode("ascii", "replace"))
        except loads5.IniError:
            return
        assert ini.version and ini.platforms and all(p.files for p in ini.platforms)
        assert all("/" not in f.name and f.size <= loads5.MAX_SIZE for p in ini.platforms for f in p.files)
    return check


def _package():
    """Any bytes as a .cop.sgn and as a .zip: Refused or files inside the destination, nothing else."""
    from appliance.firmware import unpack
    folder = pathlib.Path(tempfile.mkdtemp(prefix="fuzzpkg"))

    def check(data: bytes) -> None:
        for name in ("p.cop.sgn", "p.zip"):
            src, dest = folder / name, folder / "out"
            src.write_bytes(data)
            try:
                result = unpack.unpack(src, dest, max_total=1 << 22)
            except unpack.Refused:
                assert not dest.exists()
                continue
            real = dest.resolve()
            for f in result.files:
                assert (dest / f).resolve().is_relative_to(real) and f.count("/") <= 1, f
            shutil.rmtree(dest)
    return check


TARGETS = {"dhcp_codec": _dhcp_codec, "config": _config, "tftp_request": _tftp_request, "loads": _loads,
           "signed_header": _signed_header, "package": _package, "container5": _container5}


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    buf = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:
            buf[rng.randrange(len(buf) + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and buf:
            del buf[rng.randrange(len(buf)):][: rng.randint(1, 64)]
        elif op == 3 and buf:
            buf = buf[: rng.randrange(len(buf) + 1)]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            buf += buf[start:start + rng.randint(1, 64)] * rng.randint(1, 8)
    return bytes(buf[:65536])


def _worker(target: str, seconds: float, out) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    def hang(_sig, _frame):
        raise TimeoutError("input exceeded per-input time bound")
    signal.signal(signal.SIGALRM, hang)
    check = TARGETS[target]()
    seeds = [p.read_bytes() for p in sorted((CORPUS / target).glob("*")) if p.is_file()] or [b""]
    rng = random.Random(os.getpid() ^ int(time.time()))
    tried, deadline = 0, time.monotonic() + seconds
    data = b""
    try:
        for data in seeds:
            signal.alarm(INPUT_SECONDS)
            check(data)
            tried += 1
        while time.monotonic() < deadline:
            data = _mutate(rng, rng.choice(seeds))
            signal.alarm(INPUT_SECONDS)
            check(data)
            tried += 1
        signal.alarm(0)
        out.send({"target": target, "inputs": tried, "failure": None})
    except BaseException:
        signal.alarm(0)
        crash = CORPUS.parent / "crashes" / target
        crash.mkdir(parents=True, exist_ok=True)
        (crash / f"crash-{os.getpid()}.bin").write_bytes(data)
        out.send({"target": target, "inputs": tried, "failure": traceback.format_exc(limit=3), "input": data.hex()})


def run(target: str, seconds: float) -> dict:
    parent, child = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.Process(target=_worker, args=(target, seconds, child))
    proc.start()
    result = parent.recv() if parent.poll(seconds + INPUT_SECONDS + 30) else None
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if result is None:
        result = {"target": target, "inputs": None, "failure": f"worker died, exit code {proc.exitcode}"}
    return result


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 5.0
    targets = argv[1:] or list(TARGETS)
    results = [run(t, seconds) for t in targets]
    print(json.dumps(results, indent=1))
    return 1 if any(r["failure"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
