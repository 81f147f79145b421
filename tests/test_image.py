"""The container image, built with podman and run inside a test network namespace.

Follows /work/shared/reference/container-testing.md: podman with chroot
isolation, base image imported from a cached local debootstrap when no
registry image exists, runc with a containers.conf without default ulimits.
The image is built by `make image ENGINE=podman`, which must build in Docker's
format so the image keeps its HEALTHCHECK (checked in the image config).
A phone namespace on the other end of a veth gets a lease, its files and sees
/api/v1/health green; a phone announcing its load over CDP is told its next step
by the image's own lldpd (built from Debian's source in the Dockerfile).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.firmware import synth

REPO = Path(__file__).resolve().parent.parent
CACHE = Path("/var/cache/recovery-station")
ROOTFS_TAR = CACHE / "bookworm-minbase-v2.tar"  # bump when the recipe below changes
BASE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/recovery-station:test"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
STONE45, TARGET45 = "SCCP45.8-5-2S", "SCCP45.9-4-2SR3-3S"     # 7965: the key-change stone and a 9.x target
HAVE_TFTP = importlib.util.find_spec("appliance.tftp.service") is not None

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, network namespaces)")]


def sh(*cmd: str, timeout: float = 600, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=check, **kw)


def ensure_engine() -> None:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if missing:
        try:
            sh("apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap", timeout=600,
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"no container engine can run here: installing podman failed: {exc}")
    if sh("podman", "info", check=False, timeout=60).returncode != 0:
        pytest.skip("no container engine can run here: `podman info` fails")


def debootstrap_tar(tar: Path, deb_arch: str | None = None, timeout: float = 900) -> None:
    """A Debian 12 minbase root filesystem as a tar at `tar` (kept: the next run imports it in seconds)."""
    if tar.exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / f"rootfs-{deb_arch or 'host'}-{os.getpid()}"
    sh("debootstrap", *([f"--arch={deb_arch}"] if deb_arch else []), "--variant=minbase", "bookworm", str(rootfs),
       timeout=timeout)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        for item in (rootfs / junk).glob("*"):
            if item.is_file():
                item.unlink()
            elif item.is_dir() and item.name != "partial":
                shutil.rmtree(item, ignore_errors=True)
    partial = tar.with_suffix(".partial")
    sh("tar", "-C", str(rootfs), "-cf", str(partial), ".", timeout=600)
    partial.rename(tar)
    shutil.rmtree(rootfs, ignore_errors=True)


def ensure_base() -> None:
    if sh("podman", "image", "exists", BASE, check=False).returncode == 0:
        return
    debootstrap_tar(ROOTFS_TAR)
    sh("podman", "import", str(ROOTFS_TAR), BASE, timeout=300)


def podman_env(tmp: Path) -> dict[str, str]:
    """The environment podman runs in here: a containers.conf without default ulimits (container-testing.md, step 5)."""
    conf = tmp / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return dict(os.environ, CONTAINERS_CONF=str(conf))


def make_image(env: dict[str, str], image: str = IMAGE) -> float:
    """`make image ENGINE=podman` as the README says (the Makefile adds --format docker itself), with the flags an
    engine-less machine needs; podman's layer cache makes a rebuild of an unchanged tree take seconds.
    Returns the wall time in seconds."""
    cmd = ["make", "-C", str(REPO), "image", "ENGINE=podman", f"IMAGE={image}",
           "BUILD_FLAGS=--pull=never --isolation=chroot --network=host"]
    if CA.exists():
        cmd.append(f"CA={CA}")
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return time.monotonic() - started


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> dict[str, str]:
    ensure_engine()
    ensure_base()
    env = podman_env(tmp_path_factory.mktemp("podman"))
    print(f"amd64 image: make image in {make_image(env):.0f} s")
    return env


def test_podman_build_keeps_the_healthcheck(image):
    """OCI images have no HEALTHCHECK and podman drops it with a mere warning; `make image ENGINE=podman` builds in
    Docker's format, so the image config keeps it."""
    doc = json.loads(sh("podman", "image", "inspect", IMAGE, env=image).stdout)[0]
    assert doc.get("ManifestType") == "application/vnd.docker.distribution.manifest.v2+json", doc.get("ManifestType")
    check = doc.get("Healthcheck") or {}
    assert check.get("Test") == ["CMD", "python", "-m", "appliance.api.healthcheck"], check
    assert (check.get("Interval"), check.get("Retries")) == (30 * 10**9, 3), check


