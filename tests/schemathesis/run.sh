#!/usr/bin/env bash
# Property-based API testing of the live server against its own /openapi.json.
#
# Builds and starts `zhangban-server serve --demo` on a free loopback port with a
# fresh data directory, then runs schemathesis twice:
#   1. the public and resident endpoints, with a resident bearer token (a device
#      enrolled with the demo activation code by resident_token.py);
#   2. the operator endpoints, each group with the demo operator of its role.
# Checks: no 5xx, and every response's status code, content type, headers and
# body conform to the document. Exits non-zero if either run fails.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 50 per operation),
# SCHEMATHESIS_SEED (default: fixed, so a failure reproduces), SCHEMATHESIS_ARGS (extra).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="$PWD/.venv"
[ -x "$venv/bin/schemathesis" ] || { echo "no $venv/bin/schemathesis: pip install -r tests/interop/requirements.txt" >&2; exit 1; }

cargo build --quiet -p zhangban-server
data=$(mktemp -d)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin_port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
log="$data/server.log"

RUST_LOG=warn target/debug/zhangban-server serve --demo --data-dir "$data" --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port" >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "server exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { echo "server not healthy after 30 s:" >&2; cat "$log" >&2; exit 1; }

operator_token=$(cat "$data/operator-token")
resident_token=$("$venv/bin/python" tests/schemathesis/resident_token.py "$base" ZB-DEMO-2026)

common=(
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}"
  --seed "${SCHEMATHESIS_SEED:-20261123}"
  --phases examples,coverage,fuzzing,stateful
  --generation-database none
  --request-timeout 10
  --no-color
)
# shellcheck disable=SC2206
extra=(${SCHEMATHESIS_ARGS:-})

# Run from the data dir: schemathesis keeps a cache (.schemathesis/) in its working directory.
st() { (cd "$data" && "$venv/bin/schemathesis" run "$base/openapi.json" "${common[@]}" "${extra[@]}" "$@"); }

status=0
echo "--- public and resident endpoints (resident token)"
st --exclude-path-regex '^/v1/operator/' \
  --header "Authorization: Bearer $resident_token" || status=$?
# Operators have one role each (ADR 0165): each group of operator endpoints
# runs with the demo operator whose role it needs, so that the run reaches the
# handlers; the bootstrap admin (the data directory's operator-token) takes
# the admin endpoints.
ops="$data/demo-operators"
echo "--- operator endpoints: admin (bootstrap token)"
st --include-path-regex '^/v1/operator/(residents|trust-bundle|operators|calendar|evaluations/stats)' \
  --header "Authorization: Bearer $operator_token" || status=$?
for pair in "(guides|bundles):demo-publisher" "licences:demo-issuer" "submissions:demo-reviewer" "evaluations/cases:demo-reviewer"; do
  echo "--- operator endpoints: ${pair%%:*} (${pair##*:})"
  st --include-path-regex "^/v1/operator/${pair%%:*}" \
    --header "Authorization: Bearer $(cat "$ops/${pair##*:}.token")" || status=$?
done

# What the server saw, from its own /metrics (the admin listener): requests by status code.
if metrics=$(curl -fsS "http://127.0.0.1:$admin_port/metrics"); then
  echo "--- requests served, by status (from /metrics)"
  printf '%s\n' "$metrics" | sed -nE 's/^http_requests_total\{.*status="([0-9]+)"\} ([0-9]+)$/\1 \2/p' |
    awk '{n[$1]+=$2; t+=$2} END {for (s in n) printf "  %s: %d\n", s, n[s]; printf "  total: %d\n", t}' | sort
fi

if ! kill -0 "$server" 2>/dev/null; then
  echo "the server died during the run:" >&2
  tail -50 "$log" >&2
  status=1
fi
if grep -q "panicked" "$log"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$log" >&2
  status=1
fi
exit "$status"
