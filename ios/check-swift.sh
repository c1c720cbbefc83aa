#!/usr/bin/env bash
# Checks that the committed Swift bindings (ios/Sources/Zhangban/*.swift) are
# current: regenerates them (uniffi, library mode) from the host build of
# libzhangban_ffi into a temp dir and diffs. Needs nothing but cargo.
# Regenerate after changing ffi/:  bash ios/check-swift.sh --update
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."

# Same feature set as android/jvm-test.sh, so in the test command this build is a no-op
# (the feature only adds the loopback test server binary; the exported API is the same).
cargo build --quiet -p zhangban-ffi --features test-server
case "$(uname -s)" in
  Darwin) lib=target/debug/libzhangban_ffi.dylib ;;
  *) lib=target/debug/libzhangban_ffi.so ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet -p zhangban-ffi --features test-server --bin uniffi-bindgen -- \
  generate --library "$lib" --language swift --no-format --out-dir "$work"

committed=ios/Sources/Zhangban
if [ "${1:-}" = "--update" ]; then
  rm -f "$committed"/*.swift
  cp "$work"/*.swift "$committed"/
  echo "ios: Swift bindings regenerated into $committed"
  exit 0
fi

mkdir -p "$work/committed"
cp "$committed"/*.swift "$work/committed"/ 2>/dev/null || true
mkdir -p "$work/fresh"
cp "$work"/*.swift "$work/fresh"/
if ! diff -ru "$work/committed" "$work/fresh" > "$work/diff"; then
  head -n 60 "$work/diff" >&2
  echo >&2
  echo "ios/check-swift.sh: FAILED: the committed Swift bindings in $committed are stale" >&2
  echo "(they differ from what uniffi generates from the current ffi/)." >&2
  echo "Regenerate them with: bash ios/check-swift.sh --update, then commit." >&2
  exit 1
fi
echo "ios: Swift bindings current ($(ls "$work/fresh" | tr '\n' ' '))"
