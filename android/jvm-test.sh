#!/usr/bin/env bash
# Kotlin on the host JVM: the Kotlin bindings generated (uniffi, library
# mode) from the host build of libzhangban_ffi, compiled with kotlinc (npm
# package kotlin-compiler) together with android/jvm-test/src, and run with
# JNA (Debian libjna-java) against the real server on loopback.
# Installs what it needs, idempotently. Prints "kotlin checks: N passed, 0 failed".
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."
source android/jvm-common.sh

# The host library, the bindgen and the loopback server (one feature set: one build).
cargo build --quiet -p zhangban-ffi --features test-server
target="${CARGO_TARGET_DIR:-target}"
gen="$work/generated"
generate_kotlin "$target/debug/libzhangban_ffi.so" "$gen"

echo "kotlinc $KOTLIN_VERSION: generated bindings + android/jvm-test/src"
"$kotlin/bin/kotlinc" -nowarn -jvm-target 17 -cp "$jna:$coroutines" \
  $(find "$gen" -name '*.kt') android/jvm-test/src/*.kt -d "$work/test.jar"

start_server "$target/debug"
mkdir -p "$work/phone"
java -Djna.library.path="$(cd "$target/debug" && pwd)" -Dfile.encoding=UTF-8 \
  -cp "$work/test.jar:$jna:$coroutines:$stdlib" ZhangbanJvmTestKt "$work/server.properties" "$work/phone"
