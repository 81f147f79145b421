# Recovery station.  Two commands on a fresh Debian 12 machine:
#   make run    - install into .venv and run the station (supervisord, foreground)
#   make test   - install test tools and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD_INPUTS := pyproject.toml setup.py appliance/tftp/_pump.c
STAMP := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | sha1sum | cut -c1-12)

# Debian packages the tests drive as real peers (installed only when missing, as root).
TEST_DEBS := busybox udhcpc isc-dhcp-client dhcpcd-base curl tftp-hpa atftp dnsutils iproute2 iptables \
             dnsmasq-base kea-admin procps psmisc chromium lldpd tftpd-hpa prometheus docker-registry
TEST_TOOLS := busybox udhcpc dhclient dhcpcd curl tftp atftp dig ip iptables dnsmasq perfdhcp pgrep killall chromium lldpd in.tftpd prometheus promtool docker-registry

.PHONY: run test venv test-tools lint bench fuzz reliability clean check-config demo
.PHONY: image buildx kit publish

$(STAMP): $(BUILD_INPUTS)
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; }
	@command -v cc >/dev/null 2>&1 && $(PYTHON) -c 'import os, sysconfig; raise SystemExit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev; } || \
	  echo "no C compiler or Python headers: the TFTP pump (appliance/tftp/_pump.c) is not built, blocks go through Python"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/appliance run

check-config: $(STAMP)
	$(VENV)/bin/appliance check-config

# The station, its dashboard (URL printed) and model phones in temporary namespaces (root).
# make demo DEMO_ARGS="--port 8081 --keep-open"
DEMO_ARGS ?=
demo: $(STAMP)
	$(VENV)/bin/appliance demo $(DEMO_ARGS)

test-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing test tools (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBS) >/dev/null; \
	  else echo "not root: tests needing$$missing will be skipped"; fi; \
	fi

# ruff on the whole tree; mypy on the pure (sans-I/O) modules listed in pyproject.toml [tool.mypy] files.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: $(STAMP) test-tools lint
	$(PY) -m pytest -q

FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(PY) -m fuzz.run $(FUZZ_SECONDS)

# Reliability tests (root; own namespaces) + each fuzzer RELIABILITY_FUZZ_SECONDS -> docs/reliability.md.
RELIABILITY_FUZZ_SECONDS ?= 10
reliability: $(STAMP) test-tools
	$(PY) scripts/reliability_report.py $(RELIABILITY_FUZZ_SECONDS)

# Station vs dnsmasq, tftpd-hpa and Kea side by side (root; own namespaces; ~15-25 min) -> docs/benchmarks.{md,json}.
# make bench BENCH_ARGS="--quick" is the smoke run (build/bench-quick/); --runs N, --only tftp,dhcp,fleet,footprint.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# Container image (README "Container").  ENGINE=podman works too; CA=/path/bundle.crt hands a CA bundle to pip
# inside the build (behind a TLS-inspecting proxy pip otherwise fails with SSLCertVerificationError).
ENGINE ?= docker
IMAGE ?= recovery-station:latest
PLATFORMS ?= linux/amd64,linux/arm64,linux/arm/v7
CA ?=
comma := ,
CA_SECRET = $(if $(CA),--secret id=ca$(comma)src=$(CA))
# podman writes OCI images by default, and the OCI image config has no HEALTHCHECK: podman drops it with only
# a warning.  Docker's format keeps it (tests/test_image.py inspects the built image for it).
# podman 4.3 leaves BUILDPLATFORM (the Dockerfile's native stage, where the C parts compile) undefined.
IS_PODMAN = $(filter podman,$(notdir $(firstword $(ENGINE))))
FORMAT_FLAG = $(if $(IS_PODMAN),--format docker)
PODMAN_BUILD_FLAGS = $(if $(IS_PODMAN),--format docker --build-arg BUILDPLATFORM=linux/$(shell $(ENGINE) info --format '{{.Host.Arch}}' 2>/dev/null))

# BUILD_FLAGS: extra build options (podman without an engine: see ../shared/reference/container-testing.md).
BUILD_FLAGS ?=
image:
	DOCKER_BUILDKIT=1 $(ENGINE) build $(PODMAN_BUILD_FLAGS) $(BUILD_FLAGS) $(CA_SECRET) -t $(IMAGE) .

