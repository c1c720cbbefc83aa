# Sourced by tests/run-all.sh: makes a PostgreSQL server available to the
# tests and exports ZHANGBAN_TEST_DATABASE_URL (ADR 0221).
#   1. ZHANGBAN_TEST_DATABASE_URL if it is set;
#   2. else the server on 127.0.0.1:5432 (user postgres) if one answers;
#   3. else Debian's `postgresql` package (installed if missing) runs a
#      throwaway cluster in a temporary directory, as a non-root user, on a
#      free port; it is stopped and removed when the test run ends
#      (pg_stop_throwaway, called from the caller's EXIT trap).
# ZHANGBAN_PG_THROWAWAY=1 skips 1 and 2 (to try 3 on a machine that has a server).
# In every case PostgreSQL's programs are installed when missing: one test
# crashes and restarts a cluster of its own (tests/tests/replicas.rs).

pg_throwaway_dir=""
pg_throwaway_user=""

pg_answers() { # URL
  if command -v psql >/dev/null 2>&1; then
    psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

as_pg_user() {
  if [ -n "$pg_throwaway_user" ]; then
    runuser -u "$pg_throwaway_user" -- "$@"
  else
    "$@"
  fi
}

pg_install_if_missing() {
  if ! pg_bindir >/dev/null; then
    echo "PostgreSQL's programs not found: installing Debian's postgresql package" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    pg_bindir >/dev/null || { echo "initdb still not found after installing postgresql" >&2; return 1; }
  fi
}

pg_start_throwaway() {
  local bindir port
  pg_install_if_missing
  bindir=$(pg_bindir)
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses root: the cluster belongs to an unprivileged user.
    if id postgres >/dev/null 2>&1; then
      pg_throwaway_user=postgres
    else
      id zhangban-pg >/dev/null 2>&1 || useradd --system --no-create-home zhangban-pg
      pg_throwaway_user=zhangban-pg
    fi
  fi
  pg_throwaway_dir=$(mktemp -d /tmp/zhangban-pg.XXXXXX)
  chmod 0755 "$pg_throwaway_dir"
  [ -n "$pg_throwaway_user" ] && chown "$pg_throwaway_user" "$pg_throwaway_dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg_user "$bindir/initdb" -D "$pg_throwaway_dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  as_pg_user "$bindir/pg_ctl" -D "$pg_throwaway_dir/data" -l "$pg_throwaway_dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_throwaway_dir -c max_connections=300 -c fsync=on" start >/dev/null
  export ZHANGBAN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "throwaway PostgreSQL ($("$bindir/postgres" --version)) on 127.0.0.1:$port in $pg_throwaway_dir"
}

pg_stop_throwaway() {
  if [ -n "$pg_throwaway_dir" ] && [ -d "$pg_throwaway_dir/data" ]; then
    local bindir
    bindir=$(pg_bindir) && as_pg_user "$bindir/pg_ctl" -D "$pg_throwaway_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_throwaway_dir"
  fi
}

if [ -n "${ZHANGBAN_TEST_DATABASE_URL:-}" ] && [ "${ZHANGBAN_PG_THROWAWAY:-}" != 1 ]; then
  echo "PostgreSQL for tests: ZHANGBAN_TEST_DATABASE_URL"
elif [ "${ZHANGBAN_PG_THROWAWAY:-}" != 1 ] && pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
  export ZHANGBAN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  echo "PostgreSQL for tests: the server on 127.0.0.1:5432"
else
  pg_start_throwaway
fi
pg_install_if_missing
