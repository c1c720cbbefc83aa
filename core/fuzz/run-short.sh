#!/usr/bin/env bash
# Runs every fuzz target for a short, fixed number of runs (issue 13): no
# panic, each input within -timeout seconds and -rss_limit_mb MiB. Installs
# cargo-fuzz (about 9 minutes on 2 shared cores, measured) and a nightly
# toolchain when missing. New inputs go to a scratch dir; the seed corpora
# in corpus/ are only read. FUZZ_RUNS overrides the runs per target.
set -euo pipefail
cd "$(dirname "$0")/.."   # core/ (cargo fuzz finds fuzz/ from here)
runs=${FUZZ_RUNS:-2000}
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=(compact_frame presentation trust_data png_qr submission_body)
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  echo "fuzz $t: $runs runs"
  log="$scratch.log"
  if cargo +nightly fuzz run "$t" "$scratch" "fuzz/corpus/$t" -- \
    -runs="$runs" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1; then
    status=0
  else
    status=$?
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked)' "$log" || true
  [ "$status" -eq 0 ] || tail -40 "$log"
  rm -f "$log"
  rm -rf "$scratch"
  if [ "$status" -ne 0 ]; then
    echo "fuzz $t failed (exit $status); the crashing input is under fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
done