buildx:
	docker buildx build --platform $(PLATFORMS) $(CA_SECRET) -t $(IMAGE) $(BUILDX_FLAGS) .

# make kit FIRMWARE=/path/to/firmware [KIT=station-kit.tar]: the image with that firmware baked in
# plus a manifest of checksums, saved as one archive (load it with `docker load -i`), under the name compose.yaml's
# `kit` service runs: `docker compose --profile kit up kit` (that service mounts nothing over /firmware).
# localhost/: podman saves a short name as localhost/NAME, so a kit loads under the same name in docker and podman.
KIT ?= build/station-kit.tar
KIT_IMAGE ?= localhost/recovery-station:kit
kit: $(STAMP) image
	@test -d "$(FIRMWARE)" || { echo "usage: make kit FIRMWARE=/path/to/firmware"; exit 2; }
	rm -rf build/kit && mkdir -p build/kit && cp -a "$(FIRMWARE)" build/kit/firmware
	$(PY) -m appliance firmware manifest --root build/kit/firmware > build/kit/manifest.json 2>/dev/null || { rm -f build/kit/manifest.json; \
	  (cd build/kit/firmware && find . -type f -print0 | sort -z | xargs -0 sha256sum) > build/kit/manifest.sha256; }
	printf 'FROM %s\nCOPY firmware /firmware\nCOPY manifest.* /firmware-manifest/\nENV APPLIANCE_TFTP_ROOT=/firmware\n%s\n' \
	  "$(IMAGE)" "$$(test -f build/kit/manifest.json && echo 'RUN appliance firmware verify --manifest /firmware-manifest/manifest.json')" \
	  > build/kit/Dockerfile
	$(ENGINE) build $(FORMAT_FLAG) $(BUILD_FLAGS) -t $(KIT_IMAGE) build/kit
	$(ENGINE) save -o $(KIT) $(KIT_IMAGE)
	@echo "kit: $(KIT) ($$(du -h $(KIT) | cut -f1)); on the bench: docker load -i $(notdir $(KIT)), then" \
	  "STATION_INTERFACE=eth0 docker compose --profile kit up -d kit"

# make publish REGISTRY=host[:port]/name [TAG=latest]: the image for every platform in PLATFORMS pushed to
# REGISTRY:TAG under one manifest list, so a Pi pulls its own architecture (README "Container").
# docker: buildx with --push (a builder that can emulate the other platforms: docker/setup-qemu-action in CI).
# podman: one build per platform into a local manifest list, then `manifest push --all` in Docker's format
# (the HEALTHCHECK again).  PUBLISH_FROM="img1 img2": images already built (one per platform) go into the
# list instead of a new build.  PUSH_FLAGS: e.g. --tls-verify=false for a registry on plain HTTP (podman).
REGISTRY ?=
TAG ?= latest
PUBLISH_FROM ?=
PUSH_FLAGS ?=
PUBLISH_REF = $(REGISTRY):$(TAG)
publish:
	@test -n "$(REGISTRY)" || { echo "usage: make publish REGISTRY=host[:port]/name [TAG=v1.0] [ENGINE=podman]"; exit 2; }
ifeq ($(IS_PODMAN),)
	docker buildx build --platform $(PLATFORMS) $(CA_SECRET) $(BUILDX_FLAGS) --push -t $(PUBLISH_REF) .
else
	$(ENGINE) manifest rm $(PUBLISH_REF) >/dev/null 2>&1 || true   # a list left by an earlier publish
	$(ENGINE) manifest create $(PUBLISH_REF)
	$(if $(PUBLISH_FROM),for img in $(PUBLISH_FROM); do $(ENGINE) manifest add $(PUBLISH_REF) containers-storage:$$img || exit 1; done,\
	  $(ENGINE) build --platform $(PLATFORMS) --manifest $(PUBLISH_REF) $(PODMAN_BUILD_FLAGS) $(BUILD_FLAGS) $(CA_SECRET) .)
	$(ENGINE) manifest push --all --format v2s2 $(PUSH_FLAGS) $(PUBLISH_REF) docker://$(PUBLISH_REF)
	@echo "published $(PUBLISH_REF): $$($(ENGINE) manifest inspect $(PUBLISH_REF) | $(PYTHON) -c \
	  'import json,sys; print(" ".join("/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")))) for m in json.load(sys.stdin)["manifests"]))')"
endif

clean:
	rm -rf $(VENV) state .pytest_cache
