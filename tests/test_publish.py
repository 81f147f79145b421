"""`make publish REGISTRY=host:port/name`: the multi-arch image and its manifest list in a registry, and the
release workflow that runs it on tags.

The registry is Debian's `docker-registry` (the reference distribution server), started by this test on a
loopback port with its storage in a temporary directory.  To keep the CPU low the lists hold two platforms,
amd64 and arm64 (under qemu), whose layers the image tests already built: once through the Makefile's
podman build, once through PUBLISH_FROM (images already built).  Then the registry is read as a pulling
client reads it: the tag is a manifest list naming both architectures, each entry's config says its
architecture and keeps the HEALTHCHECK, and `podman pull --platform linux/arm64` (what a Pi does) gets
the arm64 image.  The Docker path (buildx --push) needs a Docker engine; the release workflow runs it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.test_image import BASE, CA, COMPOSE, IMAGE, REPO, ensure_base, ensure_engine, make_image, podman_env, sh
from tests.test_image_arch import build_arch_image, ensure_emulation, host_arch
from tests.test_image_arch import ensure_base as ensure_arch_base

LIST_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
IMAGE_TYPES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
NAME = "recovery-station"
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def test_publish_without_a_registry_says_how_and_exits_2():
    out = subprocess.run(["make", "-s", "-C", str(REPO), "publish"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "usage: make publish REGISTRY=host[:port]/name" in out.stdout


def test_release_workflow_publishes_on_version_tags():
    yaml = pytest.importorskip("yaml")                  # PyYAML: podman-compose's, in the test extra
    doc = yaml.safe_load(WORKFLOW.read_text())
    trigger = doc.get("on") or doc.get(True)            # YAML 1.1 reads a bare `on` key as true
    assert trigger["push"]["tags"] == ["v*"] and "branches" not in trigger["push"], trigger
    steps = [step for job in doc["jobs"].values() for step in job["steps"]]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "make publish REGISTRY=" in runs and 'TAG="$GITHUB_REF_NAME"' in runs, runs
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    publish = next(i for i, step in enumerate(steps) if "make publish" in step.get("run", ""))
    # qemu, then buildx, then the publish: `make publish` builds arm64 and arm/v7 on an amd64 runner
    assert uses.index("docker/setup-qemu-action") < uses.index("docker/setup-buildx-action") < publish, uses
    assert uses.index("docker/login-action") < publish, uses
    assert any(job.get("permissions", doc.get("permissions", {})).get("packages") == "write"
               for job in doc["jobs"].values())


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, accept: tuple[str, ...] = ()) -> tuple[str, bytes]:
    req = urllib.request.Request(url, headers={"Accept": ", ".join(accept)} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers.get("Content-Type", ""), resp.read()


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on 127.0.0.1:<free port>, storage under tmp_path; stopped (by its PID) after."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry not installed (make test installs it)")
    port = free_tcp_port()
    conf = tmp_path / "registry.yml"
    conf.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'store'}\n"
                    f"http:\n  addr: 127.0.0.1:{port}\n")
    log = (tmp_path / "registry.log").open("w")
    proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                get(f"http://127.0.0.1:{port}/v2/")
                break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None, (tmp_path / "registry.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail("docker-registry did not answer /v2/ in 30 s: " + (tmp_path / "registry.log").read_text())
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def published_platforms(registry: str, tag: str) -> list[str]:
    """Read REGISTRY's NAME:tag as a pulling client does: it must be a manifest list; each entry's config must be
    of the architecture the list says and keep the HEALTHCHECK.  Returns the list's architectures, sorted."""
    base = f"http://{registry}/v2/{NAME}"
    ctype, body = get(f"{base}/manifests/{tag}", LIST_TYPES + IMAGE_TYPES)
    doc = json.loads(body)
    assert ctype in LIST_TYPES and doc.get("mediaType") in LIST_TYPES, (ctype, doc)
    arches = {m["platform"]["architecture"]: m["digest"] for m in doc["manifests"]}
    for arch, digest in arches.items():
        _, body = get(f"{base}/manifests/{digest}", IMAGE_TYPES)
        _, body = get(f"{base}/blobs/{json.loads(body)['config']['digest']}")
        config = json.loads(body)
        assert config["architecture"] == arch, config.get("architecture")
        assert config["config"].get("Healthcheck", {}).get("Test") == \
            ["CMD", "python", "-m", "appliance.api.healthcheck"], f"{arch}: the pushed image lost its HEALTHCHECK"
    return sorted(arches)


