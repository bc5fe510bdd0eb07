# ferroflag's one task runner: CI and pre-commit call these targets too.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help  ## List the targets
help:
	@grep -E '^\.PHONY: [a-z-]+  ## ' $(MAKEFILE_LIST) | sed -E 's/^\.PHONY: ([a-z-]+)  ## (.*)/  make \1\t\2/' | expand -t 24

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --group dev
	touch $@

.PHONY: install  ## Create the virtualenv and install the dev tools
install: $(VENV)/.installed

.PHONY: build-dev  ## Build the extension (release profile) into the virtualenv
build-dev: install
	rm -f python/ferroflag/*.so
	maturin develop --release --quiet

.PHONY: demo  ## The main job: build, serve examples/flags.json, run the FastAPI example against it, show users and a flag change arriving
demo: build-dev
	$(PY) examples/demo.py examples/flags.json

# Pass-through arguments: `make test-python ARGS="tests/test_cli.py -k stale"` runs those pytest tests only,
# `make test-rust CARGO_ARGS="--test spec"` one cargo test target. `make test` passes both on.
ARGS ?=
CARGO_ARGS ?=

.PHONY: test  ## Every test: Rust (tests, clippy, fmt) and Python (ARGS=... for pytest, CARGO_ARGS=... for cargo test)
test: test-rust test-python

.PHONY: test-rust  ## cargo test (CARGO_ARGS=...), clippy -D warnings, fmt --check
test-rust:
	cargo test --quiet $(CARGO_ARGS)
	cargo clippy --quiet --all-targets --all-features -- -D warnings
	cargo fmt --check

.PHONY: test-python  ## Build the extension and run pytest (ARGS="tests/test_x.py -k name" for some tests only)
test-python: build-dev
	$(PY) -m pytest -q $(ARGS)

.PHONY: coverage  ## pytest under coverage.py (ARGS=... as for test-python); prints the Python package's line and branch coverage
coverage: build-dev
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -q $(ARGS)
	$(PY) -m coverage report | tail -n 25

.PHONY: lint-format  ## Formatting and ruff only: no build (pre-commit's first hook)
lint-format: install
	cargo fmt --check
	ruff check python tests benches examples
	ruff format --check python tests benches examples

.PHONY: lint  ## Static checks: fmt, clippy, ruff, mypy --strict, stubtest
lint: build-dev lint-format
	cargo clippy --quiet --all-targets --all-features -- -D warnings
	cargo check --quiet --no-default-features
	mypy --strict python/ferroflag
	$(PY) -m mypy.stubtest ferroflag._ferroflag --allowlist .mypy-stubtest-allowlist

.PHONY: format  ## Format Rust and Python sources
format: install
	cargo fmt
	ruff format python tests benches examples
	ruff check --fix python tests benches examples

BASELINE ?=

.PHONY: bench  ## Benchmarks: criterion for the core, then the Python side-by-side tables (BASELINE=dir from `make baseline` adds ratios against that build)
bench: build-dev
	cargo bench --bench evaluate
	$(PY) benches/bench_model.py $(if $(BASELINE),--baseline $(BASELINE))
	$(PY) benches/bench_python.py
	$(PY) benches/bench_sync.py
	$(PY) benches/bench_fastapi.py
	$(PY) benches/bench_django.py
	$(PY) benches/bench_django_db.py
	$(PY) benches/bench_events.py $(if $(BASELINE),--baseline $(BASELINE))

.PHONY: baseline  ## Keep the current build in .bench-baseline/ to compare a change against (make bench BASELINE=.bench-baseline)
baseline: build-dev
	rm -rf .bench-baseline && mkdir -p .bench-baseline
	cp -r python/ferroflag .bench-baseline/ferroflag

FUZZ_SECONDS ?= 60

.PHONY: fuzz  ## Fuzz parse+compile+evaluate for FUZZ_SECONDS (libFuzzer on stable Rust; crashes in fuzz/artifacts)
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)   # log: fuzz/target/document.log

.PHONY: reliability  ## Fuzz, hostile input, stress, memory and sync start/stop checks: prints the table
reliability: build-dev fuzz
	$(PY) benches/reliability.py --fuzz-log fuzz/target/document.log

.PHONY: all  ## format, lint, test
all: format lint test

.PHONY: clean  ## Remove build outputs and the virtualenv
clean:
	cargo clean
	rm -rf $(VENV) python/ferroflag/*.so .pytest_cache .mypy_cache .ruff_cache
