#!/usr/bin/env bash
# Kotlin on the host JVM: the Kotlin bindings generated (uniffi, library
# mode) from the host build of libzhangban_ffi, compiled with kotlinc (npm
# package kotlin-compiler) together with android/jvm-test/src, and run with
# JNA (Debian libjna-java) against the real server on loopback.
# Installs what it needs, idempotently. Prints "kotlin checks: N passed, 0 failed".
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."

KOTLIN_VERSION=2.3.21
tools="$PWD/.tools"
kotlin="$tools/node_modules/kotlin-compiler"
have=$(node -p "require('$kotlin/package.json').version" 2>/dev/null || true)
if [ "$have" != "$KOTLIN_VERSION" ]; then
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "kotlin-compiler@$KOTLIN_VERSION"
fi
jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjna-java
  else
    echo "$jna is missing: apt-get install libjna-java (as root), then retry" >&2
    exit 1
  fi
fi
coroutines="$kotlin/lib/kotlinx-coroutines-core-jvm.jar"
stdlib="$kotlin/lib/kotlin-stdlib.jar"

# The host library, the bindgen and the loopback server (one feature set: one build).
cargo build --quiet -p zhangban-ffi --features test-server
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -INT "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

gen="$work/generated"
cargo run --quiet -p zhangban-ffi --features test-server --bin uniffi-bindgen -- \
  generate --library target/debug/libzhangban_ffi.so --language kotlin --no-format --out-dir "$gen"

echo "kotlinc $KOTLIN_VERSION: generated bindings + android/jvm-test/src"
"$kotlin/bin/kotlinc" -nowarn -jvm-target 17 -cp "$jna:$coroutines" \
  $(find "$gen" -name '*.kt') android/jvm-test/src/*.kt -d "$work/test.jar"

target/debug/zhangban-test-server "$work/server.properties" &
server_pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/server.properties" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "the test server died" >&2; exit 1; }
  sleep 0.1
done
[ -f "$work/server.properties" ] || { echo "the test server did not start" >&2; exit 1; }

mkdir -p "$work/phone"
java -Djna.library.path="$PWD/target/debug" -Dfile.encoding=UTF-8 \
  -cp "$work/test.jar:$jna:$coroutines:$stdlib" ZhangbanJvmTestKt "$work/server.properties" "$work/phone"
