# Shared by android/jvm-test.sh and android/jvm-bench.sh (sourced, from the
# repo root): kotlinc from the npm package kotlin-compiler (into .tools/),
# JNA from Debian's libjna-java, and the loopback test server.
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

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -INT "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# generate_kotlin <lib.so> <out dir>: the bindings, library mode.
generate_kotlin() {
  "$(dirname "$1")/uniffi-bindgen" generate --library "$1" --language kotlin --no-format --out-dir "$2"
}

# start_server <target dir>: the demo server on loopback; writes $work/server.properties.
start_server() {
  "$1/zhangban-test-server" "$work/server.properties" &
  server_pid=$!
  for _ in $(seq 1 600); do
    [ -f "$work/server.properties" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "the test server died" >&2; exit 1; }
    sleep 0.1
  done
  echo "the test server did not start" >&2
  exit 1
}
