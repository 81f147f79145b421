"""The Raspberry Pi images: linux/arm64 and linux/arm/v7 built with podman under qemu and smoke-tested.

Follows /work/shared/reference/container-testing.md ("Other architectures"): qemu-user-static and
binfmt-support registered as root, a debootstrapped Debian 12 base per architecture imported locally
(cached under /var/cache/recovery-station), the Dockerfile's BASE build argument pointing at it.
Each image must say its version, pass check-config, import the C pump and run the lldpd built for
it (both cross-compiled on the host in the Dockerfile's native stage), and serve one file over TFTP
to curl on the host's loopback.  Where the machine cannot emulate,
the tests skip saying why.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_dns import free_udp_port
from tests.test_image import CA, CACHE, REPO, debootstrap_tar, ensure_engine, podman_env, sh

ARCHES = {   # platform -> (Debian arch, podman arch, variant, binfmt handler, uname -m inside)
    "linux/arm64": ("arm64", "arm64", "", "qemu-aarch64", "aarch64"),
    "linux/arm/v7": ("armhf", "arm", "v7", "qemu-arm", "armv7l"),
}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
TIMES: dict[str, float] = {}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, binfmt, debootstrap)")]


def ensure_emulation(handler: str) -> None:
    if not (BINFMT / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT), check=False)
    if not (BINFMT / handler).exists():
        if shutil.which("update-binfmts") is None or not Path("/usr/bin/qemu-aarch64-static").exists():
            try:
                sh("apt-get", "install", "-y", "-qq", "qemu-user-static", "binfmt-support", timeout=900,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"cannot emulate {handler}: installing qemu-user-static failed: {exc}")
        sh("update-binfmts", "--enable", check=False)
    if not (BINFMT / handler).exists():
        pytest.skip(f"cannot emulate: no binfmt handler {handler} after installing qemu-user-static")


def ensure_base(deb_arch: str, pod_arch: str, variant: str, env: dict) -> str:
    name = f"localhost/debian-bookworm-minbase:{deb_arch}"
    if sh("podman", "image", "exists", name, check=False, env=env).returncode == 0:
        return name
    tar = CACHE / f"bookworm-minbase-{deb_arch}-v1.tar"
    debootstrap_tar(tar, deb_arch, timeout=1800)      # the second stage runs under qemu
    cmd = ["podman", "import", "--arch", pod_arch] + (["--variant", variant] if variant else []) + [str(tar), name]
    sh(*cmd, timeout=600, env=env)
    return name


def host_arch(env: dict[str, str]) -> str:
    return sh("podman", "info", "--format", "{{.Host.Arch}}", env=env, timeout=60).stdout.strip()


def build_arch_image(platform: str, env: dict[str, str]) -> dict:
    """The station image for `platform` (a key of ARCHES) built under qemu on a local Debian base, as
    localhost/recovery-station:test-<Debian arch>; podman's layer cache makes a rebuild of an unchanged tree
    take seconds.  Skips where the machine cannot emulate."""
    deb_arch, pod_arch, variant, handler, machine = ARCHES[platform]
    ensure_engine()
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap not installed")
    ensure_emulation(handler)
    started = time.monotonic()
    base = ensure_base(deb_arch, pod_arch, variant, env)
    image = f"localhost/recovery-station:test-{deb_arch}"
    # BUILDPLATFORM: the Dockerfile's native stage (where lldpd and the pump are cross-compiled) runs on the host's
    # own architecture; podman 4.3 does not set it
    cmd = ["podman", "build", "--platform", platform, "--build-arg", f"BUILDPLATFORM=linux/{host_arch(env)}",
           "--build-arg", f"BASE={base}", "--format=docker", "--pull=never", "--isolation=chroot", "--network=host",
           "-t", image]
    if CA.exists():
        cmd += ["--secret", f"id=ca,src={CA}"]
    result = subprocess.run(cmd + [str(REPO)], capture_output=True, text=True, timeout=3600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    TIMES[platform] = time.monotonic() - started
    print(f"{platform}: base + build in {TIMES[platform] / 60:.1f} min")
    return {"image": image, "env": env, "machine": machine, "platform": platform}


@pytest.fixture(scope="module", params=sorted(ARCHES))
def arch_image(request, tmp_path_factory):
    return build_arch_image(request.param, podman_env(tmp_path_factory.mktemp("podman")))


def run_in(img: dict, *cmd: str, timeout: float = 300, network: str = "none", **kw) -> subprocess.CompletedProcess:
    return sh("podman", "--runtime", "runc", "run", "--rm", f"--network={network}", *kw.pop("opts", ()), img["image"],
              *cmd, env=img["env"], timeout=timeout, check=False, **kw)


def test_runs_the_cli_built_for_its_architecture(arch_image):
    out = run_in(arch_image, "sh", "-c", "uname -m && appliance --version")
    assert out.returncode == 0, out.stdout + out.stderr
    machine, version = out.stdout.split("\n")[:2]
    assert machine == arch_image["machine"] and version.startswith("appliance "), out.stdout


def test_check_config_the_c_pump_and_lldpd(arch_image):
    out = run_in(arch_image, "appliance", "check-config", opts=("-e", "APPLIANCE_NETWORK_INTERFACE=lo"))
    assert out.returncode == 0, out.stdout + out.stderr
    out = run_in(arch_image, "python", "-c", "import appliance.tftp._pump as p; print(p.__file__)")
    assert out.returncode == 0 and "_pump" in out.stdout, out.stdout + out.stderr
    out = run_in(arch_image, "sh", "-c", "lldpd -v && lldpcli -v && id -u _lldpd")     # cross-compiled in the native stage
    assert out.returncode == 0 and out.stdout.split()[:2] == ["1.0.16", "1.0.16"], out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (make test installs it)")
def test_serves_one_file_over_tftp(arch_image, tmp_path):
    firmware = tmp_path / "firmware"
    firmware.mkdir()
    body = os.urandom(5000)
    (firmware / "hello.bin").write_bytes(body)
    port = free_udp_port()
    name = f"arch-{arch_image['machine']}-{os.getpid()}"
    start = sh("podman", "--runtime", "runc", "run", "-d", "--name", name, "--network=host",
               "-e", "APPLIANCE_NETWORK_INTERFACE=lo", "-e", f"APPLIANCE_TFTP_PORT={port}", "-e", "APPLIANCE_TFTP_HTTP_PORT=0",
               "-e", "APPLIANCE_STATE_DIR=/tmp/state", "-v", f"{firmware}:/firmware:ro", arch_image["image"],
               "appliance", "serve", "tftp", env=arch_image["env"], timeout=120, check=False)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        got, deadline = b"", time.time() + 180          # emulated start-up is slow
        while time.time() < deadline:
            got = subprocess.run(["curl", "-s", "--max-time", "5", f"tftp://127.0.0.1:{port}/hello.bin"],
                                 capture_output=True, timeout=30).stdout
            if got == body:
                break
            time.sleep(2)
        logs = sh("podman", "logs", name, env=arch_image["env"], check=False)
        assert got == body, logs.stdout[-3000:] + logs.stderr[-3000:]
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "3", name], capture_output=True, env=arch_image["env"], timeout=60)
