# cnnlab set-up: `make demo` (install + train the demo) and `make test` (install dev tools + every check).
# Both create ./.venv on first use. torch is installed first and pinned to the 2.13 CPU build, so
# nothing pulls the multi-GB CUDA packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test test-fast test-matrix test-measure lint browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/cnnlab demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# CI only: Debian's chromium for the browser tests (they skip with a reason when it is missing).
browser:
	@if [ "$${CI:-}" = "true" ] && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "no chromium: browser tests will skip"; fi

test: lint browser
	@if $(BIN)/pip list 2>/dev/null | grep -i -E '^(nvidia-|cuda-|triton )'; then \
		echo "error: CUDA packages were installed; torch must be the 2.13 CPU build" >&2; exit 1; fi
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow and not data and not matrix" -q

# Every zoo model x input size through train -> evaluate -> predict -> export (about 25 minutes on 2 cores).
test-matrix: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m matrix -q tests/test_user_paths.py tests/models/test_input_sizes.py

# The measured numbers of docs/ on the full shared data (about 20 minutes on 2 cores; needs ../shared/data).
test-measure: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m measure -q

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
