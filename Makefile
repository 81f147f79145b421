# Recovery station.  Two commands on a fresh Debian 12 machine:
#   make run    - install into .venv and run the station (supervisord, foreground)
#   make test   - install test tools and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# Debian packages the tests drive as real peers (installed only when missing, as root).
TEST_DEBS := busybox udhcpc isc-dhcp-client dhcpcd-base curl tftp-hpa atftp dnsutils iproute2 iptables \
             dnsmasq-base kea-admin procps psmisc chromium
TEST_TOOLS := busybox udhcpc dhclient dhcpcd curl tftp atftp dig ip iptables dnsmasq perfdhcp pgrep killall chromium

.PHONY: run test venv test-tools bench fuzz clean check-config

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/appliance run

check-config: $(STAMP)
	$(VENV)/bin/appliance check-config

test-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing test tools (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBS) >/dev/null; \
	  else echo "not root: tests needing$$missing will be skipped"; fi; \
	fi

test: $(STAMP) test-tools
	$(PY) -m pytest -q

FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(PY) -m fuzz.run $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) state .pytest_cache
