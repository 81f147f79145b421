"""`make kit FIRMWARE=dir`: the station image with a firmware library baked in, checked against its manifest.

The kit is built with `make kit ENGINE=podman` (Docker's format added by the Makefile, so the HEALTHCHECK
survives both builds), saved, loaded back from the archive, and then: the baked-in files match the kit's
manifest (and a changed file is named), the station in the loaded image serves a baked-in file over TFTP to
curl on the loopback, and compose.yaml's `kit` service, as shipped, runs the kit in a bench namespace whose
project directory has no firmware/ and no config/: a phone there leases and fetches the baked files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from appliance.firmware import synth
from tests.test_dns import free_udp_port
from tests.test_image import CA, COMPOSE, REPO, STONE45, ensure_base, ensure_engine, podman_env, sh, station_and_phone_namespaces

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
    env = podman_env(tmp)
    firmware = tmp / "firmware"
    files = synth.write_load(firmware, LOAD, size_bytes=30000, components=2)
    files += synth.write_load(firmware, STONE45, size_bytes=20000, components=2)   # the 7965's stepping stone
    archive = tmp / "kit.tar"
    make = ["make", "-C", str(REPO), "kit", f"FIRMWARE={firmware}", f"KIT={archive}", "ENGINE=podman",
            f"IMAGE={BASE_IMAGE}", f"KIT_IMAGE={KIT_IMAGE}",
            "BUILD_FLAGS=--pull=never --isolation=chroot --network=host"]
    if CA.exists():
        make.append(f"CA={CA}")
    started = time.monotonic()
    result = subprocess.run(make, capture_output=True, text=True, timeout=2400, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"make kit (image + kit + save) in {time.monotonic() - started:.0f} s")
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


def test_the_kit_keeps_the_healthcheck(kit):
    doc = json.loads(sh("podman", "image", "inspect", KIT_IMAGE, env=kit["env"]).stdout)[0]
    assert (doc.get("Healthcheck") or {}).get("Test") == ["CMD", "python", "-m", "appliance.api.healthcheck"], doc


@pytest.mark.skipif(not os.path.exists(COMPOSE), reason="podman-compose not installed (the test extra has it)")
@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed (make test installs it)")
def test_compose_kit_service_serves_the_baked_firmware(kit, tmp_path):
    """compose.yaml as shipped, `--profile kit up kit`, in a directory with only compose.yaml in it (no firmware/,
    no config/: the kit carries both).  The one override is the network: host networking whose host is a
    namespace this test made (podman cannot run inside `ip netns exec`; see tests/test_image.py)."""
    tag = f"{os.getpid() % 100000}"
    st_ns, ph_ns, st_if, ph_if = f"kitst{tag}", f"kitph{tag}", f"vks{tag}", f"vkp{tag}"
    station = "10.215.7.1"
    proj = tmp_path / "bench"
    proj.mkdir()
    shutil.copy(REPO / "compose.yaml", proj / "compose.yaml")
    (proj / "override.yaml").write_text(f'services:\n  kit:\n    network_mode: "ns:/run/netns/{st_ns}"\n')
    env = dict(kit["env"], STATION_INTERFACE=st_if, STATION_KIT_IMAGE=KIT_IMAGE)
    compose = [COMPOSE, "-p", f"kit{tag}", "-f", "compose.yaml", "-f", "override.yaml", "--profile", "kit"]

    def station_get(url: str) -> str:
        return sh("ip", "netns", "exec", st_ns, "curl", "-s", "--max-time", "3", url, check=False).stdout

    try:
        station_and_phone_namespaces(st_ns, ph_ns, st_if, ph_if, f"{station}/24")
        up = sh(*compose, "up", "-d", "kit", env=env, cwd=proj, timeout=180, check=False)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        deadline, doc = time.time() + 90, {}
        while time.time() < deadline:           # green: the baked library is all this station has
            out = station_get(f"http://{station}:8080/api/v1/health")
            doc = json.loads(out) if out.startswith("{") else {}
            if doc.get("ok"):
                break
            time.sleep(1)
        logs = sh(*compose, "logs", env=env, cwd=proj, check=False, timeout=60)
        assert doc.get("ok"), json.dumps(doc)[:2000] + logs.stdout[-4000:] + logs.stderr[-4000:]
        assert {s["name"] for s in doc["services"] if s["status"] == "up"} >= {"dhcp", "tftp", "dns", "api"}, doc
        names = sh("podman", "ps", "--format", "{{.Names}}", "--filter", f"name=kit{tag}", env=env).stdout.split()
        check = sh("podman", "healthcheck", "run", names[0], env=env, check=False, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert not (proj / "firmware").exists() and not (proj / "config").exists(), "the kit service mounted a dir"
        lease = sh("ip", "netns", "exec", ph_ns, "busybox", "udhcpc", "-i", ph_if, "-n", "-q", "-t", "5",
                   "-s", "/bin/true", timeout=60, check=False)
        out = lease.stdout + lease.stderr
        assert "lease of 10.215.7." in out, out
        sh("ip", "-n", ph_ns, "addr", "add", f"{out.split('lease of ', 1)[1].split()[0]}/24", "dev", ph_if)
        for want in (kit["files"][0], kit["files"][-1]):
            for url in (f"tftp://{station}/{want.name}", f"http://{station}:6970/{want.name}"):
                got = subprocess.run(["ip", "netns", "exec", ph_ns, "curl", "-s", "--max-time", "20", url],
                                     capture_output=True, timeout=60).stdout
                assert got == want.read_bytes(), f"{url}: {len(got)} bytes, want the baked {want.stat().st_size}"
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "5"], capture_output=True, env=env, cwd=proj, timeout=120)
        for ns in (st_ns, ph_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
