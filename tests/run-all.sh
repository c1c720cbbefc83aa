#!/usr/bin/env bash
# Runs every test of Zhangban, installing what it needs on a fresh machine.
#   formatting and lints, Rust unit / negative / property / CLI tests,
#   PostgreSQL (the one on 127.0.0.1:5432, else a throwaway cluster from Debian's package),
#   interop with independent implementations (PyPI sd-jwt, jwcrypto, zxing-cpp) in a local venv,
#   schemathesis (PyPI) against the live server's OpenAPI document,
#   the Kotlin bindings on the host JVM (npm kotlin-compiler, Debian libjna-java),
#   and a quick smoke run of the benchmarks (figures printed, never asserted).
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "rustfmt"
cargo fmt --all -- --check

step "clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "PostgreSQL for the tests (ZHANGBAN_TEST_DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster)"
source tests/postgres/ensure.sh
trap 'pg_stop_throwaway; rm -f "$log"' EXIT

step "Rust tests (the store conformance suite on SQLite and on PostgreSQL among them)"
cargo test --workspace --all-features 2>&1 | tee -a "$log"

step "Fuzzing, short fixed run of every target (cargo-fuzz, nightly)"
bash core/fuzz/run-short.sh

step "Python interop environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "python3 -m venv failed: install python3-venv (Debian) and retry" >&2; exit 1; }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt

step "Interop tests (sd-jwt reference implementation, jwcrypto)"
cargo build --quiet -p zhangban-core --features cli --bin zhangban
ZHANGBAN_BIN="$PWD/target/debug/zhangban" .venv/bin/python -m pytest tests/interop -q -p no:cacheprovider 2>&1 | tee -a "$log"

step "schemathesis against the live server's /openapi.json"
bash tests/schemathesis/run.sh

step "Kotlin on the host JVM: generated bindings, JNA, the real server on loopback"
bash android/jvm-test.sh 2>&1 | tee -a "$log"
bash ios/check-swift.sh

step "Benchmarks, quick smoke run"
ZHANGBAN_BENCH_QUICK=1 cargo bench --quiet -p zhangban-core --bench verify
ZHANGBAN_BENCH_QUICK=1 cargo bench --quiet -p zhangban-tests --bench client
ZHANGBAN_BENCH_QUICK=1 cargo bench --quiet -p zhangban-core --bench inspect
ZHANGBAN_BENCH_QUICK=1 bash android/jvm-bench.sh

step "Summary"
rust=$(grep -E '^test result: ok\.' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
py=$(grep -E '^[0-9]+ passed' "$log" | tail -1 | sed -E 's/^([0-9]+) passed.*/\1/')
kt=$(grep -E '^kotlin checks: [0-9]+ passed' "$log" | tail -1 | sed -E 's/^kotlin checks: ([0-9]+) passed.*/\1/')
echo "rust tests: ${rust:-0}, interop tests: ${py:-0}, kotlin checks: ${kt:-0}"
echo "$(( ${rust:-0} + ${py:-0} + ${kt:-0} )) passed, 0 failed"
