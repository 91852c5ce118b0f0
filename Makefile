# voicebot: two commands do everything.
#   make run    set up the virtual environment with the embedded models and serve http://127.0.0.1:8000
#   make test   set up the same plus test tools and Debian's chromium, then lint, type-check and test
# Works on a fresh Debian machine with Python 3.11+ (as root, or with sudo for the system packages).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
PYTEST_ARGS ?=

.PHONY: run test test-fast lint check bench clean system-packages chromium test-tools

run: $(VENV)/.installed
	$(BIN)/voicebot serve

test: $(VENV)/.installed-test chromium test-tools lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tier: no model loads, no browser, no soaks (fake stages, scripted clocks, synthetic PCM),
# on 4 workers: its tests mostly wait on sockets, not on the CPU.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 4 -m "not models and not browser and not slow" -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check voicebot tests
	$(BIN)/ruff format --check voicebot tests
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

bench: $(VENV)/.installed
	$(BIN)/voicebot bench --utterances 6

# System packages a fresh Debian lacks: venv support, and a compiler for llama-cpp-python
# (built from source once; pip caches the wheel, about 6 minutes on 2 cores).
system-packages:
	@missing=""; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "voicebot needs Python 3.11 or newer"; exit 1; }; \
	command -v g++ >/dev/null || missing="$$missing build-essential"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	[ -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(APT) update -qq && $(APT) install -y -qq $$missing; \
	fi

chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(APT) update -qq && $(APT) install -y -qq chromium; }

# What the other tests use from Debian: espeak-ng and sox make test voices and room noise (hands-free,
# ASR test set); podman, runc and mmdebstrap build and run the container image from a local base.
test-tools:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	if [ -n "$$missing" ]; then \
		echo "installing test tools:$$missing"; \
		$(APT) update -qq && $(APT) install -y -qq $$missing; \
	fi

$(VENV)/bin/python: | system-packages
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "installing python3-venv"; \
		$(APT) update -qq && $(APT) install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/artifacts
