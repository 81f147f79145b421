"""`make publish REGISTRY=host:port/name`: the multi-arch image and its manifest list in a registry, and the
release workflow that runs it on tags.

The registry is Debian's `docker-registry` (the reference distribution server), started by this test on a
loopback port with its storage in a temporary directory.  To keep the CPU low the list is made of the images
the image tests build (amd64, and arm64 under qemu; podman's layer cache makes both rebuilds take seconds
after those tests) through the Makefile's PUBLISH_FROM, not a fresh build for three platforms.  Then the
registry is read as a pulling client reads it: the tag is a manifest list naming both architectures, each
entry's config says its architecture and keeps the HEALTHCHECK, and `podman pull --platform linux/arm64`
(what a Pi does) gets the arm64 image.
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

from tests.test_image import IMAGE, REPO, ensure_base, ensure_engine, make_image, podman_env, sh
from tests.test_image_arch import build_arch_image

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


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, binfmt)")
def test_publish_pushes_each_architecture_under_one_manifest_list(registry, tmp_path):
    ensure_engine()
    ensure_base()
    env = podman_env(tmp_path)
    started = time.monotonic()
    make_image(env)
    arm64 = build_arch_image("linux/arm64", env)["image"]
    print(f"amd64 + arm64 images (cached by the image tests when they ran first) in {time.monotonic() - started:.0f} s")
    ref = f"{registry}/{NAME}:t{os.getpid()}"
    try:
        started = time.monotonic()
        out = subprocess.run(["make", "-C", str(REPO), "publish", "ENGINE=podman", f"REGISTRY={registry}/{NAME}",
                              f"TAG=t{os.getpid()}", f"PUBLISH_FROM={IMAGE} {arm64}", "PUSH_FLAGS=--tls-verify=false"],
                             capture_output=True, text=True, timeout=900, env=env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        print(f"make publish (2 architectures) in {time.monotonic() - started:.0f} s")
        assert "linux/amd64" in out.stdout and "linux/arm64" in out.stdout, out.stdout

        base = f"http://{registry}/v2/{NAME}"
        ctype, body = get(f"{base}/manifests/t{os.getpid()}", LIST_TYPES + IMAGE_TYPES)
        doc = json.loads(body)
        assert ctype in LIST_TYPES and doc.get("mediaType") in LIST_TYPES, (ctype, doc)
        arches = {m["platform"]["architecture"]: m["digest"] for m in doc["manifests"]}
        assert sorted(arches) == ["amd64", "arm64"], doc
        for arch, digest in arches.items():
            _, body = get(f"{base}/manifests/{digest}", IMAGE_TYPES)
            config_digest = json.loads(body)["config"]["digest"]
            _, body = get(f"{base}/blobs/{config_digest}")
            config = json.loads(body)
            assert config["architecture"] == arch, config.get("architecture")
            assert config["config"].get("Healthcheck", {}).get("Test") == \
                ["CMD", "python", "-m", "appliance.api.healthcheck"], f"{arch}: the pushed image lost its HEALTHCHECK"

        # what a Pi's engine does with the tag: pick its own architecture from the list
        sh("podman", "manifest", "rm", ref, env=env)            # the local list, so the pull reads the registry's
        pulled = sh("podman", "pull", "--tls-verify=false", "--platform", "linux/arm64", ref, env=env, timeout=600,
                    check=False)
        assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
        got = json.loads(sh("podman", "image", "inspect", ref, env=env).stdout)[0]["Architecture"]
        assert got == "arm64"
    finally:
        subprocess.run(["podman", "manifest", "rm", ref], capture_output=True, env=env, timeout=120)
        subprocess.run(["podman", "rmi", "-f", ref], capture_output=True, env=env, timeout=120)