def test_image_is_small_and_has_the_cli(image):
    size = json.loads(sh("podman", "image", "inspect", IMAGE, env=image).stdout)[0]["Size"]
    base = json.loads(sh("podman", "image", "inspect", BASE, env=image).stdout)[0]["Size"]
    assert size - base < 100 * 1024 * 1024, f"the station adds {(size - base) / 1e6:.0f} MB to its base"
    out = sh("podman", "--runtime", "runc", "run", "--rm", "--network=none", IMAGE, "appliance", "--version",
             env=image, timeout=120)
    assert out.stdout.strip().startswith("appliance ")


def test_missing_capability_is_named(image):
    out = sh("podman", "--runtime", "runc", "run", "--rm", "--network=host", "--cap-drop=NET_RAW",
             "-e", "APPLIANCE_NETWORK_INTERFACE=lo", IMAGE, env=image, timeout=120, check=False)
    assert out.returncode == 4, out.stdout + out.stderr
    assert "CAP_NET_RAW" in out.stderr


def station_and_phone_namespaces(st_ns: str, ph_ns: str, st_if: str, ph_if: str, station_cidr: str) -> None:
    """Two namespaces joined by a veth pair: the station's end has `station_cidr`, the phone's none."""
    sh("ip", "netns", "add", st_ns)
    sh("ip", "netns", "add", ph_ns)
    sh("ip", "link", "add", st_if, "type", "veth", "peer", "name", ph_if)
    sh("ip", "link", "set", st_if, "netns", st_ns)
    sh("ip", "link", "set", ph_if, "netns", ph_ns)
    sh("ip", "-n", st_ns, "addr", "add", station_cidr, "dev", st_if)
    for ns, dev in ((st_ns, st_if), (ph_ns, ph_if), (st_ns, "lo"), (ph_ns, "lo")):
        sh("ip", "-n", ns, "link", "set", dev, "up")