def make_publish(env: dict[str, str], registry: str, tag: str, *args: str) -> str:
    started = time.monotonic()
    out = subprocess.run(["make", "-C", str(REPO), "publish", "ENGINE=podman", f"REGISTRY={registry}/{NAME}", f"TAG={tag}",
                          "PUSH_FLAGS=--tls-verify=false", *args], capture_output=True, text=True, timeout=1800, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"make publish TAG={tag} in {time.monotonic() - started:.0f} s")
    return out.stdout


@pytest.fixture
def podman(tmp_path):
    """podman's environment here, and the local list refs a test made, removed after it."""
    ensure_engine()
    ensure_base()
    env = podman_env(tmp_path)
    made: list[str] = []
    yield env, made
    for ref in made:
        subprocess.run(["podman", "manifest", "rm", ref], capture_output=True, env=env, timeout=120)
        subprocess.run(["podman", "rmi", "-f", ref], capture_output=True, env=env, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, binfmt)")
def test_publish_builds_each_platform_and_pushes_one_manifest_list(registry, podman):
    """The Makefile's own podman path (one build per platform into a manifest list, then `manifest push --all`),
    for amd64 and arm64.  The registry-less base is a local manifest list of the two imported Debian bases,
    passed as BASE; the layers the image tests built are reused, so the two builds take about a minute."""
    env, made = podman
    arm_base = ensure_arch_base("arm64", "arm64", "", env)
    ensure_emulation("qemu-aarch64")
    bases = f"localhost/debian-bookworm-minbase:pub{os.getpid()}"
    made.append(bases)
    sh("podman", "manifest", "create", bases, env=env)
    for img in (BASE, arm_base):
        sh("podman", "manifest", "add", bases, f"containers-storage:{img}", env=env)
    tag = f"b{os.getpid()}"
    made.append(f"{registry}/{NAME}:{tag}")
    flags = f"BUILD_FLAGS=--build-arg BASE={bases} --pull=never --isolation=chroot --network=host"
    out = make_publish(env, registry, tag, "PLATFORMS=linux/amd64,linux/arm64", flags,
                       *([f"CA={CA}"] if CA.exists() else []))
    said = [line for line in out.splitlines() if line.startswith(f"published {registry}/{NAME}:{tag}: ")]
    assert said and sorted(said[0].split(": ", 1)[1].split()) == ["linux/amd64", "linux/arm64"], out[-2000:]
    assert published_platforms(registry, tag) == ["amd64", "arm64"]


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, binfmt)")
def test_publish_from_built_images_and_a_pi_pulls_its_own(registry, podman, tmp_path):
    """PUBLISH_FROM: images already built (the image tests' amd64 and arm64, cached) under one list; then
    `podman pull --platform linux/arm64`, what a Pi's engine does with the tag, gets the arm64 image, and
    compose.yaml as shipped, with STATION_IMAGE naming the tag (README "Container"), pulls this host's."""
    env, made = podman
    make_image(env)
    arm64 = build_arch_image("linux/arm64", env)["image"]
    tag = f"f{os.getpid()}"
    ref = f"{registry}/{NAME}:{tag}"
    made.append(ref)
    out = make_publish(env, registry, tag, f"PUBLISH_FROM={IMAGE} {arm64}")
    assert f"published {ref}: " in out and "linux/amd64" in out and "linux/arm64" in out, out[-2000:]
    assert published_platforms(registry, tag) == ["amd64", "arm64"]
    sh("podman", "manifest", "rm", ref, env=env)                # the local list, so the pull reads the registry's
    pulled = sh("podman", "pull", "--tls-verify=false", "--platform", "linux/arm64", ref, env=env, timeout=600,
                check=False)
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert json.loads(sh("podman", "image", "inspect", ref, env=env).stdout)[0]["Architecture"] == "arm64"
    sh("podman", "rmi", "-f", ref, env=env)

    if not os.path.exists(COMPOSE):
        return
    proj = tmp_path / "bench"
    proj.mkdir()
    shutil.copy(REPO / "compose.yaml", proj / "compose.yaml")
    (tmp_path / "registries.conf").write_text(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n')
    cenv = dict(env, STATION_IMAGE=ref, CONTAINERS_REGISTRIES_CONF=str(tmp_path / "registries.conf"))
    pulled = sh(COMPOSE, "-p", f"pull{os.getpid()}", "pull", "station", env=cenv, cwd=proj, timeout=600, check=False)
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    got = json.loads(sh("podman", "image", "inspect", ref, env=env).stdout)[0]["Architecture"]
    assert got == host_arch(env), f"compose pulled {got} on a {host_arch(env)} host"
