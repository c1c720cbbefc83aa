#!/usr/bin/env bash
# FFI round-trip benchmark (issue 6): Kotlin on the host JVM (JNA) calling
# into an optimised build (cargo's bench profile) of libzhangban_ffi.
#   - a trivial exported function (ping): the floor of one crossing;
#   - a guide search in Chinese through the bindings, against the same
#     search through the same facade from Rust on the same store
#     (ffi/examples/search_native.rs), measured in this run: the ratio is
#     what the crossing (JNA, lowering and lifting the hits) adds; a query
#     that matches nothing shows the fixed cost of such a call.
# Target: the Kotlin search costs at most 1.25x the Rust one.
# ZHANGBAN_BENCH_QUICK=1 runs fewer calls (the test command's smoke run).
# Figures are printed, never asserted.
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."
source android/jvm-common.sh
quick="${ZHANGBAN_BENCH_QUICK:-0}"

cargo build --quiet --profile bench -p zhangban-ffi --features test-server \
  --lib --bins --example search_native
lib=target/release/libzhangban_ffi.so
gen="$work/generated"
generate_kotlin "$lib" "$gen"
"$kotlin/bin/kotlinc" -nowarn -jvm-target 17 -cp "$jna:$coroutines" \
  $(find "$gen" -name '*.kt') android/jvm-test/bench/*.kt android/jvm-test/src/JcaKeystore.kt android/jvm-test/src/JcaDataKeyStore.kt -d "$work/bench.jar"

start_server target/release
store="$work/bench.db"
root=$(sed -n 's/^root_jwk=//p' "$work/server.properties")
# Kotlin and Rust take turns (three runs each, on the same store: the first
# Kotlin run syncs it), so a noisy neighbour hits both sides alike.
runs=3
[ "$quick" = 1 ] && runs=1
for _ in $(seq 1 "$runs"); do
  java -Djna.library.path="$PWD/target/release" -Dfile.encoding=UTF-8 \
    -cp "$work/bench.jar:$jna:$coroutines:$stdlib" ZhangbanJvmBenchKt \
    "$work/server.properties" "$store" "$quick" | tee -a "$work/runs.txt"
  target/release/examples/search_native "$store" "$root" "$quick" | tee -a "$work/runs.txt"
done

python3 - "$work/runs.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"(kotlin|native) (.+): ([0-9.]+) us/call", line)
    if m:
        runs.setdefault((m.group(1), m.group(2)), []).append(float(m.group(3)))
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"ffi round trip: ping {med[('kotlin', 'ping')]:.3f} us/call (median of runs)")
limit = 1.25
for (side, name), us in med.items():
    if side != "native":
        continue
    k = med[("kotlin", name)]
    if "魑魅" in name:  # matches nothing: what the crossing itself costs
        print(f"ffi round trip: {name} (no match) {k:.1f} us/call from Kotlin vs {us:.1f} us/call "
              f"from Rust: the crossing of a call with a string in and a list out costs {k - us:.1f} us")
        continue
    print(f"ffi round trip: {name} {k:.1f} us/call from Kotlin vs {us:.1f} us/call from Rust: "
          f"ratio {k / us:.2f} (target <= {limit}) {'met' if k / us <= limit else 'MISSED'}")
PY
