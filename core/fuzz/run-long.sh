#!/usr/bin/env bash
# Runs every fuzz target for longer (default 300 s each), growing the
# corpus in corpus-run/<target> (git-ignored; the seeds in corpus/ are read).
# Usage: core/fuzz/run-long.sh [seconds per target] [target ...]
# Crashes are saved under fuzz/artifacts/<target>/; reproduce one with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>` from core/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(compact_frame presentation trust_data png_qr submission_body)
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-run/$t"
  echo "fuzz $t: ${secs}s"
  cargo +nightly fuzz run "$t" "fuzz/corpus-run/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::|==|#[0-9]+ +DONE|.*(panicked|ERROR|SUMMARY|timeout|out-of-memory))' || true
done