@pytest.mark.skipif(not HAVE_TFTP, reason="appliance.tftp.service not landed yet: the station cannot start whole")
def test_phone_in_namespace_gets_lease_files_and_green_health(image, tmp_path):
    tag = f"{os.getpid() % 100000}"
    st_ns, ph_ns = f"imgst{tag}", f"imgph{tag}"
    st_if, ph_if = f"vis{tag}", f"vip{tag}"
    firmware = tmp_path / "firmware"
    firmware.mkdir()
    for load in (STONE45, TARGET45):
        synth.write_load(firmware, load, size_bytes=20000, components=2)
    name = f"station-test-{tag}"
    try:
        station_and_phone_namespaces(st_ns, ph_ns, st_if, ph_if, "10.213.7.1/24")
        run = sh("podman", "--runtime", "runc", "run", "-d", "--name", name, "--network", f"ns:/run/netns/{st_ns}",
                 "--cap-add=NET_BIND_SERVICE,NET_RAW,NET_ADMIN", "-e", f"APPLIANCE_NETWORK_INTERFACE={st_if}",
                 "-e", "APPLIANCE_DHCP_GUARD=off", "-v", f"{firmware}:/firmware:ro", IMAGE, env=image, timeout=120)
        assert run.returncode == 0
        deadline = time.time() + 90
        code = ""
        while time.time() < deadline:
            code = sh("ip", "netns", "exec", st_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      "--max-time", "3", "http://10.213.7.1:8080/api/v1/health", check=False).stdout
            if code == "200":
                break
            time.sleep(1)
        logs = sh("podman", "logs", name, env=image, check=False)
        assert code == "200", logs.stdout[-4000:] + logs.stderr[-4000:]
        lease = sh("ip", "netns", "exec", ph_ns, "busybox", "udhcpc", "-i", ph_if, "-n", "-q", "-t", "5",
                   "-s", "/bin/true", timeout=60, check=False)
        out = lease.stdout + lease.stderr
        assert "lease of 10.213.7." in out, out
        leased = out.split("lease of ", 1)[1].split()[0]
        sh("ip", "-n", ph_ns, "addr", "add", f"{leased}/24", "dev", ph_if)
        code = sh("ip", "netns", "exec", ph_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                  "--max-time", "5", "http://10.213.7.1:8080/api/v1/health", check=False).stdout
        assert code == "200", "the phone on the leased address cannot see a green /api/v1/health"
        got = sh("ip", "netns", "exec", ph_ns, "curl", "-s", "--max-time", "10",
                 "tftp://10.213.7.1/XMLDefault.cnf.xml", check=False).stdout
        assert "<" in got
        dig = sh("ip", "netns", "exec", ph_ns, "dig", "@10.213.7.1", "+short", "+time=2", "recovery", check=False)
        assert dig.stdout.split() == ["10.213.7.1"]
        health = sh("podman", "healthcheck", "run", name, env=image, check=False, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
        phone_announces_its_load_over_cdp(ph_ns, ph_if, st_ns, "10.213.7.1", name, image)
    finally:
        subprocess.run(["podman", "rm", "-f", "-v", "-t", "5", name], capture_output=True, env=image, timeout=60)
        for ns in (st_ns, ph_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def phone_announces_its_load_over_cdp(ph_ns: str, ph_if: str, st_ns: str, station: str, name: str, image: dict) -> None:
    """The image's lldpd (under supervisor, receive-only) hears a 7965's CDP saying it runs the stone: once the
    phone leases, the API shows that load with source cdp before the phone fetched anything, and its first
    config names the target, not the stone."""
    mac = "001f9eab5a01"
    cdp = [{"kind": "cdp", "src": mac, "device": f"SEP{mac.upper()}", "version": STONE45,
            "platform": "Cisco IP Phone 7965"}]

    def phone(*args: str) -> dict:
        r = sh("ip", "netns", "exec", ph_ns, sys.executable, "-m", "tests.lldp_frames", *args, cwd=str(REPO),
               timeout=90, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def api(path: str) -> dict:
        out = sh("ip", "netns", "exec", st_ns, "curl", "-s", "--max-time", "3", f"http://{station}:8080{path}",
                 check=False).stdout
        return json.loads(out) if out.startswith("{") else {}

    def neighbours() -> dict:
        tftp = [s for s in api("/api/v1/health").get("services", []) if s["name"] == "tftp"]
        return (tftp[0]["info"].get("neighbours") or {}) if tftp else {}

    def logs() -> str:
        out = sh("podman", "logs", name, env=image, check=False)
        return (out.stdout + out.stderr)[-3000:]

    deadline = time.time() + 60
    while not neighbours().get("ok") and time.time() < deadline:
        time.sleep(1)
    assert neighbours().get("ok"), (neighbours(), logs())
    deadline = time.time() + 30
    while neighbours().get("claims", 0) < 1 and time.time() < deadline:
        phone("send", ph_if, json.dumps(cdp))                # CDP every few seconds, as a phone at link-up
        time.sleep(2)
    assert neighbours().get("claims", 0) >= 1, neighbours()
    lease = phone("lease", ph_if, mac, "CP-7965G")
    assert lease.get("ip"), lease
    deadline, row = time.time() + 20, {}
    while not row.get("current_load") and time.time() < deadline:
        row = api(f"/api/v1/phones/{mac}")
        time.sleep(0.5)
    assert (row.get("current_load"), row.get("load_source"), row.get("transfers")) == (STONE45, "cdp", []), row
    first = phone("config", station, lease["ip"], mac, ph_if)
    assert first[f"SEP{mac.upper()}.cnf.xml"]["load"] == TARGET45, \
        json.dumps([first, api("/api/v1/firmware"), api(f"/api/v1/phones/{mac}"), logs()], indent=1)


COMPOSE = str(Path(sys.executable).with_name("podman-compose"))


@pytest.mark.skipif(not Path(COMPOSE).exists(), reason="podman-compose not installed (the test extra has it)")
def test_compose_file_starts_the_station_and_serves_a_phone(image, tmp_path):
    """compose.yaml as shipped (caps, env, volumes, init, restart policy), with two changes a test
    needs, in an override file: the image this module built, and host networking whose host is a
    namespace this test made (podman cannot run inside `ip netns exec`: it remounts /sys and runc
    then finds no cgroups).

    A newcomer's path: the station comes up with an empty ./firmware and says so (red health naming
    the firmware folder, the container's healthcheck failing); once loads are copied into ./firmware
    on the host it turns green by itself, and then a phone leases."""
    tag = f"{os.getpid() % 100000}"
    st_ns, ph_ns, st_if, ph_if = f"cmpst{tag}", f"cmpph{tag}", f"vcs{tag}", f"vcp{tag}"
    proj = tmp_path / "station"
    proj.mkdir()
    shutil.copy(REPO / "compose.yaml", proj / "compose.yaml")
    shutil.copytree(REPO / "config", proj / "config")
    (proj / "firmware").mkdir()
    (proj / "override.yaml").write_text(f'services:\n  station:\n    image: {IMAGE}\n'
                                        f'    network_mode: "ns:/run/netns/{st_ns}"\n')
    env = dict(image, STATION_INTERFACE=st_if, STATION_API_TOKEN="t0ken")
    compose = [COMPOSE, "-p", f"station{tag}", "-f", "compose.yaml", "-f", "override.yaml"]

    def health() -> dict:
        out = sh("ip", "netns", "exec", st_ns, "curl", "-s", "--max-time", "3",
                 "http://10.214.7.1:8080/api/v1/health", check=False).stdout
        return json.loads(out) if out.startswith("{") else {}

    def wait_health(pred, seconds: float) -> dict:
        deadline, doc = time.time() + seconds, {}
        while time.time() < deadline:
            doc = health()
            if pred(doc):
                return doc
            time.sleep(1)
        logs = sh(*compose, "logs", env=env, cwd=proj, check=False, timeout=60)
        raise AssertionError(json.dumps(doc)[:2000] + logs.stdout[-4000:] + logs.stderr[-4000:])

    def healthcheck() -> subprocess.CompletedProcess:
        names = sh("podman", "ps", "--format", "{{.Names}}", "--filter", f"name=station{tag}", env=env).stdout.split()
        assert len(names) == 1, names
        return sh("podman", "healthcheck", "run", names[0], env=env, check=False, timeout=60)

    try:
        station_and_phone_namespaces(st_ns, ph_ns, st_if, ph_if, "10.214.7.1/24")
        up = sh(*compose, "up", "-d", "--no-build", env=env, cwd=proj, timeout=180, check=False)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        doc = wait_health(lambda d: d.get("ok") is False and any(p.get("code") == "no-firmware"
                                                                 for p in d.get("problems", [])), 90)
        red = [p for p in doc["problems"] if p["code"] == "no-firmware"][0]
        # the advice names the folder on the host the tech copies into (compose.yaml says which), not /firmware
        assert red["severity"] == "red" and "./firmware beside compose.yaml" in red["do"], red
        check = healthcheck()
        assert check.returncode != 0, check.stdout + check.stderr
        for load in (STONE45, TARGET45):       # a library the station can recover a 7965 from
            synth.write_load(proj / "firmware", load, size_bytes=20000, components=2)
        doc = wait_health(lambda d: d.get("ok") is True, 90)
        assert {s["name"] for s in doc["services"] if s["status"] == "up"} >= {"dhcp", "tftp", "dns", "api"}, doc
        check = healthcheck()
        assert check.returncode == 0, check.stdout + check.stderr
        lease = sh("ip", "netns", "exec", ph_ns, "busybox", "udhcpc", "-i", ph_if, "-n", "-q", "-t", "5",
                   "-s", "/bin/true", timeout=60, check=False)
        assert "lease of 10.214.7." in lease.stdout + lease.stderr, lease.stdout + lease.stderr
        unauthorised = sh("ip", "netns", "exec", st_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "-X", "POST", "http://10.214.7.1:8080/api/v1/firmware/rescan", check=False).stdout
        authorised = sh("ip", "netns", "exec", st_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "-X", "POST", "-H", "Authorization: Bearer t0ken",
                        "http://10.214.7.1:8080/api/v1/firmware/rescan", check=False).stdout
        assert (unauthorised, authorised[:1]) == ("401", "2"), "STATION_API_TOKEN reaches [api] token"
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "5"], capture_output=True, env=env, cwd=proj, timeout=120)
        for ns in (st_ns, ph_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
