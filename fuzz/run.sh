#!/usr/bin/env bash
# Builds the `document` fuzz target with libFuzzer on stable Rust and runs it for a bounded time.
#
#   fuzz/run.sh [SECONDS] [LOG]        # default: 60 s, log in fuzz/target/document.log
#
# No nightly and no cargo-fuzz needed: this is the build `cargo fuzz build --sanitizer none` does
# (SanitizerCoverage instrumentation, `--cfg fuzzing`, an explicit --target so that build scripts
# stay uninstrumented). `RUSTC_BOOTSTRAP=1 cargo fuzz run document` works too, with AddressSanitizer.
# New inputs go to a scratch directory, so the committed corpus stays as it is; a crashing input is
# saved under fuzz/artifacts/document/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
log="${2:-target/document.log}"
target="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=3 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares"
cargo build --quiet --release --bin document --target "$target"
mkdir -p artifacts/document "$(dirname "$log")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
"target/$target/release/document" "$scratch" corpus/document \
  -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix=artifacts/document/ >"$log" 2>&1 || status=$?
grep -E "INITED|DONE|ERROR|panicked|deadly|Test unit|number_of_executed_units" "$log" || true
exit "$status"
