"""The catalog's union view and generated configs fetched by real TFTP clients (curl, tftp-hpa).

The station's own file service is tested by its owner; here a stock tftpy
server on loopback asks only our catalog and Generated what to send, so the
names phones really use (mixed case, package contents, SEP/XMLDefault) are
proven against real clients independently of that service.
"""
from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.generated import Generated, refused
from tests.conftest import fixed_table, needs_tool

tftpy = pytest.importorskip("tftpy")
TARGET = "SCCP45.9-4-2SR4-3S"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(station_config, tmp_path):
    cfg = station_config
    root = Path(cfg.tftp.root)
    (pkg,) = synth.write_zip(root, TARGET, size_bytes=300_000)
    cat = Catalog.from_config(cfg)
    cat.scan()
    gen = Generated(cfg, cat, fixed_table(TARGET, (("001b2c3d4e5f", "127.0.0.1", "CP-7965G"),)))

    def answer(name, raddress=None, rport=None):
        if refused(name):
            return None
        body = gen.render(name, client_ip=raddress)
        if body is not None:
            f = tempfile.TemporaryFile()     # tftpy flocks what it sends, so it needs a real file
            f.write(body)
            f.seek(0)
            return f
        path = cat.resolve(name)
        return open(path, "rb") if path else None

    empty = tmp_path / "tftpy-root"
    empty.mkdir()
    port = free_udp_port()
    server = tftpy.TftpServer(str(empty), dyn_file_func=answer)
    th = threading.Thread(target=server.listen, args=("127.0.0.1", port, 1), daemon=True)
    th.start()
    deadline = time.time() + 5
    while server.sock is None and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield port, pkg, cfg
    finally:
        server.stop(now=True)
        th.join(5)


@needs_tool("curl")
def test_curl_fetches_package_contents_and_generated_configs(served, tmp_path):
    port, pkg, cfg = served

    def curl(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(["curl", "-s", "--max-time", "10", f"tftp://127.0.0.1:{port}/{name}"],
                              capture_output=True, timeout=20)

    with zipfile.ZipFile(pkg) as zf:
        jar = next(n for n in zf.namelist() if n.startswith("jar45"))
        expected = zf.read(jar)
        manifest = zf.read(f"{TARGET}.loads")
    r = curl(jar.upper())
    assert r.returncode == 0 and r.stdout == expected
    assert curl(f"{TARGET}.LOADS").stdout == manifest
    sep = ET.fromstring(curl("SEP001B2C3D4E5F.cnf.xml").stdout)
    assert sep.findtext("loadInformation") == TARGET
    default = ET.fromstring(curl("XMLDefault.cnf.xml").stdout)
    assert default.findtext("loadInformation436") == TARGET
    for name in ("ITLFile.tlv", "CTLSEP001B2C3D4E5F.tlv", "SEP001B2C3D4E5F.cnf.xml.sgn", "nothing.sbn"):
        assert curl(name).returncode != 0, name


@needs_tool("tftp")
def test_tftp_hpa_fetches_the_term_file_of_the_package(served, tmp_path):
    port, pkg, cfg = served
    out = tmp_path / "term65"
    r = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", "term65.default.loads", str(out)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(pkg) as zf:
        assert out.read_bytes() == zf.read("term65.default.loads")
