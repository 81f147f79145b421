"""`make kit FIRMWARE=dir`: the station image with a firmware library baked in, checked against its manifest.

The kit is built with podman as tests/test_image.py builds the image, saved, loaded back from the
archive, and then: the baked-in files match the kit's manifest (and a changed file is named), and
the station in the loaded image serves a baked-in file over TFTP to curl on the loopback.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from appliance.firmware import synth
from tests.test_dns import free_udp_port
from tests.test_image import CA, REPO, ensure_base, ensure_engine, sh

LOAD = "SCCP45.9-4-2SR4-3S"
BASE_IMAGE = "localhost/station-kittest:latest"
KIT_IMAGE = "localhost/station-kittest:kit"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman)"),
              pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (make test installs it)")]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    ensure_engine()
    ensure_base()
    tmp = tmp_path_factory.mktemp("kit")
    conf = tmp / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    firmware = tmp / "firmware"
    files = synth.write_load(firmware, LOAD, size_bytes=30000, components=2)
    archive = tmp / "kit.tar"
    make = ["make", "-C", str(REPO), "kit", f"FIRMWARE={firmware}", f"KIT={archive}", "ENGINE=podman",
            f"IMAGE={BASE_IMAGE}", f"KIT_IMAGE={KIT_IMAGE}",
            "BUILD_FLAGS=--format=docker --pull=never --isolation=chroot --network=host"]
    if CA.exists():
        make.append(f"CA={CA}")
    result = subprocess.run(make, capture_output=True, text=True, timeout=2400, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert archive.stat().st_size > 10 << 20
    sh("podman", "rmi", "-f", KIT_IMAGE, env=env, check=False)
    loaded = sh("podman", "load", "-i", str(archive), env=env, timeout=600)
    assert "kit" in loaded.stdout + loaded.stderr
    return {"env": env, "files": files}


def run(kit: dict, *cmd: str, network: str = "none") -> subprocess.CompletedProcess:
    return sh("podman", "--runtime", "runc", "run", "--rm", f"--network={network}", KIT_IMAGE, *cmd,
              env=kit["env"], timeout=300, check=False)


def test_baked_firmware_matches_its_manifest_and_a_change_is_named(kit):
    ok = run(kit, "appliance", "firmware", "verify", "--manifest", "/firmware-manifest/manifest.json")
    assert ok.returncode == 0 and "ok:" in ok.stdout, ok.stdout + ok.stderr
    victim = kit["files"][-1].name
    bad = run(kit, "sh", "-c", f"echo x >> /firmware/{victim} && touch /firmware/extra.bin && "
                               "appliance firmware verify --manifest /firmware-manifest/manifest.json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{victim} differs from the manifest" in bad.stdout and "extra.bin is not in the manifest" in bad.stdout


def test_the_loaded_kit_serves_a_baked_in_file(kit, tmp_path):
    port = free_udp_port()
    name = f"kit-{os.getpid()}"
    start = sh("podman", "--runtime", "runc", "run", "-d", "--name", name, "--network=host",
               "-e", "APPLIANCE_NETWORK_INTERFACE=lo", "-e", f"APPLIANCE_TFTP_PORT={port}", "-e", "APPLIANCE_TFTP_HTTP_PORT=0",
               "-e", "APPLIANCE_STATE_DIR=/tmp/state", KIT_IMAGE, "appliance", "serve", "tftp",
               env=kit["env"], timeout=120, check=False)
    assert start.returncode == 0, start.stdout + start.stderr
    want = kit["files"][0]
    try:
        got, deadline = b"", time.time() + 60
        while time.time() < deadline:
            got = subprocess.run(["curl", "-s", "--max-time", "5", f"tftp://127.0.0.1:{port}/{want.name}"],
                                 capture_output=True, timeout=30).stdout
            if got == want.read_bytes():
                break
            time.sleep(1)
        logs = sh("podman", "logs", name, env=kit["env"], check=False)
        assert got == want.read_bytes(), logs.stdout[-3000:] + logs.stderr[-3000:]
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, env=kit["env"], timeout=60)
