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

# The dev tools come from uv.lock, exactly (`make lock` refreshes it after a change to pyproject.toml's
# dependency groups). `.ci/run` bootstraps the pinned uv; locally any uv >= that version works.
UV ?= uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

$(VENV)/.installed: pyproject.toml uv.lock
	$(UV) sync --locked --python python3 --quiet
	touch $@

.PHONY: install  ## Create the virtualenv with exactly the locked dev tools (uv sync --locked)
install: $(VENV)/.installed

.PHONY: lock  ## Re-resolve uv.lock after changing the dependency groups in pyproject.toml
lock:
	$(UV) lock --python python3

# build-dev is what tests, lint and the demo use: the dev profile (opt-level 1, dependencies at 3) rebuilds in
# seconds after an edit. build-prod is the fat-LTO release build that wheels ship; benchmarks use it.
.PHONY: build-dev  ## Build the extension quickly (dev profile) into the virtualenv
build-dev: install
	rm -f python/ferroflag/*.so
	maturin develop --uv --quiet --profile dev

.PHONY: build-prod  ## Build the extension as released (fat LTO) into the virtualenv: benchmarks use this
build-prod: install
	rm -f python/ferroflag/*.so
	maturin develop --uv --quiet --release

.PHONY: demo  ## The main job: build, serve examples/flags.json, run the FastAPI example against it, show users and a flag change arriving
demo: build-dev
	$(PY) examples/demo.py examples/flags.json

# Pass-through arguments: `make test-python ARGS="tests/test_cli.py -k version"` runs those pytest tests only,
# `make test-python AREA=sync` one area's tests (a marker per area, assigned in tests/conftest.py; AREA="sync or cli"
# works too), `make test-rust CARGO_ARGS="--test spec"` one cargo test target. `make test` passes all of them on.
ARGS ?=
CARGO_ARGS ?=
AREA ?=
AREA_SELECT = $(if $(AREA),-m "$(AREA)")

.PHONY: test  ## Every test: Rust (tests, clippy, fmt) and Python (ARGS=... / AREA=... for pytest, CARGO_ARGS=... for cargo test)
test: test-rust test-python

.PHONY: test-rust  ## cargo test (CARGO_ARGS=...), clippy -D warnings, fmt --check
test-rust:
	cargo test --quiet $(CARGO_ARGS)
	cargo clippy --quiet --all-targets --all-features -- -D warnings
	cargo fmt --check

.PHONY: test-python  ## Build the extension and run pytest (ARGS="tests/test_x.py -k name", AREA=sync for some tests only)
test-python: build-dev
	$(PY) -m pytest -q $(AREA_SELECT) $(ARGS)

.PHONY: test-fast  ## pytest without the tests marked slow (the long property and process tests); AREA= and ARGS= as above
test-fast: build-dev
	$(PY) -m pytest -q -m "not slow$(if $(AREA), and ($(AREA)))" $(ARGS)

.PHONY: coverage  ## pytest under coverage.py (ARGS=/AREA= as for test-python); prints the Python package's line and branch coverage
coverage: build-dev
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -q $(AREA_SELECT) $(ARGS)
	$(PY) -m coverage report | tail -n 25

# The Rust core under `cargo test`, with LLVM's source-based coverage: cargo-llvm-cov (pinned) is installed into the
# virtualenv on first use; it needs rustup's llvm-tools component.
CARGO_LLVM_COV_VERSION := 0.6.21

$(VENV)/bin/cargo-llvm-cov: | install
	cargo install --quiet --locked --version $(CARGO_LLVM_COV_VERSION) --root $(abspath $(VENV)) cargo-llvm-cov

.PHONY: coverage-rust  ## cargo test under LLVM coverage (CARGO_ARGS=...); prints the Rust core's line and region coverage per file
coverage-rust: $(VENV)/bin/cargo-llvm-cov
	set -o pipefail; cargo llvm-cov --quiet --summary-only $(CARGO_ARGS) 2>&1 | grep -vE '^(running|test result|\.+$$|$$)'

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
bench: build-prod
	cargo bench --bench evaluate
	$(PY) benches/bench_model.py $(if $(BASELINE),--baseline $(BASELINE))
	$(PY) benches/bench_python.py
	$(PY) benches/bench_sync.py
	$(PY) benches/bench_fastapi.py
	$(PY) benches/bench_django.py
	$(PY) benches/bench_django_db.py
	$(PY) benches/bench_events.py $(if $(BASELINE),--baseline $(BASELINE))

.PHONY: baseline  ## Keep the current build in .bench-baseline/ to compare a change against (make bench BASELINE=.bench-baseline)
baseline: build-prod
	rm -rf .bench-baseline && mkdir -p .bench-baseline
	cp -r python/ferroflag .bench-baseline/ferroflag

FUZZ_SECONDS ?= 60

.PHONY: fuzz  ## Fuzz parse+compile+evaluate for FUZZ_SECONDS (libFuzzer on stable Rust; crashes in fuzz/artifacts)
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)   # log: fuzz/target/document.log

.PHONY: reliability  ## Fuzz, hostile input, stress, memory and sync start/stop checks: prints the table
reliability: build-prod fuzz
	$(PY) benches/reliability.py --fuzz-log fuzz/target/document.log

# The wheel that ships: abi3 (one wheel for CPython >= 3.10), linked by zig against glibc 2.17's symbols so that
# it installs on manylinux2014-era systems (Debian 10+, Ubuntu 18.04+, RHEL/CentOS 7+, Amazon Linux 2). The sdist
# is then built again from its tarball alone, in a target dir of its own, through pip's PEP 517 path, and
# tests/test_dist.py checks the lot: tags, auditwheel, glibc symbol versions, a clean venv's import, same wheel.
DIST ?= dist
MANYLINUX_ARGS := --zig --compatibility manylinux2014

.PHONY: dist  ## sdist + manylinux2014 abi3 wheel in dist/, the sdist rebuilt from scratch into the same wheel, all checked
dist: install
	rm -rf $(DIST)
	maturin sdist --out $(DIST)
	maturin build --release $(MANYLINUX_ARGS) --out $(DIST)
	CARGO_TARGET_DIR=$(abspath $(DIST))/sdist-target MATURIN_PEP517_ARGS="$(MANYLINUX_ARGS)" \
	  $(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DIST)/from-sdist $(DIST)/ferroflag-*.tar.gz
	rm -rf $(DIST)/sdist-target
	FERROFLAG_DIST=$(abspath $(DIST)) $(PY) -m pytest -q -p no:cacheprovider tests/test_dist.py

.PHONY: all  ## format, lint, test
all: format lint test

.PHONY: clean  ## Remove build outputs and the virtualenv
clean:
	cargo clean
	rm -rf $(VENV) $(DIST) python/ferroflag/*.so .pytest_cache .mypy_cache .ruff_cache .coverage
